"""The backends, behind one interface (:class:`Backend`): ``local`` and ``cluster``.

This is the one place that maps a backend's name to its object; everything else asks
``settings.backend_impl()`` (or :func:`get_backend`). A third backend is a subpackage with a class
that implements :class:`Backend`, registered here.
"""

from __future__ import annotations

from mrhelpers.backends.base import Backend
from mrhelpers.backends.cluster import ClusterBackend
from mrhelpers.backends.local import LocalBackend
from mrhelpers.core.settings import Settings, register_backend

register_backend(LocalBackend())
register_backend(ClusterBackend())

__all__ = ["Backend", "ClusterBackend", "LocalBackend", "get_backend"]


def get_backend(settings: Settings) -> Backend:
    """The backend object ``settings.backend`` names."""
    return settings.backend_impl()
