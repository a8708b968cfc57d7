"""register_version checks every input before it touches the registry."""

import json
import math

import pytest

from mrhelpers import InvalidInput, Lineage, register_version
from mrhelpers.core.registry import _next_free_name, normalize_metadata, normalize_uri


class Untouchable:
    """Stands where a client would; any use of it fails the test (proves no call was made)."""

    def __getattr__(self, name):
        raise AssertionError(f"the registry was used ({name}) although the input was invalid")


GOOD = dict(name="m", version="v1", uri="s3://b/m", model_format_name="sklearn", model_format_version="1")
LINEAGE = Lineage.for_kfp_run("run-1", "my-run", "ns")

BAD_INPUTS = [
    ("name", {"name": ""}),
    ("name", {"name": "   "}),
    ("name", {"name": " padded"}),
    ("name", {"name": "x" * 201}),
    ("name", {"name": "tab\tname"}),
    ("name", {"name": 42}),
    ("version", {"version": ""}),
    ("version", {"version": None}),
    ("version", {"version": "v1\n"}),
    ("uri", {"uri": ""}),
    ("uri", {"uri": "relative/path/model.pkl"}),
    ("uri", {"uri": "s3://"}),
    ("uri", {"uri": " s3://b/m"}),
    ("model_format_name", {"model_format_name": ""}),
    ("model_format_version", {"model_format_version": None}),
    ("metadata['a']", {"metadata": {"a": None}}),
    ("metadata['a']", {"metadata": {"a": math.nan}}),
    ("metadata['a']", {"metadata": {"a": 2**70}}),
    ("metadata['a']", {"metadata": {"a": 10**9}}),
    ("metadata['a']", {"metadata": {"a": object()}}),
    ("metadata key", {"metadata": {"": 1}}),
    ("metadata key", {"metadata": {"k" * 256: 1}}),
    ("metadata key", {"metadata": {"mrh_stage": "production"}}),
    ("metadata['blob']", {"metadata": {"blob": "x" * (4 * 1024 * 1024 + 1)}}),
    ("version", {"version": "v" * 201}),
    ("metadata", {"metadata": ["not", "a", "mapping"]}),
    ("lineage", {"lineage": {"id": "run-1"}}),
    ("lineage.id", {"lineage": Lineage("kfp", "pipelinerun", "ns", "", "n")}),
    ("lineage.id", {"lineage": Lineage("kfp", "pipelinerun", "ns", "{{workflow.uid}}", "n")}),
    ("lineage.name", {"lineage": Lineage("kfp", "pipelinerun", "ns", "run-1", "{{workflow.name}}")}),
    ("lineage.group", {"lineage": Lineage("kfp", "pipelinerun", "{{workflow.namespace}}", "run-1", "n")}),
    ("description", {"description": 3}),
    ("on_conflict", {"on_conflict": "overwrite"}),
]


@pytest.mark.parametrize(("field", "change"), BAD_INPUTS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_INPUTS)])
def test_bad_input_is_refused_before_any_call(field, change):
    args = {**GOOD, "lineage": LINEAGE, **change}
    with pytest.raises(InvalidInput) as info:
        register_version(Untouchable(), args.pop("name"), args.pop("version"), args.pop("uri"), **args)
    assert info.value.field == field
    assert "Allowed:" in str(info.value)


def test_absolute_path_becomes_file_uri():
    assert normalize_uri("/models/m 1/model.pkl") == "file:///models/m%201/model.pkl"
    assert normalize_uri("oci://quay.io/org/model:1") == "oci://quay.io/org/model:1"


def test_metadata_rules():
    out = normalize_metadata({"b": True, "i": 3, "f": 0.5, "s": "x", "d": {"z": 1, "a": [1, 2]}, "l": [1, "a"]})
    assert out["b"] is True and out["i"] == 3 and out["f"] == 0.5 and out["s"] == "x"
    assert json.loads(out["d"]) == {"a": [1, 2], "z": 1} and out["d"].index('"a"') < out["d"].index('"z"')
    assert json.loads(out["l"]) == [1, "a"]
    assert normalize_metadata(None) == {}


def test_lineage_convention():
    assert LINEAGE.as_fields() == {
        "model_source_kind": "kfp",
        "model_source_class": "pipelinerun",
        "model_source_group": "ns",
        "model_source_id": "run-1",
        "model_source_name": "my-run",
    }


def test_bump_names():
    assert _next_free_name("v1", {"v1"}) == "v1-2"
    assert _next_free_name("v1", {"v1", "v1-2", "v1-3"}) == "v1-4"
