"""mrhelpers: register models from Kubeflow Pipelines into the Kubeflow Model Registry.

The names below are the public API. Importing the package has no side effects;
the kfp-based parts (components, pipelines, compiling, runs) load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from mrhelpers.errors import (
    AuthError,
    InvalidInput,
    MRHelpersError,
    RegistryUnavailable,
    RunFailed,
    StackError,
    VersionConflict,
)
from mrhelpers.registry import Lineage, RegistrationResult, connect, register_version
from mrhelpers.settings import Secret, Settings

__version__ = "0.1.0"

_LAZY = {
    "models_frame": "mrhelpers.inspection",
    "versions_frame": "mrhelpers.inspection",
    "find_versions": "mrhelpers.inspection",
    "artifacts_frame": "mrhelpers.inspection",
    "lineage_of": "mrhelpers.inspection",
    "lineage_graph": "mrhelpers.inspection",
    "metric_figure": "mrhelpers.inspection",
    "archive_version": "mrhelpers.lifecycle",
    "restore_version": "mrhelpers.lifecycle",
    "set_stage": "mrhelpers.lifecycle",
    "production_version": "mrhelpers.lifecycle",
    "lifecycle": "mrhelpers.lifecycle",
    "archive_model": "mrhelpers.lifecycle",
    "inspection": "mrhelpers.inspection",
    "serving": "mrhelpers.serving",
    "training": "mrhelpers.training",
    "ensure_secret": "mrhelpers.secrets",
    "compile_pipeline": "mrhelpers.compiling",
    "describe_package": "mrhelpers.compiling",
    "submit": "mrhelpers.runs",
    "RunHandle": "mrhelpers.runs",
    "last_run": "mrhelpers.runs",
    "record": "mrhelpers.records",
    "read_records": "mrhelpers.records",
    "localstack": "mrhelpers.localstack",
    "backends": "mrhelpers.backends",
    "doctor": "mrhelpers.doctor",
    "secrets": "mrhelpers.secrets",
    "runs": "mrhelpers.runs",
    "tutorial": "mrhelpers.tutorial",
    "components": "mrhelpers.components",
    "pipelines": "mrhelpers.pipelines",
}

__all__ = [
    "AuthError",
    "InvalidInput",
    "Lineage",
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
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mrhelpers' has no attribute {name!r}")
    loaded = import_module(module)
    return loaded if module.endswith("." + name) else getattr(loaded, name)


def __dir__() -> list[str]:
    return sorted(__all__)
