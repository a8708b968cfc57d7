"""Notebook 00: bring up the backend that ``settings.backend`` names."""

from __future__ import annotations

from typing import Any

from mrhelpers.errors import MRHelpersError
from mrhelpers.settings import Settings


def start(settings: Settings, **kwargs: Any) -> Any:
    """Start (or keep) the backend and return its status.

    Local: :func:`mrhelpers.localstack.up` (MariaDB + the Model Registry server).
    Cluster: not built yet; follow the README's "On a real cluster" section.
    """
    if settings.backend == "local":
        from mrhelpers import localstack

        return localstack.up(settings, **kwargs)
    raise MRHelpersError(
        "backend='cluster' set-up is not built yet. Bring up kind + KFP + Model Registry as the README's "
        "'On a real cluster' section says, then run the notebooks from 01 with backend='cluster'."
    )
