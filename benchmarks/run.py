"""Benchmarks, measured side by side in one run on one machine; prints a table and writes results.

    .venv/bin/python -m benchmarks.run [--quick] [--skip-clone] [--only registration,inspection,...]

Each benchmark starts from a local stack of its own (MariaDB + the Model Registry server) in a
temporary folder, on free loopback ports, and stops it at the end.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from model_registry.types import ModelArtifact, ModelVersion, RegisteredModel

import mrhelpers as mh
from benchmarks import before
from mrhelpers.core.registry import ARTIFACT_KEY, SOURCE_ID_KEY, artifact_copy
from mrhelpers.core.rest import IN_FLIGHT, RegistrySession, session_for
from mrhelpers.core.settings import Settings, default_bin_dir, read_stack_state, versions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "setup"))
import localstack  # noqa: E402 - setup/localstack.py
from run_notebooks import registered_table, run_notebooks  # noqa: E402 - setup/run_notebooks.py

FMT = dict(model_format_name="sklearn", model_format_version="1")
CALLS_COUNTED = 20
"""Registrations whose HTTP calls are counted (from the server's access log); all of them are timed."""


def requests_logged(settings: Settings) -> int:
    """Requests the server has answered so far (one access-log line each)."""
    log = settings.state_dir / "logs" / "model-registry.log"
    return sum(
        1
        for line in log.read_text(errors="replace").splitlines()
        if '"GET http' in line or '"POST http' in line or '"PATCH http' in line
    )


def sql(settings: Settings, query: str) -> list[str]:
    """The rows (tab-separated lines, header dropped) of ``query`` on the stack's own database."""
    out = localstack._sql(settings, f"USE model_registry; {query}")
    if out.returncode != 0:
        raise RuntimeError(f"SQL failed: {out.stderr.strip()}")
    return out.stdout.splitlines()[1:]


def db_connections(settings: Settings) -> int:
    """Connections MariaDB has accepted since it started (this query's own included)."""
    return int(sql(settings, "SHOW GLOBAL STATUS LIKE 'Connections';")[0].split()[1])


def churn(settings: Settings, work) -> tuple[object, int]:
    """``work()``'s result and the database connections the registry server opened meanwhile."""
    before = db_connections(settings)
    result = work()
    return result, db_connections(settings) - before - 1  # the second status query is a connection too


def sql_floor(settings: Settings, model_id: str) -> tuple[float, int]:
    """A direct SQL read of a model's versions with all their properties: seconds, versions read."""
    query = (
        "SELECT c.id, c.name, c.create_time_since_epoch, c.last_update_time_since_epoch, p.name, p.int_value, "
        "p.double_value, p.string_value, p.bool_value FROM ParentContext pc JOIN Context c ON c.id = pc.context_id "
        "LEFT JOIN ContextProperty p ON p.context_id = c.id "
        f"WHERE pc.parent_context_id = {int(model_id)} "
        "AND c.type_id = (SELECT id FROM Type WHERE name = 'kf.ModelVersion');"
    )
    t = time.perf_counter()
    rows = sql(settings, query)
    took = time.perf_counter() - t
    return took, len({line.split("\t", 1)[0] for line in rows if line})


def seed(session: RegistrySession, model_id: str, model_name: str, names: list[str], run_of) -> None:
    """Write versions exactly as register_version leaves them (its copy of the artifact's fields, the run
    id, two metadata keys, then the artifact), without its per-version checks: two POSTs per version on
    the session, ``IN_FLIGHT`` at once, their JSON built by the client's types once and then copied
    with each version's values. Not measured."""
    lineage = mh.Lineage.for_kfp_run("RUN", "bench RUN", "ns")
    props = {"accuracy": 0.5, "epochs": 7, SOURCE_ID_KEY: "RUN", ARTIFACT_KEY: "COPY"}
    version_body = ModelVersion(name="NAME", author=session.author, custom_properties=props).create(
        registered_model_id=model_id
    )
    version_template = json.dumps(version_body.to_dict())
    template = ModelArtifact(name=model_name, uri="URI", **FMT, **lineage.as_fields())
    artifact_template, copy_template = json.dumps(template.wrap().to_dict()), artifact_copy(template)

    def one(i: int) -> None:
        run = run_of(i)
        uri = f"s3://bench/{model_name}/{i}"
        copy = copy_template.replace('"uri":"URI"', '"uri":' + json.dumps(uri))
        body = json.loads(version_template)
        body["name"] = names[i]
        cp = body["customProperties"]
        cp["accuracy"]["double_value"] = 0.5 + (i % 500) / 1000
        cp["epochs"]["int_value"] = str(i % 50)
        cp[SOURCE_ID_KEY]["string_value"] = run
        cp[ARTIFACT_KEY]["string_value"] = copy.replace("RUN", run)
        version = session.request("POST", "/model_versions", body=body)
        art = json.loads(artifact_template.replace("RUN", run))
        art["uri"] = uri
        session.request("POST", f"/model_versions/{version['id']}/artifacts", body=art)

    session.map(one, range(len(names)))


def bench_registration(settings: Settings, n: int) -> dict:
    import requests

    registry = mh.connect(settings)
    session = session_for(registry)
    tag = uuid.uuid4().hex[:6]
    raw_name, mh_name, floor_name = f"raw-{tag}", f"mrh-{tag}", f"floor-{tag}"
    floor_model = session.save_model(RegisteredModel(name=floor_name))
    http = requests.Session()
    api = settings.registry_url + "/api/model_registry/v1alpha3"
    if settings.token.reveal():
        http.headers["Authorization"] = f"Bearer {settings.token.reveal()}"

    def two_writes(version: str, props: dict) -> None:
        body = ModelVersion(name=version, author="bench", custom_properties=props).create(
            registered_model_id=floor_model.id
        )
        mv = http.post(api + "/model_versions", json=body.to_dict(), timeout=60).json()
        art = ModelArtifact(name=floor_name, uri=f"s3://b/{version}", **FMT)
        http.post(
            api + f"/model_versions/{mv['id']}/artifacts", json=art.wrap().to_dict(), timeout=60
        ).raise_for_status()

    def one(key: str, i: int, lineage: mh.Lineage) -> None:
        if key == "raw":
            registry.register_model(raw_name, f"s3://b/{i}", version=f"v{i}", **FMT, **lineage.as_fields())
        elif key == "ours":
            mh.register_version(registry, mh_name, f"v{i}", f"s3://b/{i}", **FMT, lineage=lineage)
        elif key == "floor":
            two_writes(f"plain-{i}", {SOURCE_ID_KEY: lineage.id})
        else:
            copy = artifact_copy(ModelArtifact(name=floor_name, uri=f"s3://b/{i}", **FMT, **lineage.as_fields()))
            two_writes(f"copy-{i}", {SOURCE_ID_KEY: lineage.id, ARTIFACT_KEY: copy})

    times: dict[str, list[float]] = {"raw": [], "ours": [], "floor": [], "floor_copy": []}
    calls: dict[str, list[int]] = {"raw": [], "ours": []}
    for i in range(n):  # interleaved, so drift in the machine hits all alike
        lineage = mh.Lineage.for_kfp_run(f"run-{i}", "bench", "ns")
        for key in times:
            counted = key in calls and i < CALLS_COUNTED  # reading the access log takes longer as it grows
            before = requests_logged(settings) if counted else 0
            t = time.perf_counter()
            one(key, i, lineage)
            times[key].append(time.perf_counter() - t)
            if counted:
                calls[key].append(requests_logged(settings) - before)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return {
        "name": f"register_version ({n} versions each, one model)",
        "baseline": f"client register_model: {med['raw']:.1f} ms, {statistics.median(calls['raw']):.0f} HTTP calls",
        "ours": f"register_version: {med['ours']:.1f} ms, {statistics.median(calls['ours']):.0f} HTTP calls",
        "ratio": med["ours"] / med["raw"],
        "goal": 0.25,
        "floor": f"the same 2 writes over one keep-alive connection: {med['floor_copy']:.1f} ms ({med['floor']:.1f} "
        f"ms without the copy of the artifact's fields: the copy costs {med['floor_copy'] - med['floor']:+.1f} ms)",
        "raw_ms": med["raw"], "ours_ms": med["ours"], "floor_ms": med["floor_copy"], "floor_plain_ms": med["floor"],
        "copy_cost_ms": med["floor_copy"] - med["floor"],
        "raw_calls": statistics.median(calls["raw"]), "ours_calls": statistics.median(calls["ours"]),
    }  # fmt: skip


def bench_inspection(settings: Settings, n: int) -> dict:
    registry = mh.connect(settings)
    session = session_for(registry)
    name = f"many-{uuid.uuid4().hex[:6]}"
    model = session.save_model(RegisteredModel(name=name, owner=session.author))
    t = time.perf_counter()
    seed(session, model.id, name, [f"v{i}" for i in range(n)], lambda i: f"run-{i}")
    seeded = time.perf_counter() - t
    t = time.perf_counter()
    old, old_conns = churn(settings, lambda: before.versions_frame(registry, name))
    old_s = time.perf_counter() - t
    ours, conns = [], []
    for _ in range(3):
        t = time.perf_counter()
        frame, c = churn(settings, lambda: mh.versions_frame(registry, name))
        ours.append(time.perf_counter() - t)
        conns.append(c)
    assert len(frame) == n and frame.equals(old), "versions_frame differs from the frame before issue 13"
    t = time.perf_counter()
    _, read_conns = churn(settings, lambda: mh.versions_frame(registry, name, read_artifacts=True))
    read_s = time.perf_counter() - t
    floor_s, floor_rows = sql_floor(settings, model.id)
    assert floor_rows == n, floor_rows
    mine = statistics.median(ours)
    return {
        "name": f"versions_frame, one model with {n} versions (run id + 2 metadata keys each)",
        "baseline": f"before issue 13 (an artifact request per version, 16 in flight): {old_s:.2f} s, "
        f"{old_conns} new DB connections",
        "ours": f"one listing: {mine:.2f} s (median of 3), {statistics.median(conns):.0f} new DB connections; "
        f"same rows as before",
        "ratio": mine / old_s,
        "goal": 0.2,
        "goal_seconds": 2.0,
        "floor": f"direct SQL read of the same rows: {floor_s:.2f} s ({mine / floor_s:.1f}x from the floor). "
        f"Every artifact read again (read_artifacts=True, {IN_FLIGHT} in flight): {read_s:.2f} s, "
        f"{read_conns} new DB connections",
        "seed": f"{seeded:.0f} s: two POSTs per version on one session, {IN_FLIGHT} in flight",
        "model": name, "old_s": old_s, "ours_s": mine, "floor_s": floor_s, "read_all_s": read_s,
        "old_db_connections": old_conns, "ours_db_connections": statistics.median(conns),
        "read_all_db_connections": read_conns, "seed_seconds": seeded,
    }  # fmt: skip


def bench_find_versions(settings: Settings, models: int, per_model: int) -> dict:
    registry = mh.connect(settings)
    session = session_for(registry)
    runs = models * per_model // 2  # two versions per run, as a retried or two-step pipeline leaves
    t = time.perf_counter()
    for m in range(models):
        name = f"fv-{uuid.uuid4().hex[:6]}-{m}"
        model = session.save_model(RegisteredModel(name=name, owner=session.author))
        seed(
            session,
            model.id,
            name,
            [f"v{i}" for i in range(per_model)],
            lambda i, m=m: f"run-{(m * per_model + i) % runs}",
        )
    seeded = time.perf_counter() - t
    target = f"run-{runs // 2}"
    t = time.perf_counter()
    old, old_conns = churn(settings, lambda: before.find_versions(registry, run_id=target))
    old_s = time.perf_counter() - t
    ours, conns = [], []
    for _ in range(3):
        t = time.perf_counter()
        frame, c = churn(settings, lambda: mh.find_versions(registry, run_id=target))
        ours.append(time.perf_counter() - t)
        conns.append(c)
    assert len(old) >= 1 and frame.equals(old), "find_versions differs from the answer before issue 13"
    total = models * per_model
    mine = statistics.median(ours)
    return {
        "name": f"find_versions(run_id=...), {total} versions in {models} models",
        "baseline": f"before issue 13 (an artifact request per version, then the filter): {old_s:.1f} s, "
        f"{old_conns} new DB connections",
        "ours": f"a run this machine did not submit (no start time known): a listing per model, {IN_FLIGHT} at "
        f"once: {mine:.2f} s (median of 3; {mine / total * 1000:.2f} s per 1,000 versions), "
        f"{statistics.median(conns):.0f} new DB connections; same rows",
        "ratio": mine / old_s,
        "goal": 0.1,
        "seed": f"{seeded:.0f} s: two POSTs per version on one session, {IN_FLIGHT} in flight",
        "seed_seconds": seeded, "old_s": old_s, "ours_s": mine, "per_1000_s": mine / total * 1000,
        "old_db_connections": old_conns, "ours_db_connections": statistics.median(conns),
    }  # fmt: skip


def bench_component(settings: Settings, runs: int) -> dict:
    from kfp import dsl, local

    from mrhelpers.components import register_model

    @dsl.component(
        base_image="python:3.11", packages_to_install=[f"model-registry=={versions()['MODEL_REGISTRY_CLIENT_VERSION']}"]
    )
    def register_from_scratch(model_name: str, version_name: str, registry_url: str) -> str:
        import warnings
        from urllib.parse import urlparse

        from model_registry import ModelRegistry

        warnings.simplefilter("ignore")
        url = urlparse(registry_url)
        registry = ModelRegistry(f"{url.scheme}://{url.hostname}", port=url.port, author="bench", is_secure=False)
        return registry.register_model(
            model_name, "s3://b/m", version=version_name, model_format_name="sklearn", model_format_version="1"
        ).id

    name = f"comp-{uuid.uuid4().hex[:6]}"
    packaged, scratch = [], []
    for i in range(runs):
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=settings.pipeline_root)
        t = time.perf_counter()
        register_model(
            model_name=name,
            version_name=f"p{i}",
            model_uri="s3://b/m",
            author="bench",
            registry_url=settings.registry_url,
            run_id=f"r{i}",
            run_name="bench",
        )
        packaged.append(time.perf_counter() - t)
        local.init(runner=local.SubprocessRunner(use_venv=True), pipeline_root=settings.pipeline_root)
        t = time.perf_counter()
        register_from_scratch(model_name=name, version_name=f"s{i}", registry_url=settings.registry_url)
        scratch.append(time.perf_counter() - t)
    ours, base = statistics.median(packaged), statistics.median(scratch)
    return {
        "name": f"register step in a local run ({runs} runs each)",
        "baseline": f"packages_to_install into a fresh venv: {base:.1f} s",
        "ours": f"packaged component, deps in the environment: {ours:.1f} s",
        "ratio": ours / base,
        "ours_s": ours,
        "base_s": base,
    }


