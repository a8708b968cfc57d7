"""mrhelpers: register models from Kubeflow Pipelines into the Kubeflow Model Registry.

The names below are the public API. Importing the package has no side effects;
the kfp-based parts (components, pipelines, compiling, runs) load on first use.
"""

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

_LAZY = {
    "RegistryHttpError": "mrhelpers.core.rest",
    "models_frame": "mrhelpers.core.inspection",
    "versions_frame": "mrhelpers.core.inspection",
    "find_versions": "mrhelpers.core.inspection",
    "artifacts_frame": "mrhelpers.core.inspection",
    "lineage_of": "mrhelpers.core.inspection",
    "lineage_graph": "mrhelpers.core.inspection",
    "metric_figure": "mrhelpers.core.inspection",
    "archive_version": "mrhelpers.core.lifecycle",
    "restore_version": "mrhelpers.core.lifecycle",
    "set_stage": "mrhelpers.core.lifecycle",
    "production_version": "mrhelpers.core.lifecycle",
    "archive_model": "mrhelpers.core.lifecycle",
    "record": "mrhelpers.core.records",
    "read_records": "mrhelpers.core.records",
    "ensure_secret": "mrhelpers.backends.secrets",
    "compile_pipeline": "mrhelpers.authoring.compiling",
    "describe_package": "mrhelpers.authoring.compiling",
    "submit": "mrhelpers.backends.runs",
    "RunHandle": "mrhelpers.authoring.runs",
    "last_run": "mrhelpers.authoring.runs",
    "doctor": "mrhelpers.backends.doctor",
    "get_backend": "mrhelpers.backends",
}
"""Public names, loaded on first use (the kfp-based parts stay unloaded until then)."""

_MODULES = {
    "inspection": "mrhelpers.core.inspection",
    "lifecycle": "mrhelpers.core.lifecycle",
    "components": "mrhelpers.authoring.components",
    "components_runtime": "mrhelpers.authoring.components_runtime",
    "pipelines": "mrhelpers.authoring.pipelines",
    "training": "mrhelpers.authoring.training",
    "runs": "mrhelpers.backends.runs",
    "serving": "mrhelpers.backends.serving",
    "secrets": "mrhelpers.backends.secrets",
    "localstack": "mrhelpers.backends.local.stack",
    "tutorial": "mrhelpers.tutorial",
}
"""Modules the notebooks and the README reach as ``mh.<name>`` (``mh.runs.kfp_local_log``), by their home."""

__all__ = [
    "AuthError",
    "InvalidInput",
    "Lineage",
    "LineageWarning",
    "MRHelpersError",
    "RegistrationResult",
    "RegistryUnavailable",
    "RunFailed",
    "Secret",
    "Settings",
    "StackError",
    "VersionConflict",
    "connect",
    "register_version",
    *_LAZY,
    *_MODULES,
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return import_module(_MODULES[name])
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mrhelpers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
