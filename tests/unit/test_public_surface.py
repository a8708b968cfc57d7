"""``import mrhelpers as mh`` keeps every name the notebooks, the README and docs/ use (``mh.<name>``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mrhelpers as mh

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _used() -> set[str]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    texts = [p.read_text() for p in [*sorted((ROOT / "notebooks").glob("*.ipynb")), *docs]]
    return {m for t in texts for m in re.findall(r"\bmh\.([A-Za-z_][\w.]*)", t)}


def test_every_name_the_notebooks_and_docs_use_is_there():
    used = _used()
    assert {"connect", "register_version", "runs.summarize", "archive_model"} <= {u.rstrip(".") for u in used}
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


def test_importing_mrhelpers_has_no_side_effects(tmp_path):
    """No heavy dependency loaded, no file written (not even the state folder), no setting read into a module."""
    import os
    import subprocess
    import sys

    heavy = "{'kfp', 'kubernetes', 'pandas', 'model_registry', 'matplotlib'}"
    code = f"import sys, mrhelpers; print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy}))"
    env = {**os.environ, "HOME": str(tmp_path), "MRH_STATE_DIR": str(tmp_path / "state")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []


def test_the_warning_and_the_http_error_a_caller_can_get_are_public():
    from mrhelpers.core.errors import LineageWarning
    from mrhelpers.core.rest import RegistryHttpError

    assert mh.LineageWarning is LineageWarning and issubclass(mh.LineageWarning, UserWarning)
    assert mh.RegistryHttpError is RegistryHttpError and issubclass(mh.RegistryHttpError, mh.MRHelpersError)
    assert {"LineageWarning", "RegistryHttpError"} <= set(mh.__all__)
