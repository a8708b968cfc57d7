"""Issue 13's correctness rule: today's frames equal the frames as read before it, row for row.

The baseline is ``benchmarks/before.py``: the implementation at commit 406473f (a request per version
for its artifact). The data mixes what mrhelpers writes with what other tools leave behind.
"""

import uuid

import pytest
from model_registry.types import ModelVersion

from benchmarks import before
from mrhelpers import Lineage, connect, find_versions, register_version, set_stage, versions_frame
from mrhelpers.core.rest import session_for

FMT = dict(model_format_name="sklearn", model_format_version="1")


@pytest.fixture(scope="module")
def registry(stack):
    return connect(stack)


@pytest.fixture(scope="module")
def seeded(registry):
    name, run = f"ba-{uuid.uuid4().hex[:8]}", f"run-{uuid.uuid4().hex[:6]}"
    for i in range(12):
        lineage = Lineage.for_kfp_run(run if i % 3 == 0 else f"{run}-{i}", f"name {i}", "ns") if i % 4 else None
        meta = {"acc": 0.5 + i / 100, "epochs": i, "ok": i % 2 == 0, "cfg": {"k": [i]}, "neg0": -0.0, "huge": 1e20}
        uri = f"s3://key:secret@bucket/{i}?token=t{i}" if i == 5 else f"s3://bucket/{i}"
        register_version(registry, name, f"v{i}", uri, lineage=lineage, metadata=meta, description=f"d{i}", **FMT)
    registry.register_model(name, "s3://bucket/raw", version="raw", model_source_id=run, **FMT)  # another tool
    model = registry.get_registered_model(name)
    session_for(registry).save_version(ModelVersion(name="half", author="other"), model.id)  # no artifact
    set_stage(registry, name, "v4", "production")
    set_stage(registry, name, "v8", "candidate")
    return name, run


def test_versions_frame_equals_the_frame_before_issue_13(registry, seeded):
    name, _ = seeded
    now, then = versions_frame(registry, name), before.versions_frame(registry, name)
    assert len(now) == 14
    assert now.equals(then), now.compare(then)


def test_find_versions_equals_the_answer_before_issue_13(registry, seeded):
    _, run = seeded
    now, then = find_versions(registry, run_id=run), before.find_versions(registry, run_id=run)
    assert sorted(now.version) == ["raw", "v3", "v6", "v9"]
    assert now.equals(then), now.compare(then)


def test_the_comparison_sees_a_difference(registry, seeded):
    name, _ = seeded
    then = before.versions_frame(registry, name)
    changed = then.copy()
    changed.loc[3, "uri"] = "s3://bucket/elsewhere"
    assert not versions_frame(registry, name).equals(changed)
