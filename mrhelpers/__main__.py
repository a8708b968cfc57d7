"""The command line: ``python -m mrhelpers COMMAND`` (up, down, status, doctor, run-notebooks, cluster, ...)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrhelpers.backends.cluster import cluster
from mrhelpers.backends.doctor import doctor
from mrhelpers.backends.local import stack as localstack
from mrhelpers.core.errors import MRHelpersError
from mrhelpers.core.inspection import versions_frame
from mrhelpers.core.registry import connect
from mrhelpers.core.settings import Settings
from mrhelpers.tutorial.cleanup import TUTORIAL_MODELS, cleanup
from mrhelpers.tutorial.report import build_report
from mrhelpers.tutorial.runner import pick_notebooks, run_notebooks

SUMMARY_ROWS = 10
"""Newest versions shown per tutorial model in the closing summary."""
SUMMARY_WIDTH = 60
"""Characters shown of each value in the closing summary (a URI may hold 65,535 bytes)."""


def _registered_table(settings) -> str:  # noqa: ANN001
    """The tutorial's own models (not the rest of the registry): their newest versions, each value cut short."""
    import pandas as pd

    registry = connect(settings, retries=2)
    frames = [f for f in (versions_frame(registry, name) for name in TUTORIAL_MODELS) if len(f)]
    if not frames:
        return "(the registry holds none of the tutorial's models)"
    cols = ["model", "version", "version_id", "source_kind", "source_class", "source_id", "uri"]
    table = pd.concat([f[cols].tail(SUMMARY_ROWS) for f in frames], ignore_index=True)
    short = table.map(lambda x: x[: SUMMARY_WIDTH - 3] + "..." if isinstance(x, str) and len(x) > SUMMARY_WIDTH else x)
    hidden = sum(len(f) for f in frames) - len(table)
    more = f"\n({hidden} older versions not shown: mh.versions_frame(registry, name) lists them all)" if hidden else ""
    return short.to_string(index=False) + more


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mrhelpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the local stack (MariaDB + Model Registry server)")
    p_up.add_argument("--registry-port", type=int, help="default: MRH_REGISTRY_PORT, the last port, or a free one")
    p_up.add_argument("--db-port", type=int, help="default: MRH_DB_PORT, the last port, or a free one")
    p_up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each server (default 120)")
    p_up.add_argument(
        "--auth",
        action="store_true",
        default=None,
        help="put a token-checking proxy (nginx) in front, as on a secured cluster (default: MRH_AUTH)",
    )
    sub.add_parser("down", help="stop the local stack's processes (data is kept)")
    sub.add_parser("status", help="what runs, where, and whether it answers")
    sub.add_parser("doctor", help="check the backend end to end and say what to fix")
    sub.add_parser("install-server", help="build the pinned Model Registry server with go install (once)")
    p_rep = sub.add_parser("report", help="render executed notebooks into a static HTML site")
    p_rep.add_argument("--input", default="build/notebooks", help="executed notebooks (default build/notebooks)")
    p_rep.add_argument("--output", default="build/report", help="site folder (default build/report)")
    p_clean = sub.add_parser("cleanup", help="archive the tutorial's models, then stop the local stack")
    p_clean.add_argument("--keep-stack", action="store_true", help="archive only; leave the stack running")
    p_nb = sub.add_parser(
        "run-notebooks", help="run the notebooks (00-07) headless with papermill and show what got registered"
    )
    p_nb.add_argument(
        "--output", default="build/notebooks", help="folder for executed notebooks (default build/notebooks)"
    )
    p_nb.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter (repeatable), for example -p backend local",
    )
    p_nb.add_argument(
        "--only",
        default="",
        help="comma-separated notebook numbers or names, in order, for example 00,01,02,03,04,05 (default: 00-07)",
    )
    p_cl = sub.add_parser("cluster", help="the kind cluster: setup/cluster.sh up|down|port-forward, and its status")
    p_cl.add_argument("action", choices=["up", "down", "status", "forward", "unforward"])
    p_cl.add_argument("--multi-user", action="store_true", help="up: the full Kubeflow install")
    p_cl.add_argument("--with-kserve", action="store_true", help="up: also install KServe (notebook 07)")
    p_cl.add_argument("--dry-run", action="store_true", help="print every command, run none")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
        if args.command == "up":
            result = localstack.up(
                settings, registry_port=args.registry_port, db_port=args.db_port, auth=args.auth, timeout=args.timeout
            )
            return 0 if result.ok else 1
        if args.command == "down":
            localstack.down(settings)
            return 0
        if args.command == "status":
            result = localstack.status(settings)
            print(result)
            return 0 if result.ok else 3
        if args.command == "install-server":
            print(f"Model Registry server: {localstack.install_server(settings)}")
            return 0
        if args.command == "report":
            print(f"Report: {build_report(args.input, args.output).resolve()}")
            return 0
        if args.command == "cleanup":
            done = cleanup(settings, stop_stack=not args.keep_stack)
            print(done.to_string(index=False) if len(done) else "No tutorial models to archive.")
            return 0
        if args.command == "doctor":
            return _doctor(settings)
        if args.command == "cluster":
            return _cluster(args)
        if args.command == "run-notebooks":
            results = run_notebooks(args.output, dict(args.parameter), pick_notebooks(args.only))
            failed = [r for r in results if r.status != "ok"]
            print(f"\nExecuted notebooks: {Path(args.output).resolve()}")
            print(f"Report: {build_report(args.output, Path(args.output).parent / 'report').resolve()}")
            if failed:
                print(
                    f"FAILED: {failed[0].notebook}: {failed[0].error}\nOpen {failed[0].output} to see the failing cell."
                )
                return 1
            after = Settings.from_env(backend=dict(args.parameter).get("backend"))
            print("\nWhat the tutorial registered (its models' newest versions):")
            print(_registered_table(after))
            note = after.backend_impl().after_tutorial(after)
            if note:
                print(f"\n{note}")
            return 0
    except MRHelpersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 2


def _cluster(args: argparse.Namespace) -> int:

    settings = Settings.from_env(backend="cluster")
    if args.action == "up":
        status = cluster.up(settings, multi_user=args.multi_user, with_kserve=args.with_kserve, dry_run=args.dry_run)
        print(status)
        return 0 if status.ok or args.dry_run else 1
    if args.action == "down":
        cluster.down(dry_run=args.dry_run)
        return 0
    if args.action in ("forward", "unforward"):
        return cluster.port_forward("start" if args.action == "forward" else "stop", dry_run=args.dry_run)
    status = cluster.status(settings)
    print(status)
    return 0 if status.ok else 3


def _doctor(settings) -> int:  # noqa: ANN001

    findings = doctor(settings)
    for f in findings:
        print(f"PROBLEM: {f.check}\n  cause: {f.cause}\n  fix:   {f.fix}")
    if findings:
        return 1
    print(settings.backend_impl().doctor_ok(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
