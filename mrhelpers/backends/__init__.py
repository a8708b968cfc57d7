"""The backends, ``local`` and ``cluster``, behind :class:`Backend`, registered by name here; everything
else asks ``settings.backend_impl()``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mrhelpers.authoring.handles import RunHandle
from mrhelpers.backends.cluster import ClusterBackend
from mrhelpers.backends.doctor import Finding
from mrhelpers.backends.local import LocalBackend
from mrhelpers.backends.secrets import SecretInfo
from mrhelpers.backends.serving import Served
from mrhelpers.core.settings import BackendProfile, Settings, register_backend

__all__ = ["Backend", "ClusterBackend", "LocalBackend", "get_backend"]


class Backend(BackendProfile, Protocol):
    """Where pipelines run and the token is kept (standing it up or down is ``setup/``'s work)."""

    def ensure_secret(self, settings: Settings, name: str, data: Mapping[str, str]) -> SecretInfo:
        """Create or update Secret ``name`` (its name and data already checked); idempotent."""

    def read_secret(self, settings: Settings, name: str) -> dict[str, str]:
        """The values of Secret ``name``, or ``{}`` when it does not exist."""

    def submit(self, pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
        """Run ``pipeline`` (its arguments already checked); ``.wait()`` on the handle follows it."""

    def run_component(self, component: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> dict:
        """Run one component on its own; its outputs by name."""

    def serve(self, entry: dict[str, Any], settings: Settings, *, timeout: float, progress: bool) -> Served:
        """Serve a registry entry from :func:`mrhelpers.backends.serving.resolve_production`."""

    def doctor(self, settings: Settings) -> list[Finding]:
        """What the library needs and cannot get, each with its fix (empty: all good)."""


register_backend(LocalBackend())
register_backend(ClusterBackend())


def get_backend(settings: Settings) -> Backend:
    """The backend object ``settings.backend`` names."""
    return settings.backend_impl()
