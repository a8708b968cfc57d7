"""The closing summary of ``run-notebooks`` shows the tutorial's own models, bounded in size (issue 24)."""

import uuid

from run_notebooks import SUMMARY_ROWS, SUMMARY_WIDTH, TUTORIAL_MODELS, registered_table  # setup/run_notebooks.py

from mrhelpers import connect, register_version

FMT = dict(model_format_name="onnx", model_format_version="1")


def test_the_summary_shows_the_tutorials_newest_versions_with_short_values(stack):
    registry = connect(stack)
    other = f"not-the-tutorial-{uuid.uuid4().hex[:6]}"
    register_version(registry, other, "v1", "s3://b/other", **FMT)
    name = TUTORIAL_MODELS[0]
    tag = uuid.uuid4().hex[:6]
    register_version(registry, name, f"long-{tag}", "s3://bucket/" + "x" * 65_000, **FMT)  # the URI column's limit
    for v in range(SUMMARY_ROWS):
        register_version(registry, name, f"w{v}-{tag}", f"s3://b/{v}", **FMT)
    register_version(registry, name, f"last-{tag}", "s3://bucket/" + "y" * 65_000, **FMT)

    lines = registered_table(stack).splitlines()
    shown = lines[1:-1]
    assert not [line for line in lines if other in line]
    assert len(shown) == SUMMARY_ROWS and f"last-{tag}" in shown[-1] and not [s for s in shown if f"long-{tag}" in s]
    assert "yyy..." in shown[-1] and "older versions not shown" in lines[-1]
    assert max(map(len, lines)) < 7 * (SUMMARY_WIDTH + 2)
