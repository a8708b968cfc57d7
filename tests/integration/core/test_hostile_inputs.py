"""Hostile names, URIs and metadata: each is refused clearly or stored and read back exactly."""

import uuid

import pytest

from mrhelpers import InvalidInput, Lineage, connect, models_frame, register_version, versions_frame
from mrhelpers.core.registry import MAX_KEY, MAX_NAME, MAX_VALUE_BYTES

FMT = dict(model_format_name="f", model_format_version="1")
LINEAGE = Lineage.for_kfp_run("hostile-run", "hostile", "ns")

STORED = {
    "path separators": ("team/a/../b", "v/1\\2"),
    "quotes": ('it\'s "quoted"', "v'1\""),
    "sql fragment": ("x'; DROP TABLE Context; --", "1 OR 1=1"),
    "like wildcards": ("%_any%", "v%_"),
    "unicode": ("モデル-ñ-🚀", "版本-1"),
    "longest allowed": ("n" * (MAX_NAME - 9), "v" * MAX_NAME),
}


@pytest.fixture(scope="module")
def registry(stack):
    return connect(stack)


@pytest.mark.parametrize("case", list(STORED))
def test_odd_names_are_stored_and_read_back_exactly(registry, case):
    base, version = STORED[case]
    name = f"{base}-{uuid.uuid4().hex[:8]}"
    res = register_version(registry, name, version, "s3://b/m", lineage=LINEAGE, **FMT)
    assert registry.get_registered_model(name).name == name
    frame = versions_frame(registry, name)
    assert list(frame.version) == [version] and frame.iloc[0].version_id == res.version_id
    assert register_version(registry, name, version, "s3://b/m", lineage=LINEAGE, **FMT).created is False


@pytest.mark.parametrize(
    ("name", "version"),
    [("x" * 1000, "v1"), ("m", "v" * 1000), ("", "v1"), ("   ", "v1"), ("m", "\t"), ("new\nline", "v1")],
)
def test_unusable_names_are_refused_and_write_nothing(registry, name, version):
    before = len(models_frame(registry))
    with pytest.raises(InvalidInput, match="Allowed"):
        register_version(registry, name, version, "s3://b/m", lineage=LINEAGE, **FMT)
    assert len(models_frame(registry)) == before


@pytest.mark.parametrize("uri", ["ftp://host/model.bin", "s3://b/m?versionId=3#part", "hf://org/model", "oci://r/m:1"])
def test_odd_but_valid_uris_are_stored_exactly(registry, uri):
    name = f"uri-{uuid.uuid4().hex[:8]}"
    register_version(registry, name, "v1", uri, **FMT)
    assert versions_frame(registry, name).iloc[0].uri == uri


@pytest.mark.parametrize("uri", ["javascript:alert(1)", "file:relative", "model.pkl", "s3://", " s3://b/m"])
def test_unusable_uris_are_refused(registry, uri):
    with pytest.raises(InvalidInput, match="uri"):
        register_version(registry, f"uri-{uuid.uuid4().hex[:8]}", "v1", uri, **FMT)


def test_huge_metadata_is_stored_exactly_up_to_the_limit(registry):
    name = f"big-{uuid.uuid4().hex[:8]}"
    blob = "é" * (MAX_VALUE_BYTES // 2)  # exactly the limit in UTF-8 bytes
    key = "k" * MAX_KEY
    register_version(
        registry,
        name,
        "v1",
        "s3://b/m",
        metadata={"blob": blob, key: 1, "big_int": 999_999_999, "neg": -999_999_999},
        **FMT,
    )
    meta = versions_frame(registry, name).iloc[0].metadata
    assert meta["blob"] == blob and meta[key] == 1 and meta["big_int"] == 999_999_999 and meta["neg"] == -999_999_999
    before = len(models_frame(registry))
    with pytest.raises(InvalidInput, match="bytes"):
        register_version(
            registry, f"big-{uuid.uuid4().hex[:8]}", "v1", "s3://b/m", metadata={"blob": blob + "x"}, **FMT
        )
    with pytest.raises(InvalidInput, match="9 digits|999_999_999"):
        register_version(registry, f"big-{uuid.uuid4().hex[:8]}", "v1", "s3://b/m", metadata={"n": 10**9}, **FMT)
    with pytest.raises(InvalidInput, match=f"at most {MAX_KEY}"):
        register_version(registry, f"big-{uuid.uuid4().hex[:8]}", "v1", "s3://b/m", metadata={key + "k": 1}, **FMT)
    assert len(models_frame(registry)) == before
