"""Issue 12 against the real server and MariaDB: nothing lost, nothing merged, nothing half-made."""

import contextlib
import multiprocessing as mp
import time
import uuid

import localstack  # setup/localstack.py
import pytest

from mrhelpers import (
    InvalidInput,
    Lineage,
    Settings,
    VersionConflict,
    connect,
    models_frame,
    register_version,
    versions_frame,
)
from mrhelpers.core.inspection import artifacts_frame, lineage_of
from mrhelpers.core.lifecycle import production_version, set_stage
from mrhelpers.core.registry import MAX_URI_BYTES, PRODUCTION_KEY, STAGE_KEY
from tests.conftest import stack_settings
from tests.integration.core.test_registration_safety import _race

FMT = dict(model_format_name="sklearn", model_format_version="1")
LINEAGE = Lineage.for_kfp_run("integrity-run", "integrity", "ns")
POOL_TIMEOUT = 240  # seconds: a hang fails the test instead of blocking the suite


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def model_count(registry):
    return len(models_frame(registry))


@pytest.fixture(scope="module")
def registry(stack):
    return connect(stack)


def _collations(settings):
    out = localstack._sql(
        settings,
        "SELECT DISTINCT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='model_registry' "
        "AND COLLATION_NAME IS NOT NULL UNION SELECT TABLE_COLLATION FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA='model_registry';",
    )
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split()[1:])


# --------------------------------------------------------------------------- 1, 2: collation and reserved keys


def test_local_database_compares_exactly(stack, registry):
    assert _collations(stack) == {"utf8mb4_bin"}
    name = uid("Churn")
    register_version(registry, name, "v1", "s3://b/c", lineage=LINEAGE, metadata={"😀": 1, "a": 2}, **FMT)
    assert registry.get_registered_model(name.lower()) is None  # no longer finds the other-case model
    assert versions_frame(registry, name.lower()).empty
    assert versions_frame(registry, name).iloc[0].metadata == {"😀": 1, "a": 2}


def test_names_differing_only_in_case_are_refused_before_any_write(registry):
    name = uid("Churn-x")
    register_version(registry, name, "v1", "s3://b/1", lineage=LINEAGE, **FMT)
    before = model_count(registry)
    with pytest.raises(InvalidInput, match=f"existing model '{name}'") as info:
        register_version(registry, name.lower(), "v2", "s3://b/2", lineage=LINEAGE, **FMT)
    assert info.value.field == "name" and model_count(registry) == before

    with pytest.raises(VersionConflict) as conflict:  # same run, other case: not "the same version"
        register_version(registry, name, "V1", "s3://b/1", lineage=LINEAGE, **FMT)
    assert conflict.value.existing_name == "v1" and "letter case" in str(conflict.value)
    bumped = register_version(registry, name, "V1", "s3://b/1", lineage=LINEAGE, on_conflict="bump", **FMT)
    assert bumped.version_name == "V1-2"
    assert list(versions_frame(registry, name).version) == ["v1", "V1-2"]
    assert lineage_of(registry, name, "V1-2")["run_id"] == LINEAGE.id


@pytest.mark.parametrize("metadata", [{"AUC": 0.1, "auc": 0.9}, {"MRH_STAGE": "production"}, {"Mrh_Source_Id": "x"}])
def test_case_twins_and_reserved_keys_in_any_case_write_nothing(registry, metadata):
    before = model_count(registry)
    with pytest.raises(InvalidInput) as info:
        register_version(registry, uid("keys"), "v1", "s3://b/k", lineage=LINEAGE, metadata=metadata, **FMT)
    assert info.value.field == "metadata key" and model_count(registry) == before


def _to_general_ci(settings):
    """Put the database back to MariaDB's default collation: a stack as created before this change."""
    tables = localstack._sql(
        settings, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='model_registry';"
    ).stdout.split()[1:]
    statements = ["ALTER DATABASE model_registry CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;"] + [
        f"ALTER TABLE model_registry.`{t}` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;" for t in tables
    ]
    out = localstack._sql(settings, "\n".join(statements))
    assert out.returncode == 0, out.stderr


@contextlib.contextmanager
def _case_insensitive_stack(state_dir):
    """A stack of the test's own whose database has MariaDB's default collation; stopped at the end."""
    base = stack_settings(state_dir)
    try:
        localstack.up(base, quiet=True)
        settings = Settings.from_env(state_dir=base.state_dir, bin_dir=base.bin_dir)
        _to_general_ci(settings)
        yield settings
    finally:
        localstack.down(base, quiet=True)


