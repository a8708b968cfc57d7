"""``make doctor`` (``python setup/doctor.py``): check the backend that the ``MRH_*`` settings name, and say what
to fix. First what the library needs (``mh.doctor``); on the cluster backend, then the install's own checks
(setup/cluster_doctor.py: pods, images, PVCs, the provisioner, RBAC, the UI's port-forward).

Exit code 0: nothing wrong; 1: findings (each a PROBLEM, its cause and its fix); 2: an error.
"""

from __future__ import annotations

import sys

from cluster_doctor import cluster_doctor

import mrhelpers as mh
from mrhelpers.core.errors import MRHelpersError


def main(argv: list[str] | None = None) -> int:
    if sys.argv[1:] if argv is None else argv:
        print(f"usage: python setup/doctor.py (or make doctor)\n{__doc__}", file=sys.stderr)
        return 2
    found, error = [], None
    try:
        settings = mh.Settings.from_env()
        found += mh.doctor(settings)
        if settings.backend == "cluster":
            found += cluster_doctor(settings)
    except MRHelpersError as exc:
        error = exc
    for f in found:
        print(f"PROBLEM: {f.check}\n  cause: {f.cause}\n  fix:   {f.fix}")
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not found:
        print(f"ok: the {settings.backend} backend answers (Model Registry at {settings.registry_url}).")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
