"""Stub ``kind``, ``kubectl``, ``kustomize``, ``docker`` and ``df`` for testing setup/cluster.sh.

No Docker engine runs on our machines, so the cluster script is tested against these stubs on
PATH. Each call is logged (``$STUB_LOG``, one JSON list per line); behaviour comes from a JSON
scenario (``$STUB_SCENARIO``) and a small state file, so a test can say "the first two applies
of platform-agnostic fail" or "the Deployments become ready on the third look". ``kubectl
port-forward`` really listens on the local port it is given (or one it picks for ``:<remote>``), prints it as
kubectl does, and runs until it is killed.

:func:`install` writes one small executable per tool that calls :func:`main` with its name.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

TOOLS = ("kind", "kubectl", "kustomize", "docker", "df")


def install(bin_dir: Path) -> None:
    """Write one executable per tool into ``bin_dir``, each running this file."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        path = bin_dir / tool
        path.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            f"import cluster_stubs\nsys.exit(cluster_stubs.main({tool!r}, sys.argv[1:]))\n"
        )
        path.chmod(0o755)


def _scenario() -> dict:
    path = os.environ.get("STUB_SCENARIO")
    return json.loads(Path(path).read_text()) if path and Path(path).exists() else {}


def _state_path() -> Path:
    return Path(os.environ["STUB_STATE"])


def _state() -> dict:
    try:
        return json.loads(_state_path().read_text())
    except FileNotFoundError:
        return {"clusters": [], "counts": {}}


def _save(state: dict) -> None:
    _state_path().write_text(json.dumps(state))


def _count(state: dict, key: str) -> int:
    state["counts"][key] = state["counts"].get(key, 0) + 1
    return state["counts"][key]


def _serve_predictions(port: int, model_path: str) -> None:
    """KServe's V1 protocol for one sklearn model: POST /v1/models/<name>:predict {"instances": [...]}."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import joblib

    model = joblib.load(model_path)

    class Predictor(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["instances"]
            ok = self.path.startswith("/v1/models/") and self.path.endswith(":predict")
            body = json.dumps({"predictions": model.predict(rows).tolist()} if ok else {"error": "no such model"})
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

    server = HTTPServer(("127.0.0.1", port), Predictor)
    print(f"Forwarding from 127.0.0.1:{server.server_port} -> 80", flush=True)
    server.serve_forever()


def _serve(port: int) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    print(f"Forwarding from 127.0.0.1:{sock.getsockname()[1]}", flush=True)
    while True:
        conn, _ = sock.accept()
        conn.close()


def main(tool: str, args: list[str]) -> int:
    with open(os.environ["STUB_LOG"], "a") as log:
        log.write(json.dumps([tool, *args]) + "\n")
    sc, state = _scenario(), _state()
    words = [a for a in args if not a.startswith("-")]
    if tool == "docker":
        if args[:1] == ["info"]:
            return 0 if sc.get("docker_running", True) else 1
        return 0
    if tool == "df":
        print("Filesystem 1024-blocks Used Available Capacity Mounted on")
        print(f"/dev/stub 999999999 1 {int(sc.get('disk_free_gib', 500)) * 1048576} 1% /")
        return 0
    if tool == "kustomize":
        if args[:1] == ["version"]:
            print(sc.get("kustomize_version", "v5.8.1"))
        return 0
    if tool == "kind":
        if args[:1] == ["version"]:
            print(f"kind {sc.get('kind_version', 'v0.32.0')} go1.24.2 linux/amd64")
        elif args[:2] == ["get", "clusters"]:
            print("\n".join(state["clusters"]) or "No kind clusters found.", file=sys.stdout)
        elif args[:2] == ["create", "cluster"]:
            state["clusters"].append(args[args.index("--name") + 1])
        elif args[:2] == ["delete", "cluster"]:
            state["clusters"].remove(args[args.index("--name") + 1])
        _save(state)
        return 0
    # kubectl
    if "version" in words and "--client" in args:
        print(json.dumps({"clientVersion": {"gitVersion": sc.get("kubectl_version", "v1.36.1")}}, indent=2))
        return 0
    if "port-forward" in words:
        target = words[-2]
        if target in sc.get("port_forward_fails", []):
            print(f'error: services "{target}" not found', file=sys.stderr)
            return 1
        port = int(words[-1].split(":")[0] or 0)  # ":80": a free port, as kubectl picks one
        if target.endswith("-predictor") and sc.get("predictor_model"):
            _serve_predictions(port, sc["predictor_model"])
        _serve(port)
        return 0
    if "apply" in words:
        where = next((a for a in args if "://" in a or "github.com" in a), "stdin")
        for key, failures in sc.get("apply_failures", {}).items():
            if key in where and _count(state, f"apply:{key}") <= failures:
                _save(state)
                print(f"error: resource mapping not found for {key} (the CRD is not served yet)", file=sys.stderr)
                return 1
        _save(state)
        return 0
    if "get" in words and "deployments" in words:
        looks = _count(state, "deployments")
        _save(state)
        ready = looks > sc.get("deployments_ready_after", 0)
        for name in ("ml-pipeline", "model-registry-deployment", "model-registry-ui"):
            print(f"{name}|{1 if ready else ''}|1")
        return 0
    if "get" in words and "namespace" in words:
        return 0 if sc.get("namespace_exists", False) else 1
    return 0
