"""Values a notebook records for tests and for later notebooks to read back.

``record(name, value)`` displays the value under a private MIME type, so it is
stored in the executed notebook's outputs (invisible in JupyterLab);
``read_records(path)`` reads them back from an executed ``.ipynb``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MIME = "application/vnd.mrhelpers.record+json"


def record(name: str, value: Any) -> None:
    """Store ``value`` (JSON-serialisable) under ``name`` in the running notebook's outputs."""
    from IPython.display import display

    json.dumps(value)  # fail here, in the cell, when it cannot be stored
    display({MIME: {"name": name, "value": value}}, raw=True)


def read_records(path: str | Path) -> dict[str, Any]:
    """All values recorded in an executed notebook, by name (the last one wins)."""
    nb = json.loads(Path(path).read_text())
    out: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(MIME)
            if data is not None:
                out[data["name"]] = data["value"]
    return out
