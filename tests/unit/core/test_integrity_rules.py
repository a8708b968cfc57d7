"""Issue 12's pure rules: exceptions cross processes, validation limits, masking, derived stages."""

import inspect
import multiprocessing as mp
import pickle
import types

import pytest

from mrhelpers import InvalidInput, Secret, Settings, connect, register_version
from mrhelpers.core import errors
from mrhelpers.core.inspection import mask_credentials
from mrhelpers.core.lifecycle import stage_of
from mrhelpers.core.registry import (
    MAX_DEPTH,
    MAX_METADATA_BYTES,
    MAX_URI_BYTES,
    PRODUCTION_KEY,
    STAGE_KEY,
    _next_free_name,
    normalize_metadata,
    normalize_uri,
)
from tests.unit.core.test_registration_inputs import GOOD, LINEAGE, Untouchable

SAMPLES = {
    errors.MRHelpersError: ("plain message",),
    errors.InvalidInput: ("metadata['a']", {"nested": [1, 2]}, "a finite float"),
    errors.RegistryUnavailable: ("Model Registry at http://x is not reachable",),
    errors.AuthError: ("refused the token (HTTP 401)",),
    errors.VersionConflict: ("churn", "v1", "17", "run-a", "V1", ("v1-2", "v1-3")),
    errors.StackError: ("MariaDB did not start",),
    errors.RunFailed: ("run ended FAILED",),
}
ATTRIBUTES = {
    errors.InvalidInput: ("field", "value", "allowed"),
    errors.VersionConflict: ("model_name", "version_name", "version_id", "owner_run_id", "existing_name", "tried"),
}


def test_every_error_class_has_a_sample():
    classes = {
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, errors.MRHelpersError) and obj.__module__ == errors.__name__
    }
    assert classes == set(SAMPLES)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_errors_pickle_with_their_attributes(cls):
    exc = cls(*SAMPLES[cls])
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls and str(back) == str(exc)
    for attribute in ATTRIBUTES.get(cls, ()):
        assert getattr(back, attribute) == getattr(exc, attribute), attribute


def test_an_unpicklable_value_travels_as_its_repr():
    exc = InvalidInput("metadata['f']", lambda: 1, "bool, int, float, str, dict or list")
    back = pickle.loads(pickle.dumps(exc))
    assert back.field == "metadata['f']" and back.value.startswith("<function") and str(back) == str(exc)


def _raise_in_worker(kind):
    if kind == "invalid":
        raise InvalidInput("version", "v 1", "no spaces")
    raise errors.VersionConflict("m", "v1", "3", "run-x")


@pytest.mark.parametrize("kind", ["invalid", "conflict"])
def test_a_pool_worker_raising_one_delivers_it_to_the_parent(kind):
    with mp.get_context("spawn").Pool(1) as pool:
        pending = pool.apply_async(_raise_in_worker, (kind,))
        with pytest.raises((InvalidInput, errors.VersionConflict)) as info:
            pending.get(timeout=60)  # a regression fails here instead of hanging
    if kind == "invalid":
        assert (info.value.field, info.value.value) == ("version", "v 1")
    else:
        assert (info.value.version_name, info.value.owner_run_id) == ("v1", "run-x")


def test_bump_give_up_names_what_it_tried():
    message = str(errors.VersionConflict("m", "v1", "", None, tried=("v1", "v1-2")))
    assert "'v1', 'v1-2'" in message and "2 attempts" in message
    assert "without lineage" not in message and "pass on_conflict='bump'" not in message


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"AUC": 0.1, "auc": 0.9}, "metadata key"),
        ({"Straße": 1, "STRASSE": 2}, "metadata key"),
        ({"MRH_STAGE": "production"}, "metadata key"),
        ({"Mrh_Source_Id": "x"}, "metadata key"),
        ({"k\u202e": 1}, "metadata key"),
        ({"note": "a\x00b"}, "metadata['note']"),
    ],
)
def test_metadata_refusals(metadata, field):
    with pytest.raises(InvalidInput) as info:
        normalize_metadata(metadata)
    assert info.value.field == field


