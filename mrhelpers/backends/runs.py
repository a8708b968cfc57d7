"""Submit a pipeline, or run one component, on the backend ``settings`` choose (``mh.runs``), and read the runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mrhelpers.authoring.handles import TERMINAL_STATES, RunHandle, check_arguments, last_run, run_history, summarize
from mrhelpers.core.settings import Settings

__all__ = ["TERMINAL_STATES", "RunHandle", "last_run", "run_component", "run_history", "submit", "summarize"]


def submit(pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
    """Run a ``@dsl.pipeline`` with ``arguments`` on the backend ``settings`` choose; ``.wait()`` on the
    :class:`RunHandle` raises if it failed. :class:`InvalidInput` for a non-pipeline or an unknown argument."""
    check_arguments(pipeline, arguments)
    return settings.backend_impl().submit(pipeline, arguments, settings)


def run_component(component: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Run one ``@dsl.component`` on its own, as a quick check; its outputs by name (artifacts as
    ``{"uri", "metadata"}``), or :class:`RunFailed`. Local: kfp.local runs it here. Cluster: a one-task
    pipeline (token and namespace wired as in the real ones) whose outputs are read back from the registry."""
    return settings.backend_impl().run_component(component, arguments, settings)
