"""Notebook 00, local backend: run a real Model Registry server on this machine.

``up`` starts two processes, each of its own, on 127.0.0.1:

* a MariaDB server (Debian's ``mariadb-server``) with its data folder under the
  state dir, a project user for TCP, and the ``model_registry`` database;
* the Model Registry server (Go, built once with ``go install`` from
  ``setup/registry-server``), ``model-registry proxy --datastore-type embedmd``.

It records pids, ports and log paths in ``<state dir>/state.json``. ``down``
stops only those pids and keeps the data; ``status`` says what runs and whether
it answers. ``up`` is idempotent and safe to run again after ``down``.
"""

from __future__ import annotations

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
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mrhelpers.backends.local.secrets import read_local_secret, write_local_secret
from mrhelpers.backends.net import free_port, http_status
from mrhelpers.backends.secrets import check_secret, choose_token
from mrhelpers.core.errors import StackError
from mrhelpers.core.progress import Progress
from mrhelpers.core.settings import SECRET_TOKEN_KEY, Settings, project_root, versions

DATABASE = "model_registry"
COLLATION = "utf8mb4_bin"
"""The local database compares text exactly: names and keys that differ in case, accent or emoji are different."""
DB_USER = "mrhelpers"
COMPONENTS = ("mariadb", "registry", "proxy")
STRAY = "stray proxy"
"""What :func:`status` calls an nginx process of this stack that no running master owns."""
_BINARIES = {"mariadb": "mariadbd", "registry": "model-registry", "proxy": "nginx"}
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
            f"(`python -m mrhelpers status`), then delete that file and run `python -m mrhelpers up`."
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
    first = cmdline.split(b"\0")[0].decode(errors="replace")
    # comm is the executable's name cut to 15 characters; cmdline can be empty for a
    # moment right after exec, so either one naming the program is enough.
    return comm == binary[:15] or (bool(first) and Path(first).name == binary)


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
                    f"{_tail(log)}\nStop the stack with `python -m mrhelpers down` and try again, "
                    "or raise the timeout with --timeout."
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


