"""Every tutorial notebook keeps the shape STYLE.md asks for; a notebook that drifts fails here."""

import json
import re

import pytest
from run_notebooks import CLEANUP, TUTORIAL, notebooks_dir  # setup/run_notebooks.py


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
    for i, (kind, src, tags) in enumerate(cs[2:], start=2):
        if kind != "code" or "record" in tags:  # the hidden recording cell is not for reading
            continue
        assert cs[i - 1][0] == "markdown", f"{name}: code cell {i} has no text before it"
        assert len(src.splitlines()) <= 20, f"{name}: code cell {i} is longer than 20 lines"
        assert not re.search(r"getenv\(\s*['\"]CI|environ.*['\"]CI['\"]", src), f"{name}: a test-only branch"


def test_report_pages_are_titled_linked_and_offline(tmp_path):
    from report import REMOTE, build_report

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
    collapsed = re.findall(r"<details><summary[^>]*>Show the answer</summary>", page)
    assert len(collapsed) == 1  # the exercise's answer, closed until clicked
    assert "mh.record(" not in page  # the recording cell is not part of the page


@pytest.mark.parametrize("name", [*TUTORIAL, CLEANUP])
def test_no_plumbing_in_teaching_cells(name):
    """Values for tests and the report are recorded only by one hidden cell tagged "record", the last one."""
    nb = json.loads((notebooks_dir() / f"{name}.ipynb").read_text())
    recording = [i for i, c in enumerate(nb["cells"]) if "mh.record(" in "".join(c["source"])]
    tagged = [i for i, c in enumerate(nb["cells"]) if "record" in c.get("metadata", {}).get("tags", [])]
    assert recording == tagged == [len(nb["cells"]) - 1], f"{name}: mh.record outside the last cell tagged record"
    assert nb["cells"][-1]["metadata"].get("jupyter", {}).get("source_hidden") is True


@pytest.mark.parametrize("name", TUTORIAL)
def test_packaged_components_show_their_source_where_first_used(name):
    sources = code_cells(name)
    imported = set()
    for src in sources:
        for m in re.finditer(r"from mrhelpers\.components import \(?([\w\s,]+)\)?", src):
            imported |= {n.strip() for n in m.group(1).split(",") if n.strip()}
    for component in imported:
        first_call = next(i for i, src in enumerate(sources) if re.search(rf"(?<![.\w]){component}\b", src))
        shown = [i for i, src in enumerate(sources) if "getsource" in src and re.search(rf"\b{component}\b", src)]
        assert shown and shown[0] <= first_call, f"{name}: {component} is used before its source is shown"


def test_the_reader_thread_is_wired_through_the_defaults():
    """02 saves the reader's component where 03 loads it; 04 runs the file 03 compiles."""
    import papermill

    params = {n: papermill.inspect_notebook(str(notebooks_dir() / f"{n}.ipynb")) for n in TUTORIAL[2:5]}
    saved, loaded = params["02_component_authoring"], params["03_compile_pipeline"]
    assert saved["component_path"]["default"] == loaded["component_path"]["default"]
    assert loaded["package_path"]["default"] == params["04_submit_run"]["package_path"]["default"]
    assert any("compiler.Compiler().compile(register_from_scratch" in s for s in code_cells("02_component_authoring"))
    assert any("load_component_from_file(component_path)" in s for s in code_cells("03_compile_pipeline"))
    compiled = "compiler.Compiler().compile(my_registration, package_path)"
    assert any(compiled in s for s in code_cells("03_compile_pipeline"))
    assert any("load_component_from_file(package_path)" in s for s in code_cells("04_submit_run"))


# Issue 11's table: each call a reader writes must run in a code cell of the executed tutorial.
READER_CALLS = {
    "@dsl.pipeline": r"@dsl\.pipeline\(",
    "compiler.Compiler().compile(": r"compiler\.Compiler\(\)\.compile\(",
    "local.init(": r"\blocal\.init\(",
    "kubernetes.use_secret_as_env(": r"(?<!kfp\.)kubernetes\.use_secret_as_env\(",
    "kubernetes.use_field_path_as_env(": r"kubernetes\.use_field_path_as_env\(",
    "create_run_from_pipeline_package(": r"\.create_run_from_pipeline_package\(",
    "register_model( with the client": r"registry\.register_model\(",
    "get_registered_model(": r"\.get_registered_model\(",
    "get_model_version(": r"\.get_model_version\(",
    "get_model_artifact(": r"\.get_model_artifact\(",
    "dsl.If(": r"\bdsl\.If\(",
    "kubeflow.hub.ModelRegistryClient": r"from kubeflow\.hub import ModelRegistryClient",
}


