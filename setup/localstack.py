"""The local stack, run by make: MariaDB, the Model Registry server and the token proxy on 127.0.0.1.

    python setup/localstack.py up|down|status|install-server      (make up, make down, make status, make server)

``up`` starts, each as a process of its own on a free (or the recorded, or the asked) port:

* a MariaDB server (Debian's ``mariadbd``; ``make system`` installs it) with its data folder under the state
  dir, a project user for TCP, and the ``model_registry`` database, compared exactly (``utf8mb4_bin``);
* the Model Registry server (Go, built once with ``go install`` from ``setup/registry-server``);
* ``setup/token_proxy.py`` in front, checking the bearer token that the local secret store holds: on from the
  command line unless ``MRH_AUTH=0`` (``up(auth=None)`` reads ``MRH_AUTH``, default off); once on, kept on.

It records pids, ports and logs in ``<state dir>/state.json``, whose ``registry_url`` mrhelpers reads. ``down``
stops only those pids and keeps the data; ``status`` says what runs and whether it answers. ``up`` is idempotent.
Settings of its own (MRH_AUTH, MRH_DB_PORT, MRH_REGISTRY_PORT, MRH_PROXY_PORT) are read here, not by mrhelpers.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import getpass
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from net import free_port, http_status

from mrhelpers.backends.local.secrets import local_secret_dir, read_local_secret, write_local_secret
from mrhelpers.backends.secrets import check_secret, choose_token
from mrhelpers.core.errors import MRHelpersError, StackError
from mrhelpers.core.progress import Progress
from mrhelpers.core.settings import SECRET_TOKEN_KEY, Settings, project_root, versions

DATABASE = "model_registry"
COLLATION = "utf8mb4_bin"
"""The local database compares text exactly: names and keys that differ in case, accent or emoji are different."""
DB_USER = "mrhelpers"
COMPONENTS = ("mariadb", "registry", "proxy")
_BINARIES = {"mariadb": "mariadbd", "registry": "model-registry", "proxy": "token_proxy.py"}
PROXY = Path(__file__).resolve().with_name("token_proxy.py")
_PASSWORD = re.compile(r"[A-Za-z0-9_-]{16,}")
"""What a database password may hold: it is written into SQL, so no quote or backslash can be in it."""
_BEARER = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")


def _say(message: str, quiet: bool = False) -> None:
    if not quiet:
        print(message, flush=True)


# --------------------------------------------------------------------------- state and processes


def _state_path(settings: Settings) -> Path:
    return settings.state_dir / "state.json"


def _load(settings: Settings) -> dict[str, Any]:
    try:
        return json.loads(_state_path(settings).read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError:
        raise StackError(
            f"{_state_path(settings)} is not valid JSON. Stop any stack processes you started "
            f"(`make status`), then delete that file and run `make up`."
        ) from None


def _save(settings: Settings, state: dict[str, Any]) -> None:
    path = _state_path(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.state_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _alive(pid: int | None, binary: str) -> bool:
    """True when ``pid`` runs and is the program we started (not a reused pid)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    comm, _, rest = stat.partition("(")[2].rpartition(")")
    if rest.split()[:1] == ["Z"]:  # a zombie has exited
        return False
    argv = [Path(a.decode(errors="replace")).name for a in cmdline.split(b"\0")[:2]]
    # comm is the executable's name cut to 15 characters; cmdline can be empty for a moment right
    # after exec, so either one naming the program is enough (the proxy: python, then its script).
    return comm == binary[:15] or binary in argv


def _port_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:``port`` now.

    SO_REUSEADDR, as the servers themselves set it, so connections of a stopped
    server lingering in TIME_WAIT do not make its port look busy.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_port(name: str, asked: int | None, recorded: int | None, env: str) -> int:
    if asked:
        if not _port_free(asked):
            raise StackError(
                f"Port {asked} on 127.0.0.1, asked for the {name}, is in use. Free it "
                f"(`ss -ltnp 'sport = :{asked}'` shows who holds it) or pick another with {env}=PORT "
                "or leave it unset to let the stack choose a free one."
            )
        return asked
    if recorded and _port_free(recorded):
        return recorded
    return free_port()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join("    " + line for line in text[-lines:])


