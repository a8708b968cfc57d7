"""mrhelpers: register models from Kubeflow Pipelines into the Kubeflow Model Registry.

The names below are the public API. Importing it has no side effects; the kfp-based parts load on first use."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from mrhelpers import backends  # noqa: F401 - registers the local and cluster backends (no kfp, no kubernetes)
from mrhelpers.core.errors import (
    AuthError,
    InvalidInput,
    LineageWarning,
    MRHelpersError,
    RegistryUnavailable,
    RunFailed,
    StackError,
    VersionConflict,
)
from mrhelpers.core.registry import Lineage, RegistrationResult, connect, register_version
from mrhelpers.core.settings import Secret, Settings

__version__ = "0.1.0"

_HOMES = {
    "mrhelpers.core.rest": "RegistryHttpError",
    "mrhelpers.core.inspection": "models_frame versions_frame find_versions artifacts_frame lineage_of lineage_graph",
    "mrhelpers.core.lifecycle": "archive_version restore_version set_stage production_version archive_model",
    "mrhelpers.core.records": "record read_records",
    "mrhelpers.authoring.compiling": "compile_pipeline describe_package",
    "mrhelpers.authoring.handles": "RunHandle last_run submit",
    "mrhelpers.backends": "get_backend",
    "mrhelpers.backends.doctor": "doctor",
    "mrhelpers.backends.secrets": "ensure_secret",
}
_LAZY = {name: module for module, names in _HOMES.items() for name in names.split()}
"""Public names, loaded on first use (the kfp-based parts stay unloaded until then)."""

_MODULES = {
    "inspection": "mrhelpers.core.inspection",
    "lifecycle": "mrhelpers.core.lifecycle",
    "components": "mrhelpers.authoring.components",
    "in_task": "mrhelpers.authoring.in_task",
    "pipelines": "mrhelpers.authoring.pipelines",
    "training": "mrhelpers.authoring.training",
    "runs": "mrhelpers.authoring.handles",
    "serving": "mrhelpers.backends.serving",
    "secrets": "mrhelpers.backends.secrets",
}
"""Modules the notebooks and the README reach as ``mh.<name>`` (``mh.runs.summarize``), by their home."""

__all__ = ["AuthError", "InvalidInput", "Lineage", "LineageWarning", "MRHelpersError", "RegistrationResult"]
__all__ += ["RegistryUnavailable", "RunFailed", "Secret", "Settings", "StackError", "VersionConflict", "connect"]
__all__ += ["register_version", *_LAZY, *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return import_module(_MODULES[name])
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mrhelpers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
