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
    """What is wrong with the backend ``settings`` name (empty: all good): locally, whether the stack that
    ``make up`` started answers; on a cluster, :mod:`~mrhelpers.backends.cluster.doctor_rules` over its objects.

    Raises:
        MRHelpersError: The cluster cannot be read with the current kubeconfig or ServiceAccount.
    """
    return settings.backend_impl().doctor(settings)