def _reap(pid: int) -> None:
    """Collect the exit status of our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _stop_pid(pid: int, binary: str, timeout: float = 30.0) -> None:
    """SIGTERM ``pid`` if it is still ``binary``; SIGKILL after ``timeout`` seconds."""
    if _alive(pid, binary):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid, binary) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid, binary):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
    _reap(pid)


def _spawn(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    return proc.pid


def _wait(what: str, check: Any, timeout: float, pid: int, binary: str, log: Path, quiet: bool) -> None:
    """Poll ``check()`` until true, showing progress; fail naming ``what`` with the log's tail."""

    with Progress(f"Waiting for the {what} (pid {pid})", quiet=quiet) as progress:
        start = time.monotonic()
        while not check():
            if not _alive(pid, binary):
                raise StackError(
                    f"The {what} (pid {pid}) exited during start-up. Its log, {log}, ends with:\n{_tail(log)}"
                )
            if time.monotonic() - start > timeout:
                _stop_pid(pid, binary)  # do not leave a half-started server behind
                raise StackError(
                    f"The {what} did not become ready within {timeout:.0f} s. Its log, {log}, ends with:\n"
                    f"{_tail(log)}\nStop the stack with `make down` and try again."
                )
            progress.update(f"of at most {timeout:.0f} s")
            time.sleep(0.25)
        progress.done("ready")


# --------------------------------------------------------------------------- MariaDB


def _find(binary: str) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"):
        candidate = Path(folder) / binary
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_mariadb() -> str:
    """The path of ``mariadbd``.

    Raises:
        StackError: When it is missing, naming ``make system``, which installs it.
    """
    found = _find("mariadbd")
    if not found:
        raise StackError(
            "MariaDB is not installed (no `mariadbd` on PATH or in /usr/sbin). Run `make system`, which installs "
            "Debian's mariadb-server, or install MariaDB 10.11+ with your package manager; then `make up` again."
        )
    return found


def _find_go() -> str | None:
    """``go`` on PATH, or in the official install location /usr/local/go/bin."""
    found = _find("go")
    if found:
        return found
    official = Path("/usr/local/go/bin/go")
    return str(official) if official.is_file() else None


def _socket_path(settings: Settings) -> Path:
    path = settings.state_dir / "mariadb" / "mysqld.sock"
    if len(str(path)) < 100:
        return path
    digest = hashlib.sha1(str(settings.state_dir).encode(), usedforsecurity=False).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"mrh-{digest}.sock"


def _user_args() -> list[str]:
    return ["--user=root"] if os.geteuid() == 0 else []