def load() -> str:
    """The machine's load average (1, 5, 15 minutes), as ``uptime`` shows it."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def version_count(settings: Settings) -> tuple[int, int]:
    """(versions, models) in the stack's registry, counted in its database."""
    row = sql(
        settings,
        "SELECT (SELECT COUNT(*) FROM Context WHERE type_id = (SELECT id FROM Type WHERE name = 'kf.ModelVersion')), "
        "(SELECT COUNT(*) FROM Context WHERE type_id = (SELECT id FROM Type WHERE name = 'kf.RegisteredModel'));",
    )[0]
    versions, models = row.split()
    return int(versions), int(models)


def crowd(settings: Settings, target: int, per_model: int = 300) -> float:
    """Add models of ``per_model`` versions until the registry holds ``target`` versions; seconds it took."""
    session = session_for(mh.connect(settings))
    t = time.perf_counter()
    while version_count(settings)[0] < target:
        name = f"crowd-{uuid.uuid4().hex[:6]}"
        model = session.save_model(RegisteredModel(name=name, owner=session.author))
        seed(session, model.id, name, [f"v{i}" for i in range(per_model)], lambda i, name=name: f"{name}-run-{i}")
    return time.perf_counter() - t


def run_tutorial(state: Path) -> dict:
    """Notebooks 00-07 and the closing summary, as ``make tutorial`` runs them, on the stack in ``state``."""
    env_before = os.environ.get("MRH_STATE_DIR")
    os.environ["MRH_STATE_DIR"] = str(state)
    try:
        t = time.perf_counter()
        results = run_notebooks(state / f"notebooks-{uuid.uuid4().hex[:4]}", {"backend": "local"}, quiet=True)
        assert all(r.status == "ok" for r in results), results
        s = time.perf_counter()
        registered_table(Settings.from_env())
        end = time.perf_counter()
    finally:
        if env_before is None:
            os.environ.pop("MRH_STATE_DIR", None)
        else:
            os.environ["MRH_STATE_DIR"] = env_before
    return {
        "total_s": end - t,
        "summary_s": end - s,
        "notebooks": len(results),
        **{r.notebook: r.seconds for r in results},
    }