def test_an_old_case_insensitive_stack_is_migrated_by_up_keeping_its_data(tmp_path):
    with _case_insensitive_stack(tmp_path / "old") as settings:
        assert _collations(settings) == {"utf8mb4_general_ci"}
        registry = connect(settings)
        for i in range(3):
            register_version(registry, "Churn", f"v{i}", f"s3://b/{i}", lineage=LINEAGE, metadata={"AUC": i}, **FMT)
        assert registry.get_registered_model("churn").name == "Churn"  # the old database ignores case ...
        with pytest.raises(InvalidInput, match="existing model 'Churn'"):  # ... and mrhelpers refuses the twin
            register_version(registry, "churn", "v9", "s3://b/9", lineage=LINEAGE, **FMT)
        before = versions_frame(registry, "Churn").drop(columns=["created"])

        assert localstack.up(settings, quiet=True).ok  # the migration
        assert _collations(settings) == {"utf8mb4_bin"}
        registry = connect(settings)
        after = versions_frame(registry, "Churn").drop(columns=["created"])
        assert after.to_dict("records") == before.to_dict("records") and len(after) == 3
        assert registry.get_registered_model("churn") is None  # case now distinct
        assert localstack.ensure_exact_collation(settings, quiet=True) == []  # idempotent


def test_on_a_case_and_accent_insensitive_database_a_twin_version_is_refused_then_bumped(tmp_path):
    """The server's own comparison finds an accent twin that a case-folded listing cannot."""
    with _case_insensitive_stack(tmp_path / "ci") as settings:
        registry = connect(settings)
        register_version(registry, "Cafe", "v-é", "s3://b/accent", lineage=LINEAGE, **FMT)
        other = Lineage.for_kfp_run("other", "o", "ns")
        with pytest.raises(VersionConflict, match="'v-é'") as info:
            register_version(registry, "Cafe", "v-e", "s3://b/plain", lineage=other, **FMT)
        assert info.value.existing_name == "v-é"
        bumped = register_version(registry, "Cafe", "v-e", "s3://b/plain", lineage=other, on_conflict="bump", **FMT)
        assert bumped.version_name == "v-e-2" and bumped.created
        assert list(versions_frame(registry, "Cafe").version) == ["v-é", "v-e-2"]


# --------------------------------------------------------------------------- 3: promotion


def _promote(job):
    state_dir, name, version, start = job
    registry = connect(Settings.from_env(state_dir=state_dir))
    while time.time() < start:
        time.sleep(0.001)
    set_stage(registry, name, version, "production")
    return version


@pytest.mark.parametrize("writers", [2, 8])
def test_concurrent_promoters_leave_exactly_one_production_version(stack, registry, writers):
    name = uid(f"promo{writers}")
    for i in range(writers):
        register_version(registry, name, f"v{i}", f"s3://b/{i}", lineage=LINEAGE, **FMT)
    with mp.get_context("spawn").Pool(writers) as pool:  # one pool, three rounds: spawning is the slow part
        for _round in range(3):
            start = time.time() + 1.0
            jobs = [(str(stack.state_dir), name, f"v{i}", start) for i in range(writers)]
            pool.map_async(_promote, jobs, chunksize=1).get(timeout=POOL_TIMEOUT)
            frame = versions_frame(registry, name)
            production = list(frame[frame.stage == "production"].version)
            assert len(production) == 1, frame[["version", "stage"]]
            assert production_version(registry, name) == production[0]
            assert set(frame.stage) <= {"production", "candidate"}


def test_promotion_demotes_and_archives_the_previous_one(registry):
    name = uid("promo-seq")
    for v in ("v1", "v2"):
        register_version(registry, name, v, f"s3://b/{v}", lineage=LINEAGE, **FMT)
    set_stage(registry, name, "v1", "production")
    change = set_stage(registry, name, "v2", "production", demote_to="archived")
    assert change.demoted == ("v1",)
    frame = versions_frame(registry, name).set_index("version")
    assert (frame.loc["v1", "stage"], frame.loc["v1", "state"]) == ("candidate", "ARCHIVED")
    assert frame.loc["v2", "stage"] == "production" and production_version(registry, name) == "v2"
    set_stage(registry, name, "v2", "candidate")
    assert production_version(registry, name) is None
    assert versions_frame(registry, name).set_index("version").loc["v2", "stage"] == "candidate"


def test_old_data_with_the_stage_on_the_version_reads_as_stored_then_migrates(registry):
    name = uid("promo-old")
    for v in ("v1", "v2"):
        register_version(registry, name, v, f"s3://b/{v}", lineage=LINEAGE, **FMT)
    old = registry.get_model_version(name, "v1")  # as the previous mrhelpers wrote a promotion
    old.custom_properties = {**old.custom_properties, STAGE_KEY: "production"}
    registry.update(old)
    assert PRODUCTION_KEY not in (registry.get_registered_model(name).custom_properties or {})
    assert production_version(registry, name) == "v1"
    assert versions_frame(registry, name).set_index("version").loc["v1", "stage"] == "production"
    assert set_stage(registry, name, "v2", "production").demoted == ("v1",)
    frame = versions_frame(registry, name).set_index("version")
    assert list(frame.stage) == ["candidate", "production"]
    assert registry.get_registered_model(name).custom_properties[PRODUCTION_KEY] == frame.loc["v2", "version_id"]


# --------------------------------------------------------------------------- 4, 9: limits, types, display


