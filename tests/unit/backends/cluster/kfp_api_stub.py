"""A KFP API server's boundary, for tests: the v2beta1 REST calls ``kfp.Client`` makes when
mrhelpers submits a run, answered on 127.0.0.1 the way the real server answers them.

It keeps pipelines, versions, experiments and runs in memory, and plays each run through a
scripted list of states (one per ``GET /runs/{id}``), so the real ``kfp.Client`` and the
real mrhelpers code run unchanged. It stands in only for the cluster, which these machines
cannot run; the registry in the integration tests is the real server.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class KfpApi:
    def __init__(self, states: list[str] | None = None, task_error: str | None = None) -> None:
        self.states = states or ["PENDING", "RUNNING", "SUCCEEDED"]
        self.task_error = task_error
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, list[dict]] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.polls: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []
        self.authorization: list[str | None] = []
        self.uploads: list[bytes] = []
        self.next_run_id: str | None = None
        self.multi_user = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _read(self):
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self):
                api.authorization.append(self.headers.get("Authorization"))
                url = urlparse(self.path)
                api.calls.append(("GET", url.path))
                self._send(*api.get(url.path, parse_qs(url.query)))

            def do_POST(self):
                url = urlparse(self.path)
                api.calls.append(("POST", url.path))
                self._send(*api.post(url.path, parse_qs(url.query), self._read()))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> KfpApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _named(items, query):
        wanted = None
        if "filter" in query:
            predicate = json.loads(query["filter"][0])["predicates"][0]
            wanted = predicate.get("stringValue") or predicate.get("string_value")
        return [i for i in items if wanted is None or i["display_name"] == wanted]

    def get(self, path, query):
        parts = path.strip("/").split("/")[2:]  # after apis/v2beta1
        if parts == ["healthz"]:
            return 200, {"multi_user": self.multi_user}
        if parts == ["pipelines"]:
            return 200, {"pipelines": self._named(self.pipelines.values(), query)}
        if len(parts) == 3 and parts[0] == "pipelines" and parts[2] == "versions":
            return 200, {"pipeline_versions": self._named(self.versions.get(parts[1], []), query)}
        if parts == ["experiments"]:
            return 200, {"experiments": self._named(self.experiments.values(), query)}
        if len(parts) == 2 and parts[0] == "runs" and parts[1] in self.runs:
            run = self.runs[parts[1]]
            i = min(self.polls[parts[1]], len(self.states) - 1)
            self.polls[parts[1]] += 1
            run["state"] = self.states[i]
            done = i if run["state"] in ("PENDING", "RUNNING") else 2
            tasks = [{"display_name": f"task-{n}", "state": "SUCCEEDED" if n < done else "RUNNING"} for n in range(2)]
            if run["state"] == "FAILED":
                tasks[1] = {"display_name": "register-model", "state": "FAILED",
                            "error": {"message": self.task_error or "failed"}}  # fmt: skip
            run["run_details"] = {"task_details": tasks}
            return 200, run
        return 404, {"error": f"not found: {path}", "code": 5, "message": f"not found: {path}"}

    def post(self, path, query, body):
        parts = path.strip("/").split("/")[2:]
        if parts == ["pipelines", "upload"]:
            self.uploads.append(body)
            pid = str(uuid.uuid4())
            self.pipelines[pid] = {"pipeline_id": pid, "display_name": query["name"][0]}
            self.versions[pid] = [{"pipeline_id": pid, "pipeline_version_id": str(uuid.uuid4()),
                                   "display_name": query["name"][0]}]  # fmt: skip
            return 200, self.pipelines[pid]
        if parts == ["pipelines", "upload_version"]:
            self.uploads.append(body)
            pid = query["pipelineid"][0]
            version = {"pipeline_id": pid, "pipeline_version_id": str(uuid.uuid4()), "display_name": query["name"][0]}
            self.versions[pid].append(version)
            return 200, version
        if parts == ["experiments"]:
            exp = json.loads(body)
            exp["experiment_id"] = str(uuid.uuid4())
            self.experiments[exp["experiment_id"]] = exp
            return 200, exp
        if parts == ["runs"]:
            run = json.loads(body)
            run["run_id"] = self.next_run_id or str(uuid.uuid4())
            run["state"] = "PENDING"
            self.runs[run["run_id"]] = run
            self.polls[run["run_id"]] = 0
            return 200, run
        return 404, {"error": f"not found: {path}", "code": 5, "message": f"not found: {path}"}
