"""``import mrhelpers as mh`` keeps every name the notebooks and the README use (``mh.<name>``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mrhelpers as mh

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _used() -> set[str]:
    texts = [p.read_text() for p in sorted((ROOT / "notebooks").glob("*.ipynb"))] + [(ROOT / "README.md").read_text()]
    return {m for t in texts for m in re.findall(r"\bmh\.([A-Za-z_][\w.]*)", t)}


def test_every_name_the_notebooks_and_readme_use_is_there():
    used = _used()
    assert {"connect", "register_version", "runs.kfp_local_log", "backends.start"} <= {u.rstrip(".") for u in used}
    missing = []
    for dotted in sorted(used):
        obj = mh
        for part in dotted.rstrip(".").split("."):
            if not hasattr(obj, part):
                missing.append(dotted)
                break
            obj = getattr(obj, part)
            if not isinstance(obj, type(mh)):  # stop at the first non-module (a function, a class, a method)
                break
    assert missing == []


def test_the_design_paths_stay_importable():
    from mrhelpers.components import register_model
    from mrhelpers.pipelines import model_registration_pipeline

    assert hasattr(register_model, "component_spec") and hasattr(model_registration_pipeline, "pipeline_spec")
    assert mh.components is __import__("mrhelpers.authoring.components", fromlist=["x"])


def test_importing_mrhelpers_loads_no_heavy_dependency():
    import subprocess
    import sys

    heavy = "{'kfp', 'kubernetes', 'pandas', 'model_registry', 'matplotlib'}"
    code = f"import sys, mrhelpers; print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
