"""Serve the Model Registry UI (the real v0.2.22 frontend, built by setup/ui/build.sh) on 127.0.0.1.

This small server stands in for the upstream UI's Go "BFF", which no package registry serves (see
docs/ui.md). It does only what the frontend needs from it:

* serves the built frontend (``.mrh/ui/<version>/dist``), any unknown path answered with
  ``index.html`` (the frontend routes in the browser);
* answers the frontend's own questions under ``/api/v1`` and ``/model-registry/api/v1``, wrapped
  in ``{"data": ...}``: who the user is, the one namespace, the one registry (``local``);
* forwards ``/api/v1/model_registry/local/<path>`` to the local registry's
  ``/api/model_registry/v1alpha3/<path>`` with the registry token, unwrapping request bodies and
  wrapping answers.

Every request needs the token: the registry's (``MRH_TOKEN`` or the local Secret), else one of this
server's own (``<state dir>/ui/token``). A browser presents it once as ``?token=...``; the answer
sets an HttpOnly cookie holding a random session id (never the token) and redirects to the same
URL without it. Without either, HTTP 401. Nothing here prints or logs the token.

    python setup/ui/server.py start [--port P]   # in the background; prints the URL
    python setup/ui/server.py stop               # by the pid it recorded
    python setup/ui/server.py url                # the URL (without the token)
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import http.server
import json
import mimetypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from mrhelpers.core.settings import Settings, project_root, versions

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # setup/, for net.py
from net import free_port, http_status  # noqa: E402

REGISTRY_ID = "local"
PREFIXES = ("/model-registry/api/v1/", "/api/v1/")
TIMEOUT = 60.0


def api_path() -> str:
    """The REST prefix the pinned server serves (setup/versions.env)."""
    return versions()["MODEL_REGISTRY_API_PATH"]


def dist_dir() -> Path:
    """Where setup/ui/build.sh put the built frontend for the pinned server version."""
    root = project_root() or Path(__file__).resolve().parents[2]
    return root / ".mrh" / "ui" / versions()["MODEL_REGISTRY_SERVER_VERSION"] / "dist"


def _ui_dir(settings: Settings) -> Path:
    return settings.state_dir / "ui"


def ui_token(settings: Settings) -> str:
    """The token the UI asks for: the registry's, else this server's own (made once, mode 0600)."""
    if settings.token.reveal():
        return settings.token.reveal()
    path = _ui_dir(settings) / "token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text()


def token_source(settings: Settings) -> str:
    """Which token the UI asks for and where a reader finds it (a place, never the value)."""
    if os.environ.get("MRH_TOKEN"):
        return "the registry's token, in the MRH_TOKEN environment variable"
    if settings.token.reveal():
        return f"the registry's token, in {settings.state_dir}/secrets/{settings.secret_name}/token"
    secret = f"{settings.state_dir}/secrets/{settings.secret_name}/token"
    return f"the UI's own, in {_ui_dir(settings) / 'token'}, until the registry has one in {secret} (notebook 01)"


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "mrhelpers-ui"
    sessions: set[str]  # set on the class by serve()
    state_dir: Path
    dist: Path

    # ----------------------------------------------------------------- plumbing

    def _settings(self) -> Settings:
        return Settings.from_env(state_dir=self.state_dir)  # the stack's registry URL and token, read now

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # one line per request is written by _log, without the query string's token

    def _log(self, status: int) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = [(k, v) for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True) if k != "token"]
        path = url.path + ("?" + urllib.parse.urlencode(query) if query else "")
        print(f"{time.strftime('%H:%M:%S')} {self.command} {path} {status}", flush=True)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._log(status)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": {"code": str(status), "message": message}})

    # ----------------------------------------------------------------- the token

    def _cookie_name(self) -> str:
        return f"mrh-ui-{self.server.server_address[1]}"  # cookies ignore ports: one name per server

    def _authorized(self, settings: Settings) -> bool:
        token = ui_token(settings)
        given = self.headers.get("Authorization", "")
        if given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
            return True
        cookies = dict(part.strip().split("=", 1) for part in self.headers.get("Cookie", "").split(";") if "=" in part)
        session = cookies.get(self._cookie_name(), "")
        return any(hmac.compare_digest(session.encode(), s.encode()) for s in self.sessions)

    def _sign_in(self, settings: Settings) -> bool:
        """``?token=...``: set the session cookie and redirect to the URL without it. True when answered."""
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        if not given:
            return False
        if not hmac.compare_digest(given[0].encode(), ui_token(settings).encode()):
            self._refuse("The token in the URL is not this registry's token.")
            return True
        session = secrets.token_urlsafe(32)
        self.sessions.add(session)
        rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "token"])
        location = url.path + ("?" + rest if rest else "")
        cookie = f"{self._cookie_name()}={session}; HttpOnly; SameSite=Strict; Path=/"
        self._send(303, b"", "text/plain", {"Location": location, "Set-Cookie": cookie})
        return True

    def _refuse(self, why: str) -> None:
        if self.path.startswith(PREFIXES):
            self._send(
                401,
                json.dumps({"error": {"code": "401", "message": why}}).encode(),
                "application/json",
                {"WWW-Authenticate": 'Bearer realm="model-registry"'},
            )
            return
        page = (
            "<!doctype html><title>Model Registry UI: token needed</title>"
            f"<p>{why} This UI asks for the Model Registry's token; `make ui` says which file holds it.</p>"
            "<form method=get><label>Token <input name=token type=password autofocus></label> "
            "<button>Open</button></form>"
        )
        self._send(
            401, page.encode(), "text/html; charset=utf-8", {"WWW-Authenticate": 'Bearer realm="model-registry"'}
        )

    # ----------------------------------------------------------------- requests

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        self._handle()

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        settings = self._settings()
        if self.command in ("GET", "HEAD") and self._sign_in(settings):
            return
        if not self._authorized(settings):
            self._refuse("No token, or a wrong one.")
            return
        path = urllib.parse.urlsplit(self.path).path
        prefix = next((p for p in PREFIXES if path.startswith(p)), None)
        if prefix is None:
            self._static(path)
            return
        route = path[len(prefix) :]
        if route == "user" and self.command == "GET":
            self._json(200, {"data": {"userId": settings.author, "clusterAdmin": False}})
        elif route == "namespaces" and self.command == "GET":
            self._json(200, {"data": [{"name": settings.namespace, "displayName": settings.namespace}]})
        elif route == "model_registry" and self.command == "GET":
            registry = {
                "name": REGISTRY_ID,
                "displayName": "Local Model Registry",
                "description": f"The local stack's registry ({settings.state_dir})",
                "serverAddress": settings.registry_url,
                "isHttps": settings.registry_url.startswith("https:"),
            }
            self._json(200, {"data": [registry]})
        elif route.startswith(f"model_registry/{REGISTRY_ID}/"):
            self._forward(settings, route[len(f"model_registry/{REGISTRY_ID}/") :])
        else:
            self._error(404, f"{self.command} {path} is not served by this adapter (see docs/ui.md).")

    def _forward(self, settings: Settings, rest: str) -> None:
        query = urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
        query = [(k, v) for k, v in query if k != "namespace"]  # the frontend's, not the registry's
        url = f"{settings.registry_url}{api_path()}/{rest}" + ("?" + urllib.parse.urlencode(query) if query else "")
        body = None
        if self.command in ("POST", "PATCH"):
            try:
                sent = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            except ValueError as exc:
                self._error(400, f"The request body is not JSON ({exc}).")
                return
            body = json.dumps(sent.get("data", sent) if isinstance(sent, dict) else sent).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.token.reveal():
            headers["Authorization"] = f"Bearer {settings.token.reveal()}"
        request = urllib.request.Request(url, data=body, method=self.command, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:  # noqa: S310 - the local registry
                self._json(resp.status, {"data": json.loads(resp.read() or b"null")})
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                message = json.loads(text).get("message", text)
            except (ValueError, AttributeError):
                message = text
            self._error(exc.code, f"The registry answered HTTP {exc.code}: {message}")
        except (urllib.error.URLError, OSError) as exc:
            self._error(502, f"The registry at {settings.registry_url} did not answer ({exc}); run `make up`.")

    def _static(self, path: str) -> None:
        target = (self.dist / urllib.parse.unquote(path).lstrip("/")).resolve()
        if not target.is_relative_to(self.dist) or not target.is_file():
            target = self.dist / "index.html"  # the frontend's own router handles the path
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(200, target.read_bytes(), ctype)


def serve(port: int, state_dir: Path, dist: Path) -> None:
    """Serve in this process on 127.0.0.1:``port`` until SIGTERM or Ctrl-C."""
    handler = type("BoundHandler", (Handler,), {"sessions": set(), "state_dir": state_dir, "dist": dist.resolve()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"Model Registry UI adapter on http://127.0.0.1:{port}/ (pid {os.getpid()}), frontend {dist}", flush=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()


# --------------------------------------------------------------------- start, stop, url (the records)


def _record_path(settings: Settings) -> Path:
    return _ui_dir(settings) / "server.json"


def _ours(pid: int | None) -> bool:
    """True when ``pid`` runs this file's ``serve`` (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, TypeError):
        return False
    return any(a.endswith(b"setup/ui/server.py") for a in argv) and b"serve" in argv


