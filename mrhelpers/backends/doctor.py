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
    """What is wrong with the backend ``settings`` name (empty: all good).

    Local: the stack that ``make up`` started answers. Cluster: the rules of
    :mod:`mrhelpers.backends.cluster.doctor_rules` over the cluster's pods, events and volumes.

    Raises:
        MRHelpersError: The cluster cannot be read with the current kubeconfig or ServiceAccount.
    """
    return settings.backend_impl().doctor(settings)
