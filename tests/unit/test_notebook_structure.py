"""Every tutorial notebook keeps the shape STYLE.md asks for; a notebook that drifts fails here."""

import json
import re

import pytest

from mrhelpers.tutorial import CLEANUP, TUTORIAL, notebooks_dir


def cells(name):
    nb = json.loads((notebooks_dir() / f"{name}.ipynb").read_text())
    return [(c["cell_type"], "".join(c["source"]), c.get("metadata", {}).get("tags", [])) for c in nb["cells"]]


@pytest.mark.parametrize("name", [*TUTORIAL, CLEANUP])
def test_sections(name):
    cs = cells(name)
    markdown = "\n".join(src for kind, src, _ in cs if kind == "markdown")
    headings = re.findall(r"^(#{1,3}) (.+)$", markdown, flags=re.M)
    assert [h for h in headings if h[0] == "#"] == [headings[0]], "exactly one H1, first"
    titles = [t for _, t in headings]
    for required in ("Overview", "In this notebook you learn", "Prerequisites", "Troubleshooting", "Cleaning up"):
        assert required in titles, f"{name} lacks the section {required!r}"
    steps = [int(m.group(1)) for t in titles if (m := re.match(r"(\d+)\. ", t))]
    assert steps == list(range(1, len(steps) + 1)) and steps, f"{name}: steps not numbered 1..n: {steps}"
    step_at = [i for i, t in enumerate(titles) if re.match(r"\d+\. ", t)]
    assert titles.index("Prerequisites") < step_at[0] and titles.index("Troubleshooting") > step_at[-1]
    assert titles.index("Cleaning up") > titles.index("Troubleshooting")


@pytest.mark.parametrize("name", [*TUTORIAL, CLEANUP])
def test_parameters_cell_and_code_cells(name):
    cs = cells(name)
    kind, src, tags = cs[1]
    assert kind == "code" and tags == ["parameters"], f"{name}: cell 2 must be the one tagged parameters"
    assert sum("parameters" in t for _, _, t in cs) == 1
    assert re.search(r'^backend = "local"\s+#.*"local"', src, flags=re.M), (
        "backend default, and a comment with its values"
    )
    for i, (kind, src, _) in enumerate(cs[2:], start=2):
        if kind != "code":
            continue
        assert cs[i - 1][0] == "markdown", f"{name}: code cell {i} has no text before it"
        assert len(src.splitlines()) <= 20, f"{name}: code cell {i} is longer than 20 lines"
        assert not re.search(r"getenv\(\s*['\"]CI|environ.*['\"]CI['\"]", src), f"{name}: a test-only branch"