def running(settings: Settings) -> dict[str, Any] | None:
    """The record (pid, port, url, log) of this state folder's UI server while it runs, else None."""
    try:
        record = json.loads(_record_path(settings).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return record if _ours(record.get("pid")) else None


def _last_port_if_free(settings: Settings) -> int | None:
    """The port of the last run, so a bookmark keeps working, when nothing holds it now."""
    try:
        port = int(json.loads(_record_path(settings).read_text())["port"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no owner
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return None
    return port


def start(settings: Settings, port: int | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Start the UI server in the background, or keep the one that runs; return its record."""
    record = running(settings)
    if record:
        return record
    dist = dist_dir()
    if not (dist / "index.html").is_file():
        raise SystemExit(f"The Model Registry UI is not built ({dist} has no index.html): run `make ui`.")
    port = port or int(os.environ.get("MRH_UI_PORT") or 0) or _last_port_if_free(settings) or free_port()
    log = settings.state_dir / "logs" / "ui.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    _ui_dir(settings).mkdir(parents=True, exist_ok=True)
    ui_token(settings)  # made now, so a reader can read it before the first request
    argv = [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(port), "--dist", str(dist)]
    env = dict(os.environ, MRH_STATE_DIR=str(settings.state_dir))
    with open(log, "a") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    record = {"pid": proc.pid, "port": port, "url": f"http://127.0.0.1:{port}/", "log": str(log)}
    _record_path(settings).write_text(json.dumps(record))
    deadline = time.monotonic() + timeout
    while http_status(f"{record['url']}api/v1/user", ui_token(settings)) != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(settings)
            tail = log.read_text()[-2000:]
            raise SystemExit(
                f"The UI server did not answer on {record['url']} within {timeout:.0f} s. Its log {log}:\n{tail}"
            )
        time.sleep(0.2)
    return record


def stop(settings: Settings) -> bool:
    """Stop the UI server this state folder recorded, by its pid. True when one was stopped."""
    record = running(settings)
    if not record:
        return False
    os.kill(record["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _ours(record["pid"]) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(record["pid"], os.WNOHANG)  # our child when started by this process
        time.sleep(0.1)
    if _ours(record["pid"]):
        os.kill(record["pid"], signal.SIGKILL)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="setup/ui/server.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="serve in the background (default port: MRH_UI_PORT or a free one)")
    p_start.add_argument("--port", type=int)
    sub.add_parser("stop", help="stop the server this state folder recorded")
    sub.add_parser("url", help="print the URL of the running server (without the token)")
    p_serve = sub.add_parser("serve", help="serve in the foreground")
    p_serve.add_argument("--port", type=int, required=True)
    p_serve.add_argument("--dist", type=Path, default=None)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "serve":
        serve(args.port, settings.state_dir, args.dist or dist_dir())
    elif args.command == "start":
        record = start(settings, args.port)
        print(f"Model Registry UI: {record['url']} (pid {record['pid']}, log {record['log']})")
        print(f"Sign in once with the token ({token_source(settings)}); a cookie keeps you signed in:")
        print(f"  {record['url']}?token=TOKEN")
        print("Stop it with `make down` or `python setup/ui/server.py stop`.")
    elif args.command == "stop":
        if stop(settings):
            print("Stopped the Model Registry UI server.")
    else:
        record = running(settings)
        if not record:
            print("The Model Registry UI server is not running: `make ui` starts it.", file=sys.stderr)
            return 1
        print(record["url"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
