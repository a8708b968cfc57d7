"""Issue 23's pure rules: keys compared as the database compares them, text that prints alike, masking in
errors, a registry URL with a path, the ceiling of a request."""

import pickle
import types
import unicodedata

import pytest

from mrhelpers import InvalidInput, Settings, connect, find_versions, register_version
from mrhelpers.backends.local import LocalBackend
from mrhelpers.core import rest
from mrhelpers.core.errors import RegistryUnavailable, mask_credentials
from mrhelpers.core.lifecycle import stage_of
from mrhelpers.core.registry import PRODUCTION_KEY, STAGE_KEY, copied_fields, folds, normalize_metadata, normalize_uri
from tests.unit.core.test_registration_inputs import GOOD, LINEAGE, Untouchable

NFD_E = unicodedata.normalize("NFD", "é")


@pytest.mark.parametrize(
    ("a", "b"),
    [("café", "cafe"), ("😀", "😁"), ("resume", "résumé"), ("AUC", "auc"), ("ß", "s"), ("Straße", "STRASSE")],
)
def test_keys_a_case_and_accent_insensitive_database_merges_are_refused(a, b):
    assert folds(a) & folds(b)
    with pytest.raises(InvalidInput, match="utf8mb4_general_ci") as info:
        normalize_metadata({a: 1, b: 2})
    assert info.value.field == "metadata key" and info.value.value == b


@pytest.mark.parametrize(("a", "b"), [("a", "b"), ("ø", "o"), ("v1", "v1-2"), ("😀", "x")])
def test_keys_that_differ_to_the_database_are_kept(a, b):
    assert normalize_metadata({a: 1, b: 2}) == {a: 1, b: 2}


HIDDEN = ["\u200e", "\u200f", "\u061c", "\u2028", "\u2029", "\u200b", "\ufeff", "\u00ad", "\u202e", "\u2066"]


@pytest.mark.parametrize("char", HIDDEN, ids=[f"U+{ord(c):04X}" for c in HIDDEN])
@pytest.mark.parametrize("field", ["name", "version", "metadata key"])
def test_invisible_and_direction_characters_are_refused_in_names_and_keys(char, field):
    value = f"lrm{char}model"
    args = {**GOOD, "lineage": LINEAGE}
    if field == "metadata key":
        args["metadata"] = {value: 1}
    else:
        args[field] = value
    with pytest.raises(InvalidInput, match=f"U\\+{ord(char):04X}") as info:
        register_version(Untouchable(), args.pop("name"), args.pop("version"), args.pop("uri"), **args)
    assert info.value.field == field


@pytest.mark.parametrize("field", ["name", "version", "metadata key"])
def test_names_and_keys_not_in_nfc_are_refused_not_changed(field):
    value = f"caf{NFD_E}"
    assert value != "café" and unicodedata.normalize("NFC", value) == "café"
    args = {**GOOD, "lineage": LINEAGE}
    if field == "metadata key":
        args["metadata"] = {value: 1}
    else:
        args[field] = value
    with pytest.raises(InvalidInput, match="NFC") as info:
        register_version(Untouchable(), args.pop("name"), args.pop("version"), args.pop("uri"), **args)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("s3://AKIAKEY:wJalr/K7MDENG/bPxRfi@minio:9000/b/m", "s3://***@minio:9000/b/m"),  # a "/" in the secret
        ("s3://bucket/model@v1", "s3://bucket/model@v1"),
        ("s3://***@h/m", "s3://***@h/m"),
    ],
)
def test_mask_credentials_with_a_slash_in_the_secret(text, shown):
    assert mask_credentials(text) == shown