def bench_tutorial_crowded(full: Settings, target: int, order: tuple[str, ...]) -> list[dict]:
    """The tutorial on ``full`` (topped up to ``target`` versions of other models) and on a clean stack.

    ``order`` alternates them (clean, full, full, clean, clean, full), so a drift in the machine's load hits
    both alike; each step counts its best run. Each stack keeps what its first run registered, as a reader's
    second run would.
    """
    seeded = crowd(full, target)
    versions, models = version_count(full)
    clean_state = Path(tempfile.mkdtemp(prefix="mrh-bench-clean-"))
    clean = Settings(state_dir=clean_state, bin_dir=default_bin_dir())
    runs: dict[str, list[dict]] = {"clean": [], "full": []}
    loads = [load()]
    try:
        localstack.up(clean, quiet=True)
        for label in order:
            runs[label].append(run_tutorial(clean_state if label == "clean" else full.state_dir))
            loads.append(load())
    finally:
        localstack.down(clean, quiet=True)

    def total(label: str, key: str) -> float:
        return sum(r[key] for r in runs[label])

    def best(label: str) -> dict[str, float]:
        """Each step's shortest time over the runs: the run least disturbed by other load on a shared machine."""
        steps = [k for k in runs[label][0] if k[:2].isdigit() or k == "summary_s"]
        return {k: min(r[k] for r in runs[label]) for k in steps}

    how = (
        f"{versions} versions in {models} models (seeded to {target} in {seeded:.0f} s: two POSTs per version on "
        f"one session, {IN_FLIGHT} in flight); runs {', '.join(order)}; load average {' -> '.join(loads)}"
    )
    each = len(order) // 2
    clean_mean, full_mean = total("clean", "total_s") / each, total("full", "total_s") / each
    clean_best, full_best = best("clean"), best("full")
    clean_s, full_s = sum(clean_best.values()), sum(full_best.values())
    clean_05, full_05 = clean_best["05_inspect_registry"], full_best["05_inspect_registry"]
    added = {k: full_best[k] - clean_best[k] for k in clean_best}
    slowest = max(added, key=lambda k: added[k])
    return [
        {
            "name": f"the tutorial ({runs['clean'][0]['notebooks']} notebooks and the closing summary) on a registry "
            f"already holding {versions} versions of other models, against a clean one",
            "baseline": f"clean stack: {clean_s:.1f} s (each notebook's and the summary's best of {each} runs; "
            f"mean of the runs {clean_mean:.1f} s)",
            "ours": f"full stack: {full_s:.1f} s (best of {each}; mean {full_mean:.1f} s; summary "
            f"{full_best['summary_s']:.2f} s; most added: {slowest}, {added[slowest]:+.1f} s)",
            "ratio": full_s / clean_s,
            "goal": 1.2,
            "floor": how,
            "clean_s": clean_s, "full_s": full_s, "clean_mean_s": clean_mean, "full_mean_s": full_mean,
            "versions": versions, "models": models,
            "added_s": added, "runs": runs,
        },
        {
            "name": "notebook 05 (inspect the registry) in those runs",
            "baseline": f"clean stack: {clean_05:.1f} s (best of {each})",
            "ours": f"full stack: {full_05:.1f} s (best of {each})",
            "ratio": full_05 / clean_05,
            "goal": 1.5,
            "clean_s": clean_05, "full_s": full_05,
        },
    ]  # fmt: skip


