"""find_versions(run_id=...) decides from one listing, and answers as the per-version reading did."""

import uuid

import pytest

from benchmarks import before
from mrhelpers import Lineage, connect, find_versions, register_version
from mrhelpers.core.registry import SOURCE_ID_KEY

pytestmark = pytest.mark.integration

FMT = dict(model_format_name="onnx", model_format_version="1")


def _per_version(registry, run_id):
    """The answer as main computed it before issue 13: every version's artifact read, then filtered."""
    return before.find_versions(registry, run_id=run_id)


def test_find_versions_matches_the_per_version_answer_row_for_row(stack):
    registry = connect(stack)
    tag = uuid.uuid4().hex[:8]
    runs = [f"run-{tag}-{i}" for i in range(4)]
    for m in range(3):
        for v in range(12):
            run = runs[(m + v) % 4]
            register_version(
                registry, f"fv-{tag}-{m}", f"v{v}", f"s3://b/{m}/{v}",
                lineage=Lineage.for_kfp_run(run, f"name-{run}", "ns"), metadata={"m": m, "v": v}, **FMT,
            )  # fmt: skip
    # Written by another tool: the run id on the artifact only, no mrh_source_id on the version.
    registry.register_model(
        f"fv-{tag}-plain", "s3://b/plain", version="p1", model_format_name="onnx", model_format_version="1",
        model_source_kind="kfp", model_source_id=runs[1],
    )  # fmt: skip
    assert (registry.get_model_version(f"fv-{tag}-plain", "p1").custom_properties or {}).get(SOURCE_ID_KEY) is None
    for run in [*runs, "no-such-run"]:
        new, old = find_versions(registry, run_id=run), _per_version(registry, run)
        assert new.to_dict("records") == old.to_dict("records")
    found = find_versions(registry, run_id=runs[1])
    assert len(found) == 9 + 1 and f"fv-{tag}-plain" in set(found.model)
    assert len(find_versions(registry, run_id="no-such-run")) == 0
