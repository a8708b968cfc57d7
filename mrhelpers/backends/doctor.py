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
    """What is wrong with the backend ``settings`` names (empty: all good)."""
    return settings.backend_impl().doctor(settings)