def _nested(depth):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_nesting_depth_is_bounded_without_recursion_error():
    assert normalize_metadata({"ok": _nested(MAX_DEPTH)})["ok"].count("[") == MAX_DEPTH
    for depth in (MAX_DEPTH + 1, 100_000):
        with pytest.raises(InvalidInput, match=f"at most {MAX_DEPTH} levels"):
            normalize_metadata({"deep": _nested(depth)})
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(InvalidInput):
        normalize_metadata({"cycle": cycle})


@pytest.mark.parametrize(
    "change",
    [
        {"name": "evil\u202egnp.exe"},
        {"version": "v\u20661"},
        {"uri": "s3://b/" + "x" * MAX_URI_BYTES},
        {"description": "nul\x00here"},
        {"metadata": {f"k{i}": "x" * (4 * 1024 * 1024) for i in range(5)}},
    ],
    ids=["bidi-name", "bidi-version", "long-uri", "nul-description", "request-size"],
)
def test_limits_are_checked_before_any_call(change):
    args = {**GOOD, "lineage": LINEAGE, **change}
    with pytest.raises(InvalidInput, match="Allowed"):
        register_version(Untouchable(), args.pop("name"), args.pop("version"), args.pop("uri"), **args)


def test_uri_length_limit_is_in_bytes():
    longest = "s3://b/" + "x" * (MAX_URI_BYTES - 7)
    assert normalize_uri(longest) == longest
    with pytest.raises(InvalidInput, match=f"at most {MAX_URI_BYTES} bytes"):
        normalize_uri("s3://b/" + "é" * (MAX_URI_BYTES // 2))
    assert MAX_METADATA_BYTES <= 16 * 1024 * 1024


def test_padded_token_is_refused_before_connecting():
    settings = Settings(registry_url="http://127.0.0.1:9", token=Secret("tok\n"))
    with pytest.raises(InvalidInput, match="newlines") as info:
        connect(settings, retries=1)
    assert "tok" not in str(info.value).split("Allowed")[0].replace("token", "")


def test_next_free_name_ignores_case():
    assert _next_free_name("v1", {"v1", "V1-2", "v1-3"}) == "v1-4"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("s3://AKIAKEY:SeCrEt@minio:9000/b/m", "s3://***@minio:9000/b/m"),
        ("https://user@host/m", "https://***@host/m"),
        ("https://h/m?X-Amz-Signature=abc&versionId=3", "https://h/m?X-Amz-Signature=***&versionId=3"),
        ("error: s3://k:s@h/m not found", "error: s3://***@h/m not found"),
        ("s3://bucket/model@v1", "s3://bucket/model@v1"),
        ("file:///models/m.pkl", "file:///models/m.pkl"),
        (None, None),
    ],
)
def test_mask_credentials(text, shown):
    assert mask_credentials(text) == shown


def test_stage_is_derived_from_the_model_pointer():
    def version(vid, stage=None):
        return types.SimpleNamespace(id=vid, custom_properties={STAGE_KEY: stage} if stage else {})

    pointer = {PRODUCTION_KEY: "2"}
    assert stage_of(pointer, version("2", "production")) == "production"
    assert stage_of(pointer, version("1", "production")) == "candidate"  # demoted by the pointer moving
    assert stage_of(pointer, version("3")) is None
    assert stage_of({PRODUCTION_KEY: ""}, version("1", "production")) == "candidate"
    assert stage_of({}, version("1", "production")) == "production"  # old data: as stored


def test_the_run_notebooks_summary_masks_credentials(tmp_path, monkeypatch):
    import json

    import nbformat
    import run_notebooks as tutorial  # setup/run_notebooks.py

    folder = tmp_path / "notebooks"
    folder.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell('raise FileNotFoundError("s3://AKIAKEY:TOPSECRET@minio/b/m")')]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "creds.ipynb")
    monkeypatch.setattr(tutorial, "notebooks_dir", lambda: folder)
    [result] = tutorial.run_notebooks(tmp_path / "out", names=["creds"], quiet=True)
    summary = (tmp_path / "out" / "summary.json").read_text()
    assert result.status == "failed" and "s3://***@minio/b/m" in result.error
    assert "TOPSECRET" not in summary and json.loads(summary)[0]["error"] == result.error