def test_uri_at_the_column_limit_is_stored_and_one_byte_more_writes_nothing(registry):
    name = uid("uri-limit")
    longest = "s3://b/" + "x" * (MAX_URI_BYTES - 7)
    register_version(registry, name, "v1", longest, lineage=LINEAGE, **FMT)
    assert registry.get_model_artifact(name, "v1").uri == longest
    before = model_count(registry)
    with pytest.raises(InvalidInput, match=f"at most {MAX_URI_BYTES} bytes"):
        register_version(registry, uid("uri-over"), "v1", longest + "x", lineage=LINEAGE, **FMT)
    with pytest.raises(InvalidInput, match=f"at most {MAX_URI_BYTES} bytes"):  # same run, retried: same answer
        register_version(registry, name, "v2", longest + "x", lineage=LINEAGE, **FMT)
    assert model_count(registry) == before and list(versions_frame(registry, name).version) == ["v1"]


def _deep(levels):
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    "change",
    [
        {"metadata": {"deep": _deep(100_000)}},
        {"metadata": {"note": "nul\x00"}},
        {"description": "nul\x00"},
        {"version": "v\u202e1"},
    ],
    ids=["deep-100000", "nul-metadata", "nul-description", "bidi-version"],
)
def test_nul_bidi_and_deep_input_write_nothing(registry, change):
    before = model_count(registry)
    args = {"lineage": LINEAGE, **FMT, **change}
    with pytest.raises(InvalidInput, match="Allowed"):
        register_version(registry, uid("hostile"), args.pop("version", "v1"), "s3://b/h", **args)
    assert model_count(registry) == before


def test_floats_come_back_as_floats(registry):
    name = uid("floats")
    values = {"big": 1e20, "neg_zero": -0.0, "half": 0.5, "tiny": 5e-324, "whole": 3.0, "n": 3}
    register_version(registry, name, "v1", "s3://b/f", lineage=LINEAGE, metadata=values, **FMT)
    meta = versions_frame(registry, name).iloc[0].metadata
    assert {k: type(v) for k, v in meta.items()} == {k: type(v) for k, v in values.items()}
    assert meta == values  # -0.0 == 0.0: the sign of a zero is not kept (README)


def test_credentials_in_uris_are_masked_for_display_and_stored_exactly(registry):
    name = uid("creds")
    uri = "s3://AKIAEXAMPLE:wJalrXUtnFEMI@minio.local:9000/bucket/model"
    register_version(registry, name, "v1", uri, lineage=LINEAGE, **FMT)
    assert registry.get_model_artifact(name, "v1").uri == uri
    shown = [versions_frame(registry, name).iloc[0].uri, artifacts_frame(registry, name).iloc[0].uri]
    assert shown == ["s3://***@minio.local:9000/bucket/model"] * 2
    assert "wJalrXUtnFEMI" not in str(lineage_of(registry, name, "v1"))


# --------------------------------------------------------------------------- 5, 7: contention


def test_fourteen_bumping_runs_each_get_a_distinct_free_name(stack, registry):
    name = uid("bump")
    register_version(registry, name, "v1", "s3://b/first", lineage=LINEAGE, **FMT)
    out = _race(stack, [(name, "v1", f"bump-{i}", "bump") for i in range(14)])
    assert [o[0] for o in out] == ["ok"] * 14, out
    assert sorted((o[2] for o in out), key=lambda v: int(v.split("-")[1])) == [f"v1-{i}" for i in range(2, 16)]
    frame = versions_frame(registry, name)
    assert len(frame) == 15 and frame.iloc[0].uri == "s3://b/first"
    assert list(frame.uri[1:]) == [f"s3://b/{s}" for s in frame.source_id[1:]]  # each run's own artifact
    assert len(artifacts_frame(registry, name)) == 15


def test_sixteen_processes_of_one_run_registering_one_version_all_succeed(stack, registry):
    name = uid("same-run")
    out = _race(stack, [(name, "v1", "the-run", "error") for _ in range(16)])
    assert [o[0] for o in out] == ["ok"] * 16, [o for o in out if o[0] != "ok"]
    assert len({o[3] for o in out}) == 1 and len({o[4] for o in out}) == 1  # one version, one artifact
    assert list(versions_frame(registry, name).version) == ["v1"] and len(artifacts_frame(registry, name)) == 1


def test_a_lost_response_to_the_artifact_write_maps_its_409_to_the_result(registry, monkeypatch):
    import requests

    from mrhelpers.core.rest import session_for

    session = session_for(registry)
    real = session.send
    lost = []

    def write_then_lose_the_answer(method, path, params=None, body=None, *rest):
        result = real(method, path, params, body, *rest)
        if method == "POST" and path.endswith("/artifacts") and not lost:
            lost.append(result["id"])
            raise requests.ConnectionError("connection reset")  # the write happened; the answer did not arrive
        return result

    monkeypatch.setattr(session, "send", write_then_lose_the_answer)
    name = uid("lost")
    res = register_version(registry, name, "v1", "s3://b/l", lineage=LINEAGE, **FMT)
    monkeypatch.undo()
    assert lost and res.artifact_id == lost[0] and res.created
    assert len(artifacts_frame(registry, name)) == 1
