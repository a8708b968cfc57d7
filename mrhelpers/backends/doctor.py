"""``doctor``: what the library cannot get from the backend, why, and the fix (``make doctor`` checks the install)."""

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
    """What the library cannot get from the backend ``settings`` names (empty: all good)."""
    return settings.backend_impl().doctor(settings)
