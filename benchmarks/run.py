"""Benchmarks, measured side by side in one run on one machine; prints a table and writes results.

    .venv/bin/python -m benchmarks.run [--quick] [--full-naive] [--skip-clone]

Each benchmark starts from a local stack of its own (MariaDB + the Model Registry server) in a
temporary folder, on free loopback ports, and stops it at the end.
"""

import argparse
import asyncio
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

import mrhelpers as mh
from mrhelpers import localstack
from mrhelpers.core.settings import Settings, default_bin_dir, versions

ROOT = Path(__file__).resolve().parent.parent
FMT = dict(model_format_name="sklearn", model_format_version="1")


def requests_logged(settings: Settings) -> int:
    """Requests the server has answered so far (one access-log line each)."""
    log = settings.state_dir / "logs" / "model-registry.log"
    return sum(
        1
        for line in log.read_text(errors="replace").splitlines()
        if '"GET http' in line or '"POST http' in line or '"PATCH http' in line
    )


def bench_registration(settings: Settings, n: int) -> dict:
    registry = mh.connect(settings)
    raw_name, mh_name = f"raw-{uuid.uuid4().hex[:6]}", f"mrh-{uuid.uuid4().hex[:6]}"
    raw_t, mh_t, raw_calls, mh_calls = [], [], [], []
    for i in range(n):  # interleaved, so drift in the machine hits both alike
        before = requests_logged(settings)
        t = time.perf_counter()
        registry.register_model(
            raw_name,
            f"s3://b/{i}",
            version=f"v{i}",
            **FMT,
            model_source_kind="kfp",
            model_source_class="pipelinerun",
            model_source_id=f"run-{i}",
        )
        raw_t.append(time.perf_counter() - t)
        raw_calls.append(requests_logged(settings) - before)
        before = requests_logged(settings)
        t = time.perf_counter()
        mh.register_version(
            registry, mh_name, f"v{i}", f"s3://b/{i}", **FMT, lineage=mh.Lineage.for_kfp_run(f"run-{i}", "bench", "ns")
        )
        mh_t.append(time.perf_counter() - t)
        mh_calls.append(requests_logged(settings) - before)
    raw, ours = statistics.median(raw_t), statistics.median(mh_t)
    return {
        "name": f"registration ({n} versions each)",
        "baseline": f"client register_model: {raw * 1000:.1f} ms, {statistics.median(raw_calls):.0f} HTTP calls",
        "ours": f"register_version: {ours * 1000:.1f} ms, {statistics.median(mh_calls):.0f} HTTP calls",
        "ratio": ours / raw,
        "raw_ms": raw * 1000,
        "ours_ms": ours * 1000,
        "raw_calls": statistics.median(raw_calls),
        "ours_calls": statistics.median(mh_calls),
    }


async def _seed(settings: Settings, name: str, n: int) -> None:
    """Write n versions (each with its artifact) fast: one session, 16 requests in flight. Not measured."""
    from model_registry.types import ModelArtifact, ModelVersion, RegisteredModel

    registry = mh.connect(settings)
    api = registry._api
    rm = await api.upsert_registered_model(RegisteredModel(name=name))
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with gate:
            mv = await api.upsert_model_version(ModelVersion(name=f"v{i}", author="bench"), rm.id)
            await api.upsert_model_version_artifact(ModelArtifact(name=name, uri=f"s3://b/{i}", **FMT), mv.id)

    for start in range(0, n, 500):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 500))))


