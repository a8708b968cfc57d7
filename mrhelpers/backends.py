"""Notebook 00: bring up the backend that ``settings.backend`` names."""

from __future__ import annotations

from typing import Any

from mrhelpers.settings import Settings


def start(settings: Settings, **kwargs: Any) -> Any:
    """Start (or keep) the backend and return its status (``.to_frame()`` for a table).

    Local: :func:`mrhelpers.localstack.up` (MariaDB + the Model Registry server).
    Cluster: :func:`mrhelpers.cluster.up`: what ``setup/cluster.sh up`` built is checked and
    reused when it answers (the port-forwards started if needed); otherwise ``up`` runs (kind,
    KFP, the Model Registry and its UI; then the port-forwards). Both are safe to run again.
    """
    if settings.backend == "local":
        from mrhelpers import localstack

        return localstack.up(settings, **kwargs)
    from mrhelpers import cluster

    return cluster.up(settings, **kwargs)


def status(settings: Settings) -> Any:
    """What runs and answers for ``settings.backend`` (``.ok``, ``.to_frame()``); changes nothing."""
    if settings.backend == "local":
        from mrhelpers import localstack

        return localstack.status(settings)
    from mrhelpers import cluster

    return cluster.status(settings)
