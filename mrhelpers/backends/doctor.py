"""``doctor``: say what is wrong with the backend, why, and how to fix it."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem: what is wrong (``check``), why (``cause``), and what to do (``fix``)."""

    check: str
    cause: str
    fix: str


def doctor(settings: Any) -> list[Finding]:
    """Check the backend ``settings`` name and return what is wrong (empty: all good).

    Local: every part of the local stack runs and answers. Cluster: reads pods, events, PVCs and
    StorageClasses with the Kubernetes client (your kubeconfig) and applies the rules of
    :mod:`mrhelpers.backends.cluster.doctor`.

    Raises:
        MRHelpersError: No cluster is reachable with the current kubeconfig.
    """
    return settings.backend_impl().doctor(settings)