def code_cells(name):
    return [src for kind, src, tags in cells(name) if kind == "code" and "parameters" not in tags]


@pytest.mark.parametrize("call", READER_CALLS)
def test_each_reader_call_runs_in_a_code_cell(call):
    where = {n: sum(len(re.findall(READER_CALLS[call], src)) for src in code_cells(n)) for n in TUTORIAL}
    assert sum(where.values()) >= 1, f"{call} appears in no code cell of the tutorial"


def test_reader_calls_sit_where_the_issue_put_them():
    def has(name, pattern):
        return any(re.search(pattern, src) for src in code_cells(name))

    assert has("02_component_authoring", r"registry\.register_model\(") and has(
        "02_component_authoring", r"local\.init\("
    )
    assert has("03_compile_pipeline", r"@dsl\.pipeline") and has(
        "03_compile_pipeline", r"compiler\.Compiler\(\)\.compile\("
    )
    assert has("03_compile_pipeline", r"kubernetes\.use_secret_as_env\(")
    assert has("04_submit_run", r"local\.init\(") and has("04_submit_run", r"create_run_from_pipeline_package\(")
    for call in (r"get_registered_model\(", r"get_model_version\(", r"get_model_artifact\(", r"ModelRegistryClient\("):
        assert has("05_inspect_registry", call), call
    assert has("06_train_gate_promote", r"@dsl\.pipeline") and has("06_train_gate_promote", r"dsl\.If\(")


@pytest.mark.parametrize("name", [*TUTORIAL, CLEANUP])
def test_exercise_with_a_hidden_answer(name):
    nb = json.loads((notebooks_dir() / f"{name}.ipynb").read_text())
    titles = [c for c in nb["cells"] if c["cell_type"] == "markdown" and "## Exercise" in "".join(c["source"])]
    hidden = [c for c in nb["cells"] if c.get("metadata", {}).get("jupyter", {}).get("source_hidden")
              and "record" not in c["metadata"].get("tags", [])]  # fmt: skip
    assert len(titles) == 1 and len(hidden) == 1, f"{name}: one exercise, one hidden answer"
    at = nb["cells"].index(hidden[0])
    assert nb["cells"][at - 1] is titles[0], f"{name}: the answer follows the exercise"


@pytest.mark.parametrize("name", [*TUTORIAL, CLEANUP])
def test_versions_links_and_callouts(name):
    markdown = "\n".join(src for kind, src, _ in cells(name) if kind == "markdown")
    assert "**Versions tested:**" in markdown and "model-registry client 0.3.14" in markdown
    assert re.search(r"https://(www\.kubeflow\.org|kubeflow-pipelines|kfp-kubernetes|pypi|kserve|github)", markdown)
    if name != CLEANUP:
        assert "You should see" in markdown or "you should see" in markdown
        assert "blog.kubeflow.org" in markdown


def test_architecture_figure_is_drawn_in_00():
    sources = code_cells("00_cluster_setup")
    assert any("matplotlib" in s and "annotate" in s for s in sources)


def test_notebook_06_teaches_the_stage_convention_and_a_real_gate():
    markdown = "\n".join(src for kind, src, _ in cells("06_train_gate_promote") if kind == "markdown")
    assert "mrhelpers convention" in markdown and "custom property" in markdown and "aliases" in markdown
    code = "\n".join(code_cells("06_train_gate_promote"))
    assert "threshold=1.01" in code and "axhline(threshold" in code and "set_ylim(0" in code


def test_notebook_02_has_the_pitfalls_checklist():
    src = "\n".join(s for _, s, _ in cells("02_component_authoring"))
    for n in range(1, 10):
        assert re.search(rf'print\(f?"{n} (error|check|caught)', src), f"pitfall {n} has no cell"
        assert re.search(rf'print\(f?"{n} fix', src), f"pitfall {n} has no fix line"


def test_output_policy():
    """Committed notebooks carry outputs only in cells marked # NBVAL_CHECK_OUTPUT (make notebook-outputs)."""
    for name in [*TUTORIAL, CLEANUP]:
        nb = json.loads((notebooks_dir() / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and "# NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]):
                assert cell["outputs"] == [] and cell["execution_count"] is None, name
