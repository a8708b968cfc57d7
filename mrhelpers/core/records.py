"""Values a notebook records, stored under a private MIME type in its outputs (unseen in JupyterLab)."""

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
