"""The local backend: MariaDB and the Model Registry server on loopback (:mod:`.stack`), a file secret
store (:mod:`.secrets`), kfp.local runs (:mod:`.runs`), models served in this process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mrhelpers.authoring.handles import RunHandle, run_history, run_started
from mrhelpers.backends.doctor import Finding
from mrhelpers.backends.local import stack
from mrhelpers.backends.local.runs import run_component_local, submit_local
from mrhelpers.backends.local.secrets import local_secret_dir, read_local_secret, write_local_secret
from mrhelpers.backends.secrets import SecretInfo
from mrhelpers.backends.serving import Served, serve_here
from mrhelpers.core.registry import connect
from mrhelpers.core.settings import DEFAULT_SECRET_NAME, SECRET_TOKEN_KEY, Settings, read_stack_state


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
        return "Start the local stack with `python -m mrhelpers up` and check it with `python -m mrhelpers status`."

    def run_link(self, settings: Settings, run_id: str) -> str | None:
        return next((r["url"] for r in run_history(settings) if r.get("run_id") == run_id), None)

    def run_started(self, settings: Settings, run_id: str) -> int | None:
        return run_started(settings, run_id, slack_s=2)  # the registry runs on this clock: 2 s for id/time order

    def start(self, settings: Settings, **kwargs: Any) -> Any:
        return stack.up(settings, **kwargs)

    def stop(self, settings: Settings, *, quiet: bool = False) -> None:
        stack.down(settings, quiet=quiet)

    def status(self, settings: Settings) -> Any:
        return stack.status(settings)

    def ensure_secret(
        self, settings: Settings, name: str, data: Mapping[str, str], *, refresh: bool = True
    ) -> SecretInfo:
        info = write_local_secret(settings.state_dir, name, data)
        if info.changed and refresh and name == settings.secret_name:
            stack.refresh_proxy(settings)  # a running token-checking proxy accepts the new token at once
        return info

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
        return [
            Finding(
                f"{c.name} {_what_is_wrong(c)}",
                f"see its log: {c.log}",
                "`python -m mrhelpers up` (it stops a stray proxy by its pid)",
            )
            for c in stack.status(settings).components
            if not (c.running and c.answers) or c.name == stack.STRAY
        ]

    def doctor_ok(self, settings: Settings) -> str:
        connect(settings, retries=2)
        return f"ok: the local stack runs and the Model Registry at {settings.registry_url} answers the client."

    def after_tutorial(self, settings: Settings) -> str | None:
        return "The local stack keeps running for JupyterLab (`make lab`); stop it with `make down`."


def _what_is_wrong(part: Any) -> str:
    if part.name == stack.STRAY:
        return f"(pid {part.pid}) runs without its master, taking the token it was started with"
    return "does not answer" if part.running else "is stopped"
