"""Issue 13 against the real server: one keep-alive session per registry, frames from one listing.

The frames read each version's copy of its artifact's fields (``mrh_artifact``) instead of a
request per version; these tests hold them to what reading every artifact gives, row for row.
"""

import multiprocessing as mp
import pickle
import threading
import uuid
import warnings

import pandas as pd
import pytest
from model_registry.types import ModelArtifact, ModelVersion

from mrhelpers import InvalidInput, Lineage, VersionConflict, connect, find_versions, register_version, versions_frame
from mrhelpers.core.registry import ARTIFACT_KEY
from mrhelpers.core.rest import IN_FLIGHT, RegistrySession, session_for

FMT = dict(model_format_name="sklearn", model_format_version="1")


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def registry(stack):
    return connect(stack)


def _mixed_model(registry, name):
    """Versions as mrhelpers writes them, beside versions another tool wrote (no copy; one half-made)."""
    run = Lineage.for_kfp_run
    register_version(registry, name, "a", "s3://u:p@b/a?X-Amz-Signature=s", lineage=run("r1", "one", "ns"), **FMT)
    register_version(registry, name, "b", "/abs/path/m", metadata={"acc": 0.9, "n": 3, "big": 1e20, "tag": "x"}, **FMT)
    register_version(registry, name, "c", "gs://b/c", lineage=run("r2", "two", "ns"), metadata={"zero": -0.0}, **FMT)
    registry.register_model(name, "s3://b/raw", version="raw", model_source_id="r1", model_source_kind="kfp", **FMT)
    rm = registry.get_registered_model(name)
    # another tool's half-made registration: a version without an artifact
    session_for(registry).save_version(ModelVersion(name="half", author="other-tool"), rm.id)


def test_frames_from_copies_equal_reading_every_artifact_row_for_row(registry):
    name = uid("rows")
    _mixed_model(registry, name)
    fast = versions_frame(registry, name)
    exact = versions_frame(registry, name, read_artifacts=True)
    assert list(fast.version) == ["a", "b", "c", "raw", "half"]
    assert fast.equals(exact), fast.compare(exact)
    assert fast.iloc[0].uri == "s3://***@b/a?X-Amz-Signature=***" and fast.iloc[1].uri == "file:///abs/path/m"
    assert fast.iloc[1].metadata == {"acc": 0.9, "n": 3, "big": 1e20, "tag": "x"}
    assert isinstance(fast.iloc[1].metadata["big"], float) and pd.isna(fast.iloc[4].uri)
    assert [None if pd.isna(s) else s for s in fast.source_id] == ["r1", None, "r2", "r1", None]
    runs = find_versions(registry, run_id="r1")
    assert list(runs[runs.model == name].version) == ["a", "raw"]  # the raw one has no copy: its artifact is read


def test_a_version_keeps_its_artifacts_fields_and_no_reserved_key_leaks(registry):
    name = uid("copy")
    register_version(registry, name, "v1", "s3://b/1", lineage=Lineage.for_kfp_run("r", "n", "ns"), **FMT)
    props = registry.get_model_version(name, "v1").custom_properties
    assert ARTIFACT_KEY in props and '"uri":"s3://b/1"' in props[ARTIFACT_KEY]
    assert versions_frame(registry, name).iloc[0].metadata == {}


def test_an_artifact_changed_by_another_tool_shows_with_read_artifacts(registry):
    """Documented: the copy is what was registered; read_artifacts=True reads what is stored now."""
    name = uid("moved")
    register_version(registry, name, "v1", "s3://b/old", **FMT)
    art = registry.get_model_artifact(name, "v1")
    art.uri = "s3://b/new"
    registry.update(art)
    assert versions_frame(registry, name).iloc[0].uri == "s3://b/old"
    assert versions_frame(registry, name, read_artifacts=True).iloc[0].uri == "s3://b/new"


def test_a_same_run_retry_with_another_uri_updates_the_copy_to_the_artifact(registry):
    name = uid("retry")
    lineage = Lineage.for_kfp_run("r-retry", "n", "ns")
    first = register_version(registry, name, "v1", "s3://b/first", lineage=lineage, **FMT)
    session = session_for(registry)
    mv = session.version(first.version_id)  # the artifact another same-run writer wrote with other values
    mv.custom_properties = {
        **mv.custom_properties,
        ARTIFACT_KEY: mv.custom_properties[ARTIFACT_KEY].replace("first", "x"),
    }
    session.save_version(mv)
    assert versions_frame(registry, name).iloc[0].uri == "s3://b/first"  # a rewritten copy is not trusted
    again = register_version(registry, name, "v1", "s3://b/first", lineage=lineage, **FMT)
    assert again.created is False
    assert versions_frame(registry, name).equals(versions_frame(registry, name, read_artifacts=True))