def ensure_mariadb_installed(quiet: bool = False) -> str:
    """Return the path of ``mariadbd``, installing Debian's package when missing.

    Raises:
        StackError: When it is missing and cannot be installed here (no apt, not root).
    """
    found = _find("mariadbd")
    if found:
        return found
    package = versions().get("MARIADB_DEBIAN_PACKAGE", "mariadb-server")
    if not shutil.which("apt-get"):
        raise StackError(
            "MariaDB is not installed and this system has no apt-get. Install MariaDB 10.11 or later "
            "with your package manager (for example `brew install mariadb`) so that `mariadbd` is on PATH, "
            "then run `python -m mrhelpers up` again."
        )
    if os.geteuid() != 0:
        raise StackError(
            f"MariaDB is not installed. Install it with `sudo apt-get update && sudo apt-get install -y {package}`, "
            "then run `python -m mrhelpers up` again."
        )
    _say(f"Installing {package} from Debian's packages (apt-get) ...", quiet)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise StackError(f"`{' '.join(argv)}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    found = _find("mariadbd")
    if not found:
        raise StackError(f"{package} installed but `mariadbd` is still not found on PATH or in /usr/sbin.")
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
        raise StackError("The MariaDB client (`mariadb`) is missing: install Debian's mariadb-client.")
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
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _start_mariadb(settings: Settings, state: dict[str, Any], port: int | None, timeout: float, quiet: bool) -> None:
    mariadbd = ensure_mariadb_installed(quiet)
    base = settings.state_dir / "mariadb"
    datadir = base / "data"
    log = settings.state_dir / "logs" / "mariadb.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if not (datadir / "mysql").is_dir():
        installer = _find("mariadb-install-db") or _find("mysql_install_db")
        if installer is None:
            raise StackError("`mariadb-install-db` is missing: reinstall Debian's mariadb-server.")
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
            "The data is unchanged where the statement failed; run `python -m mrhelpers up` again."
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
            "or later (https://go.dev/doc/install) so that `go` is on PATH, then run `python -m mrhelpers up` again."
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


# --------------------------------------------------------------------------- token-checking proxy (nginx)

_NGINX_CONF = """# Written by mrhelpers.backends.local.stack; holds the token, so mode 0600.
worker_processes 1;
error_log {logs}/nginx-error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {logs}/nginx-access.log;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    # A regular expression with ~ (not ~*): matched exactly, letter case included. A plain
    # string key of a map is matched ignoring case.
    map $http_authorization $mrh_authorized {{
        default 0;
        "~^Bearer {token}$" 1;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 32m;
        # Stream bodies both ways: no temporary files, which nginx's workers (user nobody when
        # started as root) could not write in a private state folder (HTTP 500 past 16 KiB).
        proxy_request_buffering off;
        proxy_buffering off;
        location / {{
            if ($mrh_authorized = 0) {{
                add_header WWW-Authenticate 'Bearer realm="model-registry"' always;
                return 401 '{{"code":"Unauthorized","message":"missing or wrong bearer token"}}';
            }}
            proxy_pass http://127.0.0.1:{upstream};
        }}
    }}
}}
"""


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
            f"{SECRET_TOKEN_KEY}) has surrounding spaces or a newline. mrhelpers refuses it rather than guess "
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


def token_regex(token: str) -> str:
    """``token`` as a PCRE matching only itself: of its characters only ``.`` and ``+`` are special."""
    return token.replace(".", "[.]").replace("+", "[+]")


def _conf_token(conf: Path) -> str | None:
    """The token a written proxy configuration accepts (to tell when a reload has taken)."""
    found = re.search(r'"~\^Bearer (.*)\$" 1;', conf.read_text()) if conf.exists() else None
    return found.group(1).replace("[.]", ".").replace("[+]", "+") if found else None


def _write_proxy_conf(settings: Settings, state: dict[str, Any]) -> Path:
    prefix = settings.state_dir / "nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    token = _proxy_token(settings)
    text = _NGINX_CONF.format(
        logs=settings.state_dir / "logs", prefix=prefix, port=state["proxy"]["port"],
        upstream=state["registry"]["port"], token=token_regex(token),
    )  # fmt: skip
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return conf


def ensure_nginx_installed(quiet: bool = False) -> str:
    """Return the path of ``nginx``, installing Debian's ``nginx-light`` when missing (as root).

    Raises:
        StackError: When it is missing and cannot be installed here.
    """
    found = _find("nginx")
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        raise StackError(
            "The token-checking proxy needs nginx: `sudo apt-get install -y nginx-light` "
            "(or run `make install`), then `python -m mrhelpers up --auth` again."
        )
    _say("Installing nginx-light from Debian's packages (apt-get) ...", quiet)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], env=env, capture_output=True, text=True)
    found = _find("nginx")
    if proc.returncode != 0 or not found:
        raise StackError(f"`apt-get install nginx-light` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return found


def _start_proxy(settings: Settings, state: dict[str, Any], port: int | None, timeout: float, quiet: bool) -> None:
    nginx = ensure_nginx_installed(quiet)
    _stop_stray_proxies(settings, None, quiet)  # a worker left by a killed master holds the old token
    old = state.get("proxy", {})
    port = _choose_port("token-checking proxy", port, old.get("port"), "MRH_PROXY_PORT")
    log = settings.state_dir / "logs" / "nginx-error.log"
    url = f"http://127.0.0.1:{port}"
    state["proxy"] = {"pid": None, "port": port, "url": url, "log": str(log)}
    conf = _write_proxy_conf(settings, state)
    _say(f"Starting the token-checking proxy (nginx) on 127.0.0.1:{port} ...", quiet)
    pid = _spawn([nginx, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"], log)
    state["proxy"]["pid"] = pid
    state["registry_url"] = url
    _save(settings, state)
    probe = f"{url}{api_path()}/registered_models?pageSize=1"
    token = _proxy_token(settings)
    _wait("token-checking proxy", lambda: _http_ok(probe, token), timeout, pid, "nginx", log, quiet)
    if http_status(probe) != 401:
        raise StackError(f"The proxy at {url} let a request without a token through; check {conf}.")


def _own_nginx_pids(settings: Settings, keep: int | None = None) -> list[int]:
    """nginx processes of this stack other than ``keep`` (the recorded master) and its workers.

    A process is this stack's when it is nginx and its command line names this stack's
    configuration file (a master), or it holds a file of this stack's state folder open
    (a worker, which keeps the logs open; its command line is just ``nginx: worker process``).
    A worker outlives a master killed with ``kill -9`` and keeps serving the old token.
    """
    conf = str(settings.state_dir / "nginx" / "nginx.conf")
    own = (str(settings.state_dir / "logs") + "/", str(settings.state_dir / "nginx") + "/")
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) in (keep, os.getpid()):
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat.partition("(")[2].rpartition(")")[0] != "nginx":
                continue
            if int(stat.rpartition(")")[2].split()[1]) == keep:  # a worker of the running master
                continue
            mine = conf in (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if not mine:
                mine = any(os.readlink(fd).startswith(own) for fd in (entry / "fd").iterdir())
        except (OSError, ValueError, IndexError):
            continue  # gone, or not ours to read
        if mine:
            found.append(int(entry.name))
    return found


def _stop_stray_proxies(settings: Settings, keep: int | None, quiet: bool) -> list[int]:
    """Stop this stack's nginx processes that no recorded master owns; return their pids."""
    strays = _own_nginx_pids(settings, keep)
    for pid in strays:
        _say(f"Stopping a stray proxy process of this stack (nginx, pid {pid}) ...", quiet)
        _stop_pid(pid, "nginx", timeout=5.0)
    return strays


def refresh_proxy(settings: Settings) -> bool:
    """Make a running proxy accept the token now in the local secret store (after a change).

    Waits until the new token is accepted and the old one refused: after a reload,
    nginx's old worker keeps accepting connections for a moment.

    A master killed with ``kill -9`` leaves its workers serving the old token: then the proxy is
    started again (as ``up`` does, which stops those workers by pid first).

    Returns:
        True when a proxy was running and now takes the new token.
    """
    state = _load(settings)
    proxy = state.get("proxy", {})
    if not _alive(proxy.get("pid"), "nginx"):
        if not _own_nginx_pids(settings):
            return False
        return up(settings, quiet=True).ok
    conf = settings.state_dir / "nginx" / "nginx.conf"
    before = _conf_token(conf)
    _write_proxy_conf(settings, state)
    os.kill(proxy["pid"], signal.SIGHUP)
    probe = f"{proxy['url']}{api_path()}/registered_models?pageSize=1"
    token = _proxy_token(settings)
    old = before if before and before != token else None
    deadline = time.monotonic() + 15
    settled = 0
    while settled < 3:
        ok = _http_ok(probe, token) and (old is None or http_status(probe, old) == 401)
        settled = settled + 1 if ok else 0
        if time.monotonic() > deadline:
            raise StackError(f"The proxy at {proxy['url']} did not take the new token; see {proxy['log']}.")
        time.sleep(0.05)
    return True


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
        return all(c.running and c.answers and c.name != STRAY for c in self.components)

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
        proxy_running = _alive(proxy.get("pid"), "nginx")
        proxy_answers = proxy_running and http_status(f"{proxy.get('url')}{api_path()}/registered_models") == 401
        parts.append(
            ComponentStatus("proxy", proxy.get("pid"), proxy_running, proxy.get("url"), proxy_answers, proxy.get("log"))
        )
        strays = _own_nginx_pids(settings, proxy.get("pid") if proxy_running else None)
        # A worker whose master was killed: it still answers, with the token it was started with.
        answers = bool(strays) and http_status(f"{proxy.get('url')}{api_path()}/registered_models") is not None
        parts.extend(ComponentStatus(STRAY, pid, True, proxy.get("url"), answers, proxy.get("log")) for pid in strays)
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
        auth: Put a token-checking proxy (nginx) in front of the server, as a secured
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
            if _alive(state.get("proxy", {}).get("pid"), "nginx"):
                _stop_stray_proxies(settings, state["proxy"]["pid"], quiet)
                state["registry_url"] = state["proxy"]["url"]
                _save(settings, state)
                refresh_proxy(settings)  # the registry may have a new port
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
        if _stop_stray_proxies(settings, None, quiet):
            stopped.append("stray proxy")
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