def bench_tutorial_fresh_clone(warm_s: float) -> dict:
    """`make tutorial` from a fresh clone (package caches warm), beside the warm clean runs above."""
    clone = Path(tempfile.mkdtemp(prefix="mrh-bench-clone-")) / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRH_")}
    t = time.perf_counter()
    proc = subprocess.run(["make", "tutorial"], cwd=clone, env=env, capture_output=True, text=True)
    fresh = time.perf_counter() - t
    subprocess.run(["make", "down"], cwd=clone, env=env, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"make tutorial failed in {clone}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return {
        "name": "the tutorial, 8 notebooks headless",
        "baseline": f"`make tutorial` from a fresh clone (package caches warm): {fresh:.1f} s",
        "ours": f"warm clean stack (above): {warm_s:.1f} s",
        "warm_s": warm_s,
        "fresh_clone_s": fresh,
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """``mlflow server`` on loopback, on a free port, with ``store_uri`` as its back end; stopped by its pid."""

    def __init__(self, python: Path, store_uri: str, folder: Path) -> None:
        self.python, self.store_uri, self.folder, self.port = python, store_uri, folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        # The store URI (a password in it for MariaDB) goes through the environment, not the command line.
        # The job runner serves MLflow's GenAI jobs, not its registry: off, so its workers take no CPU here.
        return dict(
            os.environ, MLFLOW_BACKEND_STORE_URI=self.store_uri, MLFLOW_BENCH_STORE_URI=self.store_uri,
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_TRACKING_URI=self.url,
        )  # fmt: skip

    def __enter__(self) -> "MlflowServer":
        import requests

        cmd = [str(self.python), "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
               "--default-artifact-root", str(self.folder / "artifacts")]  # fmt: skip
        log = open(self.folder / "mlflow-server.log", "w")  # noqa: SIM115 - kept open while the server runs
        self.proc = subprocess.Popen(cmd, env=self.env(), stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: see {self.folder / 'mlflow-server.log'}")
            try:
                if requests.get(self.url + "/health", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"mlflow server did not answer within 180 s: see {self.folder / 'mlflow-server.log'}")

    def __exit__(self, *exc: object) -> None:
        import signal

        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def mlflow_mariadb_uri(settings: Settings) -> str:
    """A database and user for MLflow on the bench stack's own MariaDB (a random password of this run)."""
    import secrets

    password = secrets.token_hex(16)
    sql(
        settings,
        "CREATE DATABASE IF NOT EXISTS mlflow_bench; "
        f"CREATE USER IF NOT EXISTS 'mlflow'@'127.0.0.1' IDENTIFIED BY '{password}'; "
        f"ALTER USER 'mlflow'@'127.0.0.1' IDENTIFIED BY '{password}'; "
        "GRANT ALL PRIVILEGES ON mlflow_bench.* TO 'mlflow'@'127.0.0.1';",
    )
    port = read_stack_state(settings.state_dir)["mariadb"]["port"]
    return f"mysql+pymysql://mlflow:{password}@127.0.0.1:{port}/mlflow_bench"


class MlflowPeer:
    """benchmarks/mlflow_peer.py in MLflow's venv, asked one step at a time: ``peer.ask("register")`` -> seconds."""

    def __init__(self, python: Path, server: MlflowServer) -> None:
        script = ROOT / "benchmarks" / "mlflow_peer.py"
        self.proc = subprocess.Popen(
            [str(python), str(script)], env=server.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, command: str) -> float:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the MLflow peer stopped (exit {self.proc.wait()}) on {command!r}: its stderr is above")
        return json.loads(answer)["s"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def side_by_side(settings: Settings, peer: MlflowPeer, n: int, listed_model: str, n_list: int) -> dict:
    """MLflow's steps and ours, interleaved (one registration each in turn; one listing each in turn).

    Ours: register_version (its checks included), the same version's 2 writes alone (the Model Registry
    server's floor), versions_frame and the server's raw listing of ``listed_model`` (``n_list`` versions).
    """
    registry = mh.connect(settings)
    session = session_for(registry)
    name, floor_name = f"peer-{uuid.uuid4().hex[:6]}", f"peer-floor-{uuid.uuid4().hex[:6]}"
    floor = session.save_model(RegisteredModel(name=floor_name))
    times: dict[str, list[float]] = {"mlflow": [], "ours": [], "writes": []}
    for i in range(n):
        times["mlflow"].append(peer.ask("register"))
        lineage = mh.Lineage.for_kfp_run(f"run-{i}", "bench", "ns")
        t = time.perf_counter()
        mh.register_version(registry, name, f"v{i}", f"s3://b/{i}", **FMT, lineage=lineage,
                            metadata={"accuracy": 0.5, "epochs": 7})  # fmt: skip
        times["ours"].append(time.perf_counter() - t)
        t = time.perf_counter()
        body = ModelVersion(name=f"v{i}", author="bench").create(registered_model_id=floor.id).to_dict()
        version = session.request("POST", "/model_versions", body=body)
        art = ModelArtifact(name=floor_name, uri=f"s3://b/{i}", **FMT, **lineage.as_fields()).wrap().to_dict()
        session.request("POST", f"/model_versions/{version['id']}/artifacts", body=art)
        times["writes"].append(time.perf_counter() - t)
    seeded = peer.ask(f"seed {n_list}")
    model_id = session.find_model(listed_model).id
    lists: dict[str, list[float]] = {"mlflow": [], "frame": [], "raw": []}
    for _ in range(3):
        lists["mlflow"].append(peer.ask("list"))
        t = time.perf_counter()
        mh.versions_frame(registry, listed_model)
        lists["frame"].append(time.perf_counter() - t)
        t = time.perf_counter()
        session.pages(f"/registered_models/{model_id}/versions")
        lists["raw"].append(time.perf_counter() - t)
    med = statistics.median
    return {
        "mlflow_register_ms": med(times["mlflow"]) * 1000, "register_ms": med(times["ours"]) * 1000,
        "writes_ms": med(times["writes"]) * 1000, "mlflow_list_s": med(lists["mlflow"]), "frame_s": med(lists["frame"]),
        "raw_list_s": med(lists["raw"]), "mlflow_seed_s": seeded,
    }  # fmt: skip


def bench_mlflow(settings: Settings, python: Path, n: int, listed: dict) -> list[dict]:
    """MLflow's registry (a local tracking server; SQLite, then MariaDB) beside register_version and versions_frame."""
    version = versions()["MLFLOW_BENCH_VERSION"]
    n_list = int(listed["name"].split(" with ")[1].split()[0])
    rows = []
    for label, uri in (
        ("SQLite", lambda folder: f"sqlite:///{folder / 'mlflow.db'}"),
        ("MariaDB", lambda folder: mlflow_mariadb_uri(settings)),
    ):
        folder = Path(tempfile.mkdtemp(prefix=f"mrh-bench-mlflow-{label.lower()}-"))
        before_load = load()
        with MlflowServer(python, uri(folder), folder) as server:
            peer = MlflowPeer(python, server)
            try:
                m = side_by_side(settings, peer, n, listed["model"], n_list)
            finally:
                peer.close()
        where = f"MLflow {version} tracking server on loopback, {label} back end"
        note = f"interleaved one by one; load average {before_load} -> {load()}"
        rows.append({
            "name": f"peer: one registration ({n} each), {where}",
            "baseline": f"MLflow create_model_version (1 request): {m['mlflow_register_ms']:.1f} ms",
            "ours": f"register_version (its checks included): {m['register_ms']:.1f} ms",
            "ratio": m["register_ms"] / m["mlflow_register_ms"],
            "floor": f"the Model Registry server's own 2 writes, nothing checked: {m['writes_ms']:.1f} ms "
            f"({m['writes_ms'] / m['mlflow_register_ms']:.2f}x MLflow); {note}",
            "measured": m, "backend": label,
        })  # fmt: skip
        rows.append({
            "name": f"peer: list {n_list} versions of one model, {where}",
            "baseline": f"MLflow search_model_versions, pages of 1,000: {m['mlflow_list_s']:.2f} s (median of 3)",
            "ours": f"versions_frame (a DataFrame): {m['frame_s']:.2f} s (median of 3)",
            "ratio": m["frame_s"] / m["mlflow_list_s"],
            "floor": f"the Model Registry server's listing alone (pages of 1,000, JSON decoded, no rows built): "
            f"{m['raw_list_s']:.2f} s ({m['raw_list_s'] / m['mlflow_list_s']:.2f}x MLflow); MLflow seeded straight "
            f"into its database (its SQLAlchemy store) in {m['mlflow_seed_s']:.0f} s",
            "backend": label,
        })  # fmt: skip
    return rows


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 2**20, 1),
        "python": platform.python_version(),
        "server": versions()["MODEL_REGISTRY_SERVER_VERSION"],
        "client": versions()["MODEL_REGISTRY_CLIENT_VERSION"],
        "kfp": versions()["KFP_VERSION"],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": load(),
    }


def mlflow_rows(settings: Settings, python: Path, n: int, rows: list[dict], n_versions: int) -> list[dict]:
    """The MLflow peer rows, beside the versions_frame model measured above (seeded here if it was not)."""
    if not python.exists():
        raise RuntimeError(f"no MLflow at {python}: `make bench` installs it (or pass --mlflow-python)")
    listed = next((r for r in rows if r["name"].startswith("versions_frame")), None)
    if listed is None:
        listed = bench_inspection(settings, n_versions)
    return bench_mlflow(settings, python, n, listed)


def render_table(info: dict, rows: list[dict]) -> str:
    """The results table (Markdown) that results.md holds and docs/benchmarks.md shows, from the measured rows."""
    lines = [
        f"Measured {info['date']} on {info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB; "
        f"Python {info['python']}, server {info['server']}, client {info['client']}, kfp {info['kfp']}; "
        f"load average at the start {info['load']} (a shared machine: read the ratios, measured side by side).",
        "",
        "| benchmark | baseline | mrhelpers | ratio (mrhelpers / baseline) | goal | floor; how the data was made |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else "-"
        goal = "-"
        if "goal" in r:
            met = r["ratio"] <= r["goal"] and r.get("ours_s", 0) <= r.get("goal_seconds", float("inf"))
            within = f" and <= {r['goal_seconds']:.0f} s" if "goal_seconds" in r else ""
            goal = f"<= {r['goal']}{within}: {'met' if met else 'NOT met'}"
        notes = "; ".join(x for x in (r.get("floor"), f"seeded in {r['seed']}" if "seed" in r else None) if x)
        lines.append(f"| {r['name']} | {r.get('baseline', '-')} | {r['ours']} | {ratio} | {goal} | {notes or '-'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the benchmarks themselves run")
    parser.add_argument("--skip-clone", action="store_true", help="skip `make tutorial` from a fresh clone")
    parser.add_argument("--only", default="", help="run only these benchmarks (comma-separated labels)")
    parser.add_argument("--find-versions", default="54x324", help="models x versions per model for find_versions")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results"), help="folder for results.md/.json")
    parser.add_argument("--crowd", type=int, default=30000, help="versions the full registry holds for the tutorial")
    parser.add_argument(
        "--mlflow-python",
        default=str(ROOT / ".mrh" / "mlflow-venv" / "bin" / "python"),
        help="a Python with MLflow (make bench installs it into .mrh/mlflow-venv)",
    )
    args = parser.parse_args()
    n_reg, n_versions, runs = (20, 300, 1) if args.quick else (120, 5000, 2)
    crowd_target = 1000 if args.quick else args.crowd
    order = ("clean", "full") if args.quick else ("clean", "full", "full", "clean", "clean", "full")

    fv_models, fv_per_model = (3, 100) if args.quick else map(int, args.find_versions.split("x"))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    rows: list[dict] = []

    def write() -> str:  # after every benchmark, so a failure later keeps what was measured
        table = render_table(info, rows)
        (out / "results.md").write_text(table + "\n")
        (out / "results.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2))
        return table

    state = Path(tempfile.mkdtemp(prefix="mrh-bench-"))
    settings = Settings(state_dir=state, bin_dir=default_bin_dir())
    wanted = set(args.only.split(",")) if args.only else None
    try:
        localstack.up(settings, quiet=True)
        settings = Settings.from_env(state_dir=state, bin_dir=default_bin_dir())
        for label, work in (
            ("registration", lambda: [bench_registration(settings, n_reg)]),
            ("inspection", lambda: [bench_inspection(settings, n_versions)]),
            ("component", lambda: [bench_component(settings, runs)]),
            ("find_versions", lambda: [bench_find_versions(settings, fv_models, fv_per_model)]),
            # The stack now holds the versions above; topped up, it is the tutorial's full registry.
            ("tutorial", lambda: bench_tutorial_crowded(settings, crowd_target, order)),
            ("mlflow", lambda: mlflow_rows(settings, Path(args.mlflow_python), n_reg, rows, n_versions)),
        ):
            if wanted and label not in wanted:
                continue
            print(f"running: {label} ... (load average {load()})", flush=True)
            rows.extend(work())
            write()
    finally:
        localstack.down(settings, quiet=True)
    clean = next((r for r in rows if "clean_s" in r), None)
    if clean is not None and not (args.skip_clone or args.quick):
        print("running: make tutorial from a fresh clone ...", flush=True)
        rows.append(bench_tutorial_fresh_clone(clean["clean_s"]))
    table = write()
    print("\n" + table)
    print(f"\nwritten: {out / 'results.md'}, {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