@pytest.mark.parametrize("uri", ["s3://KEY:Secret@h/x ", "s3://KEY:Secret@h/x\n", "s3://KEY:Se/cret@h/x\t"])
def test_an_error_never_repeats_a_uris_credentials(uri):
    with pytest.raises(InvalidInput) as info:
        normalize_uri(uri)
    shown = str(info.value) + repr(info.value.value) + str(pickle.loads(pickle.dumps(info.value)))
    assert "Secret" not in shown and "Se/cret" not in shown and "***@h/x" in shown
    assert "Secret" not in str(RegistryUnavailable(f"Model Registry at {uri.strip()} is not reachable"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/api/model_registry/v1alpha3",
        "http://127.0.0.1:8080/typo",
        "http://127.0.0.1:8080?x=1",
        "http://127.0.0.1:8080/#frag",
    ],
)
def test_a_registry_url_with_a_path_or_query_is_refused_before_any_request(url):
    with pytest.raises(InvalidInput, match=r"http://127\.0\.0\.1:8080\)") as info:
        connect(Settings(registry_url=url), retries=1)
    assert info.value.field == "registry_url"


def test_each_attempt_gets_at_most_what_is_left_and_no_attempt_starts_after_the_deadline(monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr(rest.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(rest.time, "sleep", lambda s: clock.__setitem__("now", clock["now"] + s))
    attempts = []

    def hang():  # a server that accepts and never answers: each attempt times out after what it was given
        attempts.append(clock["now"])
        clock["now"] += rest.TIMEOUT[1]
        raise TimeoutError("read timed out")

    with pytest.raises(RegistryUnavailable, match="gave up after 1 attempt"):
        rest.with_retries(hang, "http://h:1", "hint", "secret", retries=5, backoff=0.5)
    assert attempts == [0.0] and clock["now"] <= rest.MAX_WAIT_S


def _version(vid, stage=None, state="LIVE", created=1, updated=1, copy=None):
    props = {STAGE_KEY: stage} if stage else {}
    if copy is not None:
        props["mrh_artifact"] = copy
    return types.SimpleNamespace(
        id=vid, state=state, custom_properties=props, create_time_since_epoch=created,
        last_update_time_since_epoch=updated,
    )  # fmt: skip


def test_production_needs_the_pointer_the_versions_own_stage_and_a_live_state():
    pointer = {PRODUCTION_KEY: "2"}
    assert stage_of(pointer, _version("2", "production")) == "production"
    assert stage_of(pointer, _version("2", "candidate")) == "candidate"  # demoted: the pointer is not enough
    assert stage_of(pointer, _version("2", "production", "ARCHIVED")) == "candidate"  # never an archived one
    assert stage_of({}, _version("1", "production", "ARCHIVED")) == "candidate"  # old data too


def test_a_copy_on_a_version_changed_after_its_creation_is_not_trusted():
    copy = '{"format":"f","format_version":"1","source_class":null,"source_group":null,"source_id":null,' + (
        '"source_kind":null,"source_name":null,"uri":"s3://b/m"}'
    )
    assert copied_fields(_version("1", copy=copy))["uri"] == "s3://b/m"
    assert copied_fields(_version("1", copy=copy, updated=2)) is None  # the artifact is read instead


@pytest.mark.parametrize("run_id", [78263601, None, "", b"78263601"])
def test_find_versions_refuses_a_run_id_that_is_not_a_string_before_any_request(run_id):
    """kfp.local's run ids are digits: an int would match nothing and say so with an empty table."""
    with pytest.raises(InvalidInput, match="non-empty string") as info:
        find_versions(Untouchable(), run_id=run_id)
    assert info.value.field == "run_id"


def test_the_local_backend_dates_a_run_by_the_name_kfp_local_gives_it(tmp_path):
    import time

    from kfp.local.executor_input_utils import get_local_pipeline_resource_name

    settings = Settings(state_dir=tmp_path)  # no run history there
    before = time.time()
    name = get_local_pipeline_resource_name("my-pipeline")  # kfp.local's own naming, at this moment
    started = LocalBackend().run_started(settings, "12345678", name)
    assert before - 2.01 <= started / 1000 <= time.time() - 2 + 0.01  # its start, less 2 s for clocks
    assert LocalBackend().run_started(settings, "12345678") is None  # no name, no history: unknown
    for undated in ("my-pipeline-2026-13-45-99-99-99-000000", "my-pipeline", f"{name}-retry", ""):
        assert LocalBackend().run_started(settings, "12345678", undated) is None, undated
