"""``doctor``: what the library cannot get from the backend, why, and the fix (``make doctor`` checks the install)."""

from __future__ import annotations

import dataclasses
from typing import Any

from mrhelpers.core.errors import AuthError


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem: what is wrong (``check``), why (``cause``), and what to do (``fix``)."""

    check: str
    cause: str
    fix: str


def doctor(settings: Any) -> list[Finding]:
    """What the library cannot get from the backend ``settings`` names (empty: all good)."""
    return settings.backend_impl().doctor(settings)


def failed(check: str, exc: Exception, fix: str) -> Finding:
    """The finding for a call that raised ``exc``; a refused token says so, with the token's fix."""
    if isinstance(exc, AuthError):
        fix = "store the token the registry expects in the Secret (notebook 01, `mh.ensure_secret`) or set MRH_TOKEN"
        return Finding(check.replace("does not answer", "refused the token"), str(exc), fix)
    return Finding(check, str(exc), fix)
