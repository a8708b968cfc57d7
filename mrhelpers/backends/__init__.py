"""The backends, behind one interface (:class:`Backend`): ``local`` and ``cluster``.

This registry is the one place that maps a backend's name to its object; everything else asks
``settings.backend_impl()`` (or :func:`get_backend`). A third backend is a subpackage with a class
that implements :class:`Backend`, registered here.
"""

from __future__ import annotations

from typing import Any

from mrhelpers.backends.base import Backend
from mrhelpers.backends.cluster import ClusterBackend
from mrhelpers.backends.local import LocalBackend
from mrhelpers.core.settings import Settings, register_backend

register_backend(LocalBackend())
register_backend(ClusterBackend())

__all__ = ["Backend", "ClusterBackend", "LocalBackend", "get_backend", "start", "status"]


def get_backend(settings: Settings) -> Backend:
    """The backend object ``settings.backend`` names."""
    return settings.backend_impl()


def start(settings: Settings, **kwargs: Any) -> Any:
    """Start (or keep) the backend and return its status (``.to_frame()`` for a table). Notebook 00.

    Local: :func:`mrhelpers.backends.local.stack.up` (MariaDB + the Model Registry server).
    Cluster: :func:`mrhelpers.backends.cluster.cluster.up`: what ``setup/cluster.sh up`` built is checked
    and reused when it answers (the port-forwards started if needed); otherwise ``up`` runs (kind, KFP,
    the Model Registry and its UI; then the port-forwards). Both are safe to run again.
    """
    return get_backend(settings).start(settings, **kwargs)


def status(settings: Settings) -> Any:
    """What runs and answers for ``settings.backend`` (``.ok``, ``.to_frame()``); changes nothing."""
    return get_backend(settings).status(settings)