def test_a_case_twin_written_by_another_client_after_the_first_listing_is_still_refused(stack, registry):
    name = uid("twin-later")
    register_version(registry, name, "v1", "s3://b/1", **FMT)  # this session has listed the versions now
    other = connect(stack)
    model = registry.get_registered_model(name)
    session_for(other).save_version(ModelVersion(name="Late", author="other"), model.id)
    with pytest.raises(VersionConflict, match="'Late'"):
        register_version(registry, name, "late", "s3://b/2", **FMT)
    assert register_version(registry, name, "late", "s3://b/2", on_conflict="bump", **FMT).version_name == "late-2"


def test_one_connection_serves_many_calls(stack):
    registry = connect(stack)  # a client of its own: earlier tests read artifacts on several connections
    name = uid("keepalive")
    for i in range(5):
        register_version(registry, name, f"v{i}", f"s3://b/{i}", **FMT)
    versions_frame(registry, name)
    pools = session_for(registry).http().adapters["http://"].poolmanager.pools
    opened = sum(pool.num_connections for pool in pools._container.values())
    assert opened == 1, opened


def test_artifact_reads_stay_within_the_in_flight_bound(registry, monkeypatch):
    name = uid("bound")
    model = registry.register_model(name, "s3://b/0", version="v0", **FMT)
    session = session_for(registry)
    for i in range(1, 3 * IN_FLIGHT):  # versions without a copy: each needs its artifact read
        mv = session.save_version(ModelVersion(name=f"v{i}", author="other"), model.id)
        session.add_artifact(mv.id, ModelArtifact(name=name, uri=f"s3://b/{i}", **FMT))
    lock, state = threading.Lock(), {"now": 0, "most": 0}
    monkeypatch.setattr(session.http(), "request", counting_http(session.http().request, lock, state))
    frame = versions_frame(registry, name)
    assert list(frame.uri) == [f"s3://b/{i}" for i in range(3 * IN_FLIGHT)]
    assert 2 <= state["most"] <= IN_FLIGHT, state
    state["most"] = 0
    frames = []  # three threads of the reader's own, each reading every artifact: still the one bound
    threads = [threading.Thread(target=lambda: frames.append(versions_frame(registry, name))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(frames) == 3 and all(f.equals(frame) for f in frames)
    assert IN_FLIGHT // 2 < state["most"] <= IN_FLIGHT, state


def counting_http(real, lock, state):
    """``requests.Session.request`` that counts the requests on the wire at once."""

    def counting(*args, **kwargs):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                state["now"] -= 1

    return counting


def _register_in_child(registry, name, queue):
    try:
        queue.put(register_version(registry, name, "child", "s3://b/child", **FMT).version_name)
    except Exception as exc:  # noqa: BLE001 - the parent asserts on it
        queue.put(exc)


def test_a_forked_process_opens_its_own_connections(registry):
    name = uid("fork")
    register_version(registry, name, "parent", "s3://b/p", **FMT)  # the parent's connection is open
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_register_in_child, args=(registry, name, queue))
    child.start()
    got = queue.get(timeout=120)
    child.join(60)
    assert got == "child" and child.exitcode == 0
    assert register_version(registry, name, "after", "s3://b/a", **FMT).created  # the parent's session still works
    assert list(versions_frame(registry, name).version) == ["parent", "child", "after"]


def test_a_client_not_made_by_connect_is_refused_by_name(stack):
    from model_registry import ModelRegistry

    url = stack.registry_url.rsplit(":", 1)
    with warnings.catch_warnings():  # the local stack's own port needs no token: the client warns of that
        warnings.simplefilter("ignore", UserWarning)
        token = stack.token.reveal() or None
        raw = ModelRegistry(url[0], port=int(url[1]), author="x", is_secure=False, user_token=token)
    with pytest.raises(InvalidInput, match=r"mrhelpers\.connect\(settings\)"):
        register_version(raw, uid("raw"), "v1", "s3://b/1", **FMT)


def test_the_session_never_shows_or_pickles_its_token():
    session = RegistrySession("http://127.0.0.1:1", "s3cr3t-token", "me", "hint", "secret")
    assert "s3cr3t" not in repr(session) and "s3cr3t" not in str(vars(session))
    with pytest.raises(TypeError, match="connect"):
        pickle.dumps(session)
