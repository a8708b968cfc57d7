"""The local backend: the registry that ``make up`` started (its address read from ``<state dir>/state.json``),
a file secret store (:mod:`.secrets`), runs with kfp.local (:mod:`.runs`), models served in this process."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mrhelpers.authoring.handles import RunHandle, run_history, run_started
from mrhelpers.backends.doctor import Finding, failed
from mrhelpers.backends.local.runs import run_component_local, submit_local
from mrhelpers.backends.local.secrets import local_secret_dir, read_local_secret, write_local_secret
from mrhelpers.backends.secrets import SecretInfo
from mrhelpers.backends.serving import Served, serve_here
from mrhelpers.core.errors import MRHelpersError
from mrhelpers.core.registry import connect
from mrhelpers.core.settings import DEFAULT_SECRET_NAME, SECRET_TOKEN_KEY, Settings, read_stack_state

KFP_LOCAL_NAME = re.compile(r"-(\d{4}(?:-\d\d){5}-\d{6})$")  # kfp.local's run name: <pipeline>-<local start time>
START = "Start the local stack with `make up` (MariaDB, the registry server, the token proxy); `make status` shows it"


class LocalBackend:
    """``backend="local"``: everything on this machine, no Kubernetes."""

    name = "local"

    def settings_defaults(self, pick: Callable[..., Any], state_dir: Path) -> dict[str, Any]:
        state = read_stack_state(state_dir)
        token = pick("token", None)
        if token is None:
            token = read_local_secret(state_dir, pick("secret_name", DEFAULT_SECRET_NAME), SECRET_TOKEN_KEY)
        return {
            "registry_url": pick("registry_url", state.get("registry_url", "http://127.0.0.1:8080")),
            "namespace": pick("namespace", "local"),
            "token": token,
            "kfp_host": pick("kfp_host", "http://127.0.0.1:8888"),
        }

    def component_registry_url(self, settings: Settings) -> str:
        return settings.registry_url  # local components run on this machine

    def unreachable_hint(self, secret_name: str) -> str:
        return f"{START}."

    def run_link(self, settings: Settings, run_id: str) -> str | None:
        return next((r["url"] for r in run_history(settings) if r.get("run_id") == run_id), None)

    def run_started(self, settings: Settings, run_id: str, run_name: str | None = None) -> int | None:
        # The registry runs on this clock: 2 s for id/time order. kfp.local names a run <pipeline>-<its start here>.
        dated, known = KFP_LOCAL_NAME.search(run_name or ""), run_started(settings, run_id, slack_s=2)
        try:
            start = dt.datetime.strptime(dated[1], "%Y-%m-%d-%H-%M-%S-%f").timestamp() - 2 if dated else None
        except (ValueError, OverflowError, OSError):  # digits in that shape, but no date
            start = None
        return known if known is not None or start is None else int(start * 1000)

    def ensure_secret(
        self, settings: Settings, name: str, data: Mapping[str, str], *, refresh: bool = True
    ) -> SecretInfo:
        # A running token proxy re-reads the token file when it changes: nothing to signal.
        return write_local_secret(settings.state_dir, name, data)

    def read_secret(self, settings: Settings, name: str) -> dict[str, str]:
        folder = local_secret_dir(settings.state_dir, name)
        if not folder.is_dir():
            return {}
        return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}

    def submit(self, pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
        return submit_local(pipeline, arguments, settings)

    def run_component(
        self, component: Callable[..., Any], arguments: dict[str, Any], settings: Settings
    ) -> dict[str, Any]:
        return run_component_local(component, arguments, settings)

    def serve(self, entry: dict[str, Any], settings: Settings, *, timeout: float, progress: bool) -> Served:
        return serve_here(entry)

    def doctor(self, settings: Settings) -> list[Finding]:
        try:
            connect(settings, retries=2)
        except MRHelpersError as exc:
            state = settings.state_dir / "state.json"
            check = f"the Model Registry at {settings.registry_url} does not answer"
            missing = Finding(check, f"no local stack: {state} does not exist", START)
            return [failed(check, exc, START) if state.is_file() else missing]
        return []
