"""A Kubernetes API server's boundary, for tests: the REST calls the kubernetes Python client makes,
answered on 127.0.0.1 from an in-memory object store (no cluster runs on our machines).

GET of an object or a collection, POST (create; 409 when it exists), PATCH (JSON merge patch) and
fixed answers for anything else (``static``), such as pod logs. ``on_get`` lets a test move an
object's status along between reads, the way a controller would. Like the real server it turns a
Secret's ``stringData`` into base64 ``data``, answers 403 in ``forbidden`` namespaces, and 404 for a
namespace not in ``namespaces`` (when that is set).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse


def merge(target: dict, patch: dict) -> dict:
    """RFC 7386 JSON merge patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value
    return target


class KubeApi:
    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.static: dict[str, tuple[int, object]] = {}
        self.on_get: dict[str, Callable[[dict], dict]] = {}
        self.calls: list[tuple[str, str]] = []
        self.forbidden: set[str] = set()
        self.namespaces: set[str] | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else {}

            def _handle(self, method, action):
                path = urlparse(self.path).path
                api.calls.append((method, path))
                self._send(*(api.refuse(path) or action(path)))

            def do_GET(self):
                self._handle("GET", api.get)

            def do_POST(self):
                self._handle("POST", lambda path: api.create(path, self._body()))

            def do_PATCH(self):
                self._handle("PATCH", lambda path: api.patch(path, self._body()))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> KubeApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "stub",
            "clusters": [{"name": "stub", "cluster": {"server": self.url}}],
            "users": [{"name": "stub", "user": {"token": "kube-token"}}],
            "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
        }))  # fmt: skip
        return path

    @staticmethod
    def _missing(path):
        return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                     "message": f"{path} not found"}  # fmt: skip

    def refuse(self, path):
        """403 in a forbidden namespace; 404 in a namespace that does not exist."""
        parts = path.strip("/").split("/")
        ns = parts[parts.index("namespaces") + 1] if "namespaces" in parts[:-1] else None
        if ns in self.forbidden:
            return 403, {"kind": "Status", "code": 403, "reason": "Forbidden", "message": f"forbidden in {ns}"}
        if ns is not None and self.namespaces is not None and ns not in self.namespaces:
            return 404, {"kind": "Status", "code": 404, "reason": "NotFound", "message": f'namespaces "{ns}" not found'}
        return None

    @staticmethod
    def _secret_data(obj: dict) -> dict:
        if obj.get("kind") == "Secret" or "stringData" in obj:
            for key, value in (obj.pop("stringData", None) or {}).items():
                obj.setdefault("data", {})[key] = base64.b64encode(value.encode()).decode()
        return obj

    def put(self, path: str, obj: dict) -> None:
        self.objects[path.rstrip("/")] = obj

    def get(self, path):
        path = path.rstrip("/")
        if path in self.static:
            return self.static[path]
        if path in self.objects:
            if path in self.on_get:
                self.objects[path] = self.on_get[path](self.objects[path])
            return 200, self.objects[path]
        parts = path.strip("/").split("/")
        rest = parts[2:] if parts[0] == "api" else parts[3:]  # after /api/v1 or /apis/<group>/<version>
        if len(rest) % 2 == 1:  # [resource] or [namespaces, ns, resource]: a collection
            items = [o for p, o in self.objects.items() if p.rsplit("/", 1)[0] == path]
            return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}
        return self._missing(path)

    def create(self, path, body):
        name = body["metadata"]["name"]
        where = f"{path.rstrip('/')}/{name}"
        if where in self.objects:
            return 409, {"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": f"{name} exists"}
        body.setdefault("metadata", {})["resourceVersion"] = "1"
        self.objects[where] = self._secret_data(body)
        return 201, body

    def patch(self, path, body):
        path = path.rstrip("/")
        if path not in self.objects:
            return self._missing(path)
        return 200, self._secret_data(merge(self.objects[path], body))
