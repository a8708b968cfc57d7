"""The ``Backend`` interface: what every backend does, so nothing else asks which backend it is."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mrhelpers.authoring.handles import RunHandle
from mrhelpers.backends.doctor import Finding
from mrhelpers.backends.secrets import SecretInfo
from mrhelpers.backends.serving import Served
from mrhelpers.core.settings import BackendProfile, Settings


class Backend(BackendProfile, Protocol):
    """A place where the registry and the pipelines run: ``local`` or ``cluster``.

    The settings-level answers (defaults, the component's registry URL, hints, run links) are
    :class:`mrhelpers.core.settings.BackendProfile`'s; these are the operations.
    """

    def start(self, settings: Settings, **kwargs: Any) -> Any:
        """Start (or keep) what runs the registry; return its status (``.ok``, ``.to_frame()``)."""
        ...

    def stop(self, settings: Settings, *, quiet: bool = False) -> None:
        """Stop what :meth:`start` started; the data is kept (on a cluster: the port-forwards only)."""
        ...

    def status(self, settings: Settings) -> Any:
        """What runs and answers; changes nothing."""
        ...

    def ensure_secret(
        self, settings: Settings, name: str, data: Mapping[str, str], *, refresh: bool = True
    ) -> SecretInfo:
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

    def doctor_ok(self, settings: Settings) -> str:
        """The CLI's line when :meth:`doctor` found nothing (it may check one more thing first)."""
        ...

    def after_tutorial(self, settings: Settings) -> str | None:
        """What the CLI says after ``run-notebooks`` about what keeps running, if anything."""
        ...
