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


def test_report_pages_are_titled_linked_and_offline(tmp_path):
    from mrhelpers.report import REMOTE, build_report

    names = ["02_component_authoring", "03_compile_pipeline", "04_submit_run"]
    summary = [{"notebook": n, "output": str(notebooks_dir() / f"{n}.ipynb"), "status": "ok", "seconds": 1.0}
               for n in names]  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    index = build_report(tmp_path, tmp_path / "site").read_text()
    page = (tmp_path / "site" / "03_compile_pipeline.html").read_text()
    title = re.search(r"^# (.+)$", cells("03_compile_pipeline")[0][1], flags=re.M).group(1)
    assert f"<title>{title}</title>" in page
    assert 'href="index.html"' in page and 'href="02_component_authoring.html"' in page
    assert 'href="04_submit_run.html"' in page
    for html_page in (tmp_path / "site").glob("*.html"):
        text = html_page.read_text()
        assert not REMOTE.search(text)
        assert not re.search(r"<(?:script|link)[^>]*\b(?:src|href)=[\"']https?://|import\(\s*[\"']https?://", text)
    assert "What the tutorial registered" in index and "<li>" in index
