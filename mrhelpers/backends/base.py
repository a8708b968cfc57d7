"""The ``Backend`` interface: what every backend does, so nothing else asks which backend it is."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mrhelpers.authoring.runs import RunHandle
from mrhelpers.backends.doctor import Finding
from mrhelpers.backends.secrets import SecretInfo
from mrhelpers.backends.serving import Served
from mrhelpers.core.settings import BackendProfile, Settings


class Backend(BackendProfile, Protocol):
    """Where pipelines run and the registry token is kept: ``local`` or ``cluster``.

    The settings-level answers (defaults, the component's registry URL, hints, run links) are
    :class:`~mrhelpers.core.settings.BackendProfile`'s; these are the operations. Standing a
    backend up or down is not: that is ``setup/``'s work (``make up``, ``make cluster-up``).
    """

    def ensure_secret(self, settings: Settings, name: str, data: Mapping[str, str]) -> SecretInfo:
        """Create or update Secret ``name`` (its name and data already checked); idempotent."""
        ...

    def read_secret(self, settings: Settings, name: str) -> dict[str, str]:
        """The values of Secret ``name``, or ``{}`` when it does not exist."""
        ...

    def submit(self, pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
        """Run ``pipeline`` (its arguments already checked); ``.wait()`` on the handle follows it."""
        ...

    def run_component(
        self, component: Callable[..., Any], arguments: dict[str, Any], settings: Settings
    ) -> dict[str, Any]:
        """Run one component on its own; its outputs by name."""
        ...

    def serve(self, entry: dict[str, Any], settings: Settings, *, timeout: float, progress: bool) -> Served:
        """Serve a registry entry from :func:`mrhelpers.backends.serving.resolve_production`."""
        ...

    def doctor(self, settings: Settings) -> list[Finding]:
        """What is wrong (empty: all good)."""
        ...
