"""``python -m mrhelpers doctor``: check the backend that the ``MRH_*`` settings name, and say what to fix.

Standing the environment up and down is setup/'s, run by make (``make up``, ``make status``, ``make down``).
"""

from __future__ import annotations

import sys

from mrhelpers.backends.doctor import doctor
from mrhelpers.core.errors import MRHelpersError
from mrhelpers.core.settings import Settings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["doctor"]:
        print(f"usage: python -m mrhelpers doctor\n{__doc__}", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
        findings = doctor(settings)
    except MRHelpersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for f in findings:
        print(f"PROBLEM: {f.check}\n  cause: {f.cause}\n  fix:   {f.fix}")
    if not findings:
        print(f"ok: the {settings.backend} backend answers (Model Registry at {settings.registry_url}).")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