def bench_inspection(settings: Settings, n: int, naive_sample: int | None) -> dict:
    name = f"many-{uuid.uuid4().hex[:6]}"
    t = time.perf_counter()
    asyncio.run(_seed(settings, name, n))
    seeded = time.perf_counter() - t
    registry = mh.connect(settings)
    ours = []
    for _ in range(3):
        t = time.perf_counter()
        frame = mh.versions_frame(registry, name)
        ours.append(time.perf_counter() - t)
    assert len(frame) == n and frame.uri.notna().all()
    # The naive way: the client's pager with its defaults, then one artifact look-up per version.
    t = time.perf_counter()
    count = 0
    for v in registry.get_model_versions(name):
        registry.get_model_artifact(name, v.name)
        count += 1
        if naive_sample and count >= naive_sample:
            break
    naive = (time.perf_counter() - t) * (n / count)
    label = "measured" if count == n else f"extrapolated from the first {count}"
    return {
        "name": f"versions_frame, one model with {n} versions",
        "baseline": f"client pager + get_model_artifact each: {naive:.1f} s ({label})",
        "ours": f"versions_frame: {statistics.median(ours):.2f} s (median of 3)",
        "ratio": statistics.median(ours) / naive,
        "seed_seconds": seeded,
        "naive_s": naive,
        "ours_s": statistics.median(ours),
        "naive_label": label,
    }


async def _seed_runs(settings: Settings, models: int, per_model: int, runs: int) -> None:
    """Versions as register_version writes them (run id on the version and its artifact), fast: one
    session of the client's generated API, 16 requests in flight. Not measured."""
    from model_registry.types import ModelArtifact, ModelVersion, RegisteredModel

    from mrhelpers.core.registry import SOURCE_ID_KEY

    api = mh.connect(settings)._api
    gate = asyncio.Semaphore(16)

    async def one(rm_id: str, m: int, i: int) -> None:
        run = f"run-{(m * per_model + i) % runs}"
        async with gate:
            mv = await api.upsert_model_version(
                ModelVersion(name=f"v{i}", author="bench", custom_properties={SOURCE_ID_KEY: run}), rm_id
            )
            uri = f"s3://b/{m}/{i}"
            art = ModelArtifact(name=f"m{m}", uri=uri, model_source_kind="kfp", model_source_id=run, **FMT)
            await api.upsert_model_version_artifact(art, mv.id)

    for m in range(models):
        rm = await api.upsert_registered_model(RegisteredModel(name=f"fv-{uuid.uuid4().hex[:6]}-{m}"))
        await asyncio.gather(*(one(rm.id, m, i) for i in range(per_model)))


def bench_find_versions(settings: Settings, models: int, per_model: int) -> dict:
    from mrhelpers.core import inspection
    from mrhelpers.core.registry import SOURCE_ID_KEY

    runs = models * per_model // 2  # two versions per run, as a retried or two-step pipeline leaves
    t = time.perf_counter()
    asyncio.run(_seed_runs(settings, models, per_model, runs))
    seeded = time.perf_counter() - t
    registry = mh.connect(settings)
    target = f"run-{runs // 2}"
    t = time.perf_counter()
    old = [  # the per-version reading it replaced: every version's artifact, then the filter
        v.id
        for v, a in inspection._versions(registry, None)
        if (getattr(a, "model_source_id", None) or (v.custom_properties or {}).get(SOURCE_ID_KEY)) == target
    ]
    old_s = time.perf_counter() - t
    ours = []
    for _ in range(3):
        t = time.perf_counter()
        frame = mh.find_versions(registry, run_id=target)
        ours.append(time.perf_counter() - t)
    assert sorted(frame.version_id) == sorted(old) and len(old) >= 1
    total = models * per_model
    return {
        "name": f"find_versions(run_id=...), {total} versions in {models} models",
        "baseline": f"an artifact call per version, then filter: {old_s:.1f} s",
        "ours": f"one listing, artifacts of the matches only: {statistics.median(ours):.2f} s (median of 3)",
        "ratio": statistics.median(ours) / old_s,
        "seed_seconds": seeded,
        "seed": "the client's generated async API on one session, 16 requests in flight",
        "old_s": old_s,
        "ours_s": statistics.median(ours),
    }


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