def _sql(settings: Settings, sql: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    client = _find("mariadb") or _find("mysql")
    if client is None:
        raise StackError("The MariaDB client (`mariadb`) is missing: run `make system` (Debian's mariadb-client).")
    return subprocess.run(
        [client, "--no-defaults", f"--socket={_socket_path(settings)}", "-u", getpass.getuser(), "--batch"],
        input=sql,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _db_password(settings: Settings) -> str:
    path = settings.state_dir / "mariadb" / "password"
    if path.exists():
        value = path.read_text().strip()
        if not _PASSWORD.fullmatch(value):
            raise StackError(
                f"The database password in {path} holds characters other than letters, digits, - and _ (or is "
                "shorter than 16): it is written into SQL, so it is refused. Run `make down`, delete that file "
                "and the folder mariadb/data next to it (the registry's data), then `make up`."
            )
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _start_mariadb(settings: Settings, state: dict[str, Any], port: int | None, timeout: float, quiet: bool) -> None:
    mariadbd = find_mariadb()
    base = settings.state_dir / "mariadb"
    datadir = base / "data"
    log = settings.state_dir / "logs" / "mariadb.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if not (datadir / "mysql").is_dir():
        installer = _find("mariadb-install-db") or _find("mysql_install_db")
        if installer is None:
            raise StackError("`mariadb-install-db` is missing: run `make system` (Debian's mariadb-server).")
        _say(f"Creating the MariaDB data folder {datadir} ...", quiet)
        datadir.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            proc = subprocess.run(
                [
                    installer,
                    "--no-defaults",
                    f"--datadir={datadir}",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                    *_user_args(),
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        if proc.returncode != 0:
            shutil.rmtree(datadir, ignore_errors=True)
            raise StackError(
                f"mariadb-install-db failed (exit {proc.returncode}). Its output, in {log}, ends with:\n{_tail(log)}"
            )
    old = state.get("mariadb", {})
    port = _choose_port("MariaDB server", port, old.get("port"), "MRH_DB_PORT")
    sock = _socket_path(settings)
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()  # left by a server that was killed
    _say(f"Starting MariaDB on 127.0.0.1:{port} ...", quiet)
    pid = _spawn(
        [
            mariadbd,
            "--no-defaults",
            f"--datadir={datadir}",
            "--bind-address=127.0.0.1",
            f"--port={port}",
            f"--socket={sock}",
            f"--pid-file={base / 'mariadbd.pid'}",
            f"--log-error={log}",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            *_user_args(),
        ],
        log,
    )
    state["mariadb"] = {"pid": pid, "port": port, "socket": str(sock), "log": str(log), "datadir": str(datadir)}
    _save(settings, state)
    _wait("MariaDB server", lambda: _sql(settings, "SELECT 1;").returncode == 0, timeout, pid, "mariadbd", log, quiet)
    password = _db_password(settings)
    setup = (
        f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4 COLLATE {COLLATION};\n"
        f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
        f"ALTER USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
        f"GRANT ALL PRIVILEGES ON {DATABASE}.* TO '{DB_USER}'@'127.0.0.1';\n"
    )
    proc = _sql(settings, setup)
    if proc.returncode != 0:
        raise StackError(f"Creating the database and user failed: {proc.stderr.strip()}")


def _not_exact(settings: Settings) -> list[str]:
    """Tables of the registry's database whose text columns (or default) do not compare exactly."""
    proc = _sql(
        settings,
        "SELECT DISTINCT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
        f"'{DATABASE}' AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME <> '{COLLATION}' "
        "UNION SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
        f"'{DATABASE}' AND TABLE_COLLATION <> '{COLLATION}';",
    )
    if proc.returncode != 0:
        raise StackError(f"Reading the collation of the database {DATABASE!r} failed: {proc.stderr.strip()}")
    return [line.strip() for line in proc.stdout.splitlines()[1:] if line.strip()]


def ensure_exact_collation(settings: Settings, quiet: bool = False) -> list[str]:
    """Make the registry's database compare text exactly (``utf8mb4_bin``); keep the data.

    A stack created before this (with MariaDB's default ``utf8mb4_general_ci``) is
    converted table by table (``ALTER TABLE ... CONVERT TO``). Rows stay as they
    are: a case-insensitive unique index never held two names that differ only in
    case, so the exact one cannot find duplicates. Idempotent and quick when
    nothing is left to convert.

    Returns:
        The tables converted.
    """
    tables = _not_exact(settings)
    if not tables:
        return []
    _say(f"Making {len(tables)} tables of {DATABASE!r} compare text exactly ({COLLATION}) ...", quiet)
    statements = [f"ALTER DATABASE `{DATABASE}` CHARACTER SET utf8mb4 COLLATE {COLLATION};"]
    statements += [
        f"ALTER TABLE `{DATABASE}`.`{t}` CONVERT TO CHARACTER SET utf8mb4 COLLATE {COLLATION};" for t in tables
    ]
    proc = _sql(settings, "\n".join(statements), timeout=3600)
    if proc.returncode != 0:
        raise StackError(
            f"Converting {DATABASE!r} to the exact collation {COLLATION} failed: {proc.stderr.strip()}. "
            "The data is unchanged where the statement failed; run `make up` again."
        )
    return tables


# --------------------------------------------------------------------------- Model Registry server


def server_binary(settings: Settings) -> Path:
    """Where the Go-built Model Registry server lives."""
    return settings.bin_dir / "model-registry"


def install_server(settings: Settings, quiet: bool = False) -> Path:
    """Build the pinned Model Registry server with ``go install`` unless already there.

    The binary goes to ``settings.bin_dir``; a stamp file next to it records the
    version so a change in setup/versions.env triggers a rebuild.

    Raises:
        StackError: No clone of the project, no Go, or the build failed.
    """
    wanted = versions().get("MODEL_REGISTRY_SERVER_VERSION", "")
    binary = server_binary(settings)
    stamp = binary.with_name("model-registry.version")
    if binary.is_file() and stamp.is_file() and stamp.read_text().strip() == wanted:
        return binary
    root = project_root()
    if root is None:
        raise StackError("The local stack needs a clone of the project (setup/registry-server) to build the server.")
    go = _find_go()
    if go is None:
        raise StackError(
            "Go is not installed, and the Model Registry server is built with `go install`. Install Go 1.24 "
            "or later (https://go.dev/doc/install) so that `go` is on PATH, then run `make up` again."
        )
    settings.bin_dir.mkdir(parents=True, exist_ok=True)
    log = settings.bin_dir / "go-install.log"

    env = dict(os.environ, GOBIN=str(settings.bin_dir), GOFLAGS="-buildvcs=false")
    what = f"Building the Model Registry server {wanted} with `go install` (first time only; about a minute)"
    with Progress(what, quiet=quiet) as progress, open(log, "wb") as fh:
        proc = subprocess.Popen(
            [go, "install", "github.com/kubeflow/model-registry"],
            cwd=root / "setup" / "registry-server", stdout=fh, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        while proc.poll() is None:
            time.sleep(1)
            progress.update("")
        progress.done("built" if proc.returncode == 0 else f"failed (exit {proc.returncode})")
    if proc.returncode != 0 or not binary.is_file():
        raise StackError(
            f"`go install github.com/kubeflow/model-registry` (in setup/registry-server) failed with exit "
            f"{proc.returncode}. Its output, {log}, ends with:\n{_tail(log)}"
        )
    stamp.write_text(wanted + "\n")
    return binary


def _http_ok(url: str, token: str | None = None, timeout: float = 2.0) -> bool:
    return http_status(url, token, timeout) == 200


def api_path() -> str:
    return versions()["MODEL_REGISTRY_API_PATH"]


def _start_registry(settings: Settings, state: dict[str, Any], port: int | None, timeout: float, quiet: bool) -> None:
    binary = install_server(settings, quiet)
    old = state.get("registry", {})
    port = _choose_port("Model Registry server", port, old.get("port"), "MRH_REGISTRY_PORT")
    log = settings.state_dir / "logs" / "model-registry.log"
    db = state["mariadb"]
    dsn = f"{DB_USER}:{_db_password(settings)}@tcp(127.0.0.1:{db['port']})/{DATABASE}?charset=utf8mb4"
    # The DSN holds the password: pass it through the environment (the server reads
    # MR_<FLAG> variables), not argv, so `ps` does not show it.
    env = dict(os.environ, MR_EMBEDMD_DATABASE_DSN=dsn)
    _say(f"Starting the Model Registry server on 127.0.0.1:{port} ...", quiet)
    pid = _spawn(
        [
            str(binary),
            "proxy",
            "--hostname",
            "127.0.0.1",
            "--port",
            str(port),
            "--datastore-type",
            "embedmd",
            "--embedmd-database-type",
            "mysql",
        ],
        log,
        env=env,
        cwd=settings.state_dir,
    )
    url = f"http://127.0.0.1:{port}"
    state["registry"] = {"pid": pid, "port": port, "log": str(log), "url": url}
    state["registry_url"] = url
    _save(settings, state)
    ready = f"{url}{api_path()}/registered_models?pageSize=1"
    _wait(
        "Model Registry server",
        lambda: _http_ok(f"{url}/readyz/isDirty") and _http_ok(ready),
        timeout,
        pid,
        "model-registry",
        log,
        quiet,
    )


# --------------------------------------------------------------------------- token-checking proxy


def _proxy_token(settings: Settings) -> str:
    token = read_local_secret(settings.state_dir, settings.secret_name, SECRET_TOKEN_KEY)
    if token is None:
        token = choose_token(settings)
        data = {SECRET_TOKEN_KEY: token}
        check_secret(settings.secret_name, data)
        write_local_secret(settings.state_dir, settings.secret_name, data)
    if token != token.strip():
        raise StackError(
            f"The token in the Secret {settings.secret_name!r} ({settings.state_dir}/secrets/{settings.secret_name}/"
            f"{SECRET_TOKEN_KEY}) has surrounding spaces or a newline. The stack refuses it rather than guess "
            "which characters belong to the token. Write it without them: "
            f"mrhelpers.ensure_secret(settings, {settings.secret_name!r}, {{'token': TOKEN}}), or `printf %s TOKEN > "
            "<that file>` (`echo` adds a newline)."
        )
    if not _BEARER.fullmatch(token):
        raise StackError(
            f"The token in the Secret {settings.secret_name!r} has characters a bearer token cannot carry. "
            "Store one made of letters, digits and -._~+/ (notebook 01 or ensure_secret)."
        )
    return token


def _token_file(settings: Settings) -> Path:
    return local_secret_dir(settings.state_dir, settings.secret_name) / SECRET_TOKEN_KEY


def _start_proxy(settings: Settings, state: dict[str, Any], port: int | None, timeout: float, quiet: bool) -> None:
    token = _proxy_token(settings)
    old = state.get("proxy", {})
    port = _choose_port("token-checking proxy", port, old.get("port"), "MRH_PROXY_PORT")
    log = settings.state_dir / "logs" / "token-proxy.log"
    url = f"http://127.0.0.1:{port}"
    upstream = state["registry"]["port"]
    _say(f"Starting the token-checking proxy on 127.0.0.1:{port} ...", quiet)
    argv = [sys.executable, str(PROXY), "--port", str(port), "--upstream", str(upstream)]
    pid = _spawn([*argv, "--token-file", str(_token_file(settings))], log)
    state["proxy"] = {"pid": pid, "port": port, "url": url, "log": str(log), "upstream": upstream}
    state["registry_url"] = url
    _save(settings, state)
    probe = f"{url}{api_path()}/registered_models?pageSize=1"
    _wait("token-checking proxy", lambda: _http_ok(probe, token), timeout, pid, _BINARIES["proxy"], log, quiet)
    refused = http_status(probe, timeout=30)
    if refused != 401:
        _stop_pid(pid, _BINARIES["proxy"])  # do not leave a proxy running that does not check the token
        raise StackError(f"The proxy at {url} answered a request without a token with {refused}, not 401; see {log}.")


# --------------------------------------------------------------------------- public API


@dataclasses.dataclass(frozen=True)
class ComponentStatus:
    """One process of the local stack."""

    name: str
    pid: int | None
    running: bool
    address: str | None
    answers: bool
    log: str | None


@dataclasses.dataclass(frozen=True)
class StackStatus:
    """What the local stack runs; ``ok`` when every part runs and answers."""

    state_dir: str
    registry_url: str | None
    components: tuple[ComponentStatus, ...]
    open_port: str | None = None
    """The registry server's own address while it runs: it takes writes without a token."""

    @property
    def ok(self) -> bool:
        return all(c.running and c.answers for c in self.components)

    def to_frame(self) -> Any:
        """The components as a pandas DataFrame (for notebooks)."""
        import pandas as pd

        return pd.DataFrame([dataclasses.asdict(c) for c in self.components])

    def __str__(self) -> str:
        lines = [f"Local stack in {self.state_dir}: {'up' if self.ok else 'NOT fully up'}"]
        for c in self.components:
            state = "running" if c.running else "stopped"
            answer = "answers" if c.answers else "does not answer"
            where = c.address or "-"
            lines.append(f"  {c.name:<9} {state:<8} pid {c.pid or '-':<8} {where:<24} {answer:<16} log {c.log or '-'}")
        if self.ok:
            lines.append(f"  Model Registry API: {self.registry_url}{api_path()}")
        else:
            lines.append("  Start it, or what stopped, with `make up` (the data is kept).")
        if self.open_port:
            proxy = any(c.name == "proxy" for c in self.components)
            lines.append(
                f"  Open port: the registry server itself, {self.open_port}, takes reads and writes from any user "
                "of this machine without a token"
                + (
                    "; the proxy models a secured cluster for the tutorial and is not a security boundary here."
                    if proxy
                    else "."
                )
            )
        return "\n".join(lines)


def status(settings: Settings | None = None) -> StackStatus:
    """Report which parts of the local stack run and answer; changes nothing."""
    settings = settings or Settings.from_env()
    state = _load(settings)
    parts = []
    db = state.get("mariadb", {})
    db_running = _alive(db.get("pid"), "mariadbd")
    db_answers = db_running and _sql(settings, "SELECT 1;").returncode == 0
    parts.append(
        ComponentStatus(
            "mariadb",
            db.get("pid"),
            db_running,
            f"127.0.0.1:{db['port']}" if db.get("port") else None,
            db_answers,
            db.get("log"),
        )
    )
    reg = state.get("registry", {})
    reg_running = _alive(reg.get("pid"), "model-registry")
    reg_answers = reg_running and _http_ok(f"{reg.get('url')}{api_path()}/registered_models?pageSize=1")
    parts.append(ComponentStatus("registry", reg.get("pid"), reg_running, reg.get("url"), reg_answers, reg.get("log")))
    if state.get("auth"):
        proxy = state.get("proxy", {})
        proxy_running = _alive(proxy.get("pid"), _BINARIES["proxy"])
        proxy_answers = proxy_running and http_status(f"{proxy.get('url')}{api_path()}/registered_models") == 401
        parts.append(
            ComponentStatus("proxy", proxy.get("pid"), proxy_running, proxy.get("url"), proxy_answers, proxy.get("log"))
        )
    open_port = reg.get("url") if reg_running else None
    return StackStatus(str(settings.state_dir), state.get("registry_url"), tuple(parts), open_port)


def up(
    settings: Settings | None = None,
    *,
    registry_port: int | None = None,
    db_port: int | None = None,
    auth: bool | None = None,
    timeout: float = 120.0,
    quiet: bool = False,
) -> StackStatus:
    """Start the local stack, or keep the one that runs; idempotent.

    Args:
        settings: Where the state lives (``settings.state_dir``) and the binary (``bin_dir``).
        registry_port: Port for the Model Registry server; default ``MRH_REGISTRY_PORT``,
            else the port used last time if free, else a free one.
        db_port: Port for MariaDB; default ``MRH_DB_PORT``, likewise.
        auth: Put the token-checking proxy (``setup/token_proxy.py``) in front of the server, as a secured
            cluster has: requests without ``Authorization: Bearer <token>`` (the token in
            the local Secret, created when missing) get HTTP 401, and ``registry_url``
            becomes the proxy's. Default: ``MRH_AUTH`` (``1``/``true``), else what the
            stack had last time, else off. Once on, it stays on for this state folder.
        timeout: Seconds to wait for each server to become ready (default 120).
        quiet: Print no progress lines.

    Returns:
        The :class:`StackStatus` after start-up.

    Raises:
        StackError: Naming what did not come up, its log, and the next step.
    """
    settings = settings or Settings.from_env()
    registry_port = registry_port or _env_int("MRH_REGISTRY_PORT")
    db_port = db_port or _env_int("MRH_DB_PORT")
    if auth is None:
        auth = os.environ.get("MRH_AUTH", "").lower() in ("1", "true", "yes")
    with _locked(settings):
        state = _load(settings)
        state["auth"] = bool(auth or state.get("auth"))
        for name in COMPONENTS:
            pid = state.get(name, {}).get("pid")
            if pid and not _alive(pid, _BINARIES[name]):
                _say(f"Found a stale pid {pid} for {name} (that process is gone); starting a new one.", quiet)
                state[name]["pid"] = None
        if _alive(state.get("mariadb", {}).get("pid"), "mariadbd"):
            _say(f"MariaDB already runs (pid {state['mariadb']['pid']}, port {state['mariadb']['port']}).", quiet)
        else:
            _start_mariadb(settings, state, db_port, timeout, quiet)
        if _alive(state.get("registry", {}).get("pid"), "model-registry"):
            _say(f"The Model Registry server already runs at {state['registry']['url']}.", quiet)
        else:
            _start_registry(settings, state, registry_port, timeout, quiet)
        ensure_exact_collation(settings, quiet)  # after the server's migrations made the tables
        if state["auth"]:
            proxy = state.get("proxy", {})
            if _alive(proxy.get("pid"), _BINARIES["proxy"]) and proxy.get("upstream") != state["registry"]["port"]:
                _say("The registry server has a new port: starting the proxy again in front of it.", quiet)
                _stop_pid(proxy["pid"], _BINARIES["proxy"])
            if _alive(proxy.get("pid"), _BINARIES["proxy"]):
                _proxy_token(settings)  # still a token it can check
                state["registry_url"] = proxy["url"]  # a registry started again above must not be the address
                _say(f"The token-checking proxy already runs at {proxy['url']}.", quiet)
            else:
                _start_proxy(settings, state, _env_int("MRH_PROXY_PORT"), timeout, quiet)
        _save(settings, state)
    result = status(settings)
    _say(str(result), quiet)
    return result


def down(settings: Settings | None = None, *, quiet: bool = False) -> list[str]:
    """Stop the processes that ``up`` started (by their recorded pids); keep the data.

    Returns:
        The names of the parts that were stopped.
    """
    settings = settings or Settings.from_env()
    stopped = []
    with _locked(settings):
        state = _load(settings)
        for name in reversed(COMPONENTS):
            part = state.get(name, {})
            pid = part.get("pid")
            if _alive(pid, _BINARIES[name]):
                _say(f"Stopping {name} (pid {pid}) ...", quiet)
                _stop_pid(pid, _BINARIES[name])
                stopped.append(name)
            if part:
                part["pid"] = None
        if state:
            _save(settings, state)
    _say(f"Stopped: {', '.join(stopped) or 'nothing was running'}. Data kept in {settings.state_dir}.", quiet)
    return stopped


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise StackError(f"{name}={value!r} is not a port number (1-65535).")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="setup/localstack.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the local stack, or keep the one that runs")
    p_up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each server (default 120)")
    sub.add_parser("down", help="stop the stack's processes by their recorded pids (data is kept)")
    sub.add_parser("status", help="what runs, where, and whether it answers (exit 3 when not fully up)")
    sub.add_parser("install-server", help="build the pinned Model Registry server with go install (once)")
    args = parser.parse_args(argv)
    settings = Settings.from_env(backend="local")
    try:
        if args.command == "up":
            auth = os.environ.get("MRH_AUTH", "1").lower() in ("1", "true", "yes")  # on unless MRH_AUTH=0
            return 0 if up(settings, auth=auth, timeout=args.timeout).ok else 1
        if args.command == "down":
            down(settings)
            return 0
        if args.command == "status":
            result = status(settings)
            print(result)
            return 0 if result.ok else 3
        print(f"Model Registry server: {install_server(settings)}")
        return 0
    except MRHelpersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
