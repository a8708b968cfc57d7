"""Submit a pipeline, or run one component, on the backend ``settings`` choose (``mh.runs``).

The run handle, the run history and the kfp.local log helpers (:mod:`mrhelpers.authoring.handles`)
are named here too, so ``mh.runs`` holds them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mrhelpers.authoring.handles import (
    TERMINAL_STATES,
    RunHandle,
    check_arguments,
    kfp_local_log,
    last_run,
    run_history,
    summarize,
)
from mrhelpers.core.settings import Settings

__all__ = [
    "TERMINAL_STATES",
    "RunHandle",
    "kfp_local_log",
    "last_run",
    "run_component",
    "run_history",
    "submit",
    "summarize",
]


def submit(pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
    """Run ``pipeline`` with ``arguments`` on the backend ``settings`` choose.

    Args:
        pipeline: A ``@dsl.pipeline`` function.
        arguments: Its parameters by name.
        settings: ``backend``, ``pipeline_root`` and the token.

    Returns:
        A :class:`RunHandle`; call ``.wait()`` to raise if it failed.

    Raises:
        InvalidInput: ``pipeline`` is not a pipeline, or an argument is unknown.
    """
    check_arguments(pipeline, arguments)
    return settings.backend_impl().submit(pipeline, arguments, settings)


def run_component(component: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Run one ``@dsl.component`` on its own, as a quick check.

    Local: kfp.local runs the task here. Cluster: the task becomes a one-task pipeline (with the
    token from the Secret and its namespace, like the real pipelines) run on the KFP API server;
    its outputs are read back from the registry, so this fits components that register.

    Returns:
        The task's outputs by name (artifacts as ``{"uri", "metadata"}``).

    Raises:
        RunFailed: When the task fails (its log is printed above, or in the KFP UI).
    """
    return settings.backend_impl().run_component(component, arguments, settings)