def bench_tutorial(skip_clone: bool) -> dict:
    from mrhelpers.tutorial import run_notebooks

    state = Path(tempfile.mkdtemp(prefix="mrh-bench-tutorial-"))
    settings = Settings(state_dir=state, bin_dir=default_bin_dir())
    env_before = os.environ.get("MRH_STATE_DIR")
    os.environ["MRH_STATE_DIR"] = str(state)
    try:
        localstack.up(settings, quiet=True)  # warm stack
        t = time.perf_counter()
        results = run_notebooks(state / "notebooks", {"backend": "local"}, quiet=True)
        warm = time.perf_counter() - t
        assert all(r.status == "ok" for r in results), results
    finally:
        localstack.down(settings, quiet=True)
        if env_before is None:
            os.environ.pop("MRH_STATE_DIR", None)
        else:
            os.environ["MRH_STATE_DIR"] = env_before
    out = {
        "name": f"the tutorial, {len(results)} notebooks headless",
        "ours": f"warm stack: {warm:.1f} s",
        "warm_s": warm,
    }
    if not skip_clone:
        clone = Path(tempfile.mkdtemp(prefix="mrh-bench-clone-")) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MRH_")}
        t = time.perf_counter()
        proc = subprocess.run(["make", "tutorial"], cwd=clone, env=env, capture_output=True, text=True)
        fresh = time.perf_counter() - t
        subprocess.run(["make", "down"], cwd=clone, env=env, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"make tutorial failed in {clone}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        out["baseline"] = f"`make tutorial` from a fresh clone (package caches warm): {fresh:.1f} s"
        out["fresh_clone_s"] = fresh
    return out


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
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the benchmarks themselves run")
    parser.add_argument("--full-naive", action="store_true", help="run the naive listing over all 5,000 versions")
    parser.add_argument("--skip-clone", action="store_true", help="skip `make tutorial` from a fresh clone")
    parser.add_argument("--only", default="", help="run only these benchmarks (comma-separated labels)")
    parser.add_argument("--find-versions", default="54x324", help="models x versions per model for find_versions")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results"), help="folder for results.md/.json")
    args = parser.parse_args()
    n_reg, n_versions, runs, sample = (
        (20, 300, 1, 50) if args.quick else (200, 5000, 2, None if args.full_naive else 500)
    )

    fv_models, fv_per_model = (3, 100) if args.quick else map(int, args.find_versions.split("x"))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    rows: list[dict] = []

    def write() -> str:  # after every benchmark, so a failure later keeps what was measured
        lines = [
            f"Measured {info['date']} on {info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB; "
            f"Python {info['python']}, server {info['server']}, client {info['client']}, kfp {info['kfp']}.",
            "",
            "| benchmark | baseline | mrhelpers | ratio (mrhelpers / baseline) |",
            "|---|---|---|---|",
        ]
        for r in rows:
            ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
            lines.append(f"| {r['name']} | {r.get('baseline', '-')} | {r['ours']} | {ratio} |")
        table = "\n".join(lines)
        (out / "results.md").write_text(table + "\n")
        (out / "results.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2))
        return table

    state = Path(tempfile.mkdtemp(prefix="mrh-bench-"))
    settings = Settings(state_dir=state, bin_dir=default_bin_dir())
    try:
        localstack.up(settings, quiet=True)
        settings = Settings.from_env(state_dir=state, bin_dir=default_bin_dir())
        for label, work in (
            ("registration", lambda: bench_registration(settings, n_reg)),
            ("inspection", lambda: bench_inspection(settings, n_versions, sample)),
            ("component", lambda: bench_component(settings, runs)),
            ("find_versions", lambda: bench_find_versions(settings, fv_models, fv_per_model)),
        ):
            if args.only and label not in args.only.split(","):
                continue
            print(f"running: {label} ...", flush=True)
            rows.append(work())
            write()
    finally:
        localstack.down(settings, quiet=True)
    if not args.only or "tutorial" in args.only.split(","):
        print("running: tutorial ...", flush=True)
        rows.append(bench_tutorial(args.skip_clone or args.quick))
    table = write()
    print("\n" + table)
    print(f"\nwritten: {out / 'results.md'}, {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
