"""Tutorial tooling: the notebook runner (:mod:`.runner`), the report (:mod:`.report`), cleanup (:mod:`.cleanup`).

The CLI (``python -m mrhelpers``) sits beside them in ``mrhelpers/__main__.py``.
"""

from __future__ import annotations

from mrhelpers.tutorial.cleanup import TUTORIAL_MODELS, cleanup
from mrhelpers.tutorial.runner import (
    CLEANUP,
    TUTORIAL,
    NotebookResult,
    notebook_parameters,
    notebooks_dir,
    pick_notebooks,
    run_notebooks,
)

__all__ = [
    "CLEANUP", "TUTORIAL", "TUTORIAL_MODELS", "NotebookResult", "cleanup", "notebook_parameters", "notebooks_dir",
    "pick_notebooks", "run_notebooks",
]  # fmt: skip
