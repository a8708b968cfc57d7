"""Notebook 99: archive what the tutorial registered, then stop what runs."""

from __future__ import annotations

from typing import Any

from mrhelpers.core.lifecycle import archive_model
from mrhelpers.core.registry import connect
from mrhelpers.core.rest import session_for

TUTORIAL_MODELS = (
    "tutorial-scratch",
    "tutorial-component-check",
    "tutorial-regressor",
    "tutorial-regressor-packaged",
    "tutorial-classifier",
)


def cleanup(settings: Any, *, stop_stack: bool = True, quiet: bool = False) -> Any:
    """Archive the tutorial's models (versions, then the model), then stop the local stack.

    On a cluster it stops the port-forwards instead; ``setup/cluster.sh down`` deletes the cluster.

    Args:
        settings: The tutorial's settings.
        stop_stack: Also stop the local stack, or the cluster's port-forwards (default True; data is kept).
        quiet: Print nothing.

    Returns:
        A DataFrame: one row per tutorial model with the versions this call archived.
    """
    import pandas as pd  # heavy: loaded when a cleanup runs

    rows = []
    backend = settings.backend_impl()
    if backend.status(settings).ok:
        registry = connect(settings)
        for name in TUTORIAL_MODELS:
            if session_for(registry).find_model(name) is not None:
                rows.append({"model": name, "archived_versions": archive_model(registry, name)})
    if stop_stack:
        backend.stop(settings, quiet=quiet)
    return pd.DataFrame(rows, columns=["model", "archived_versions"])
