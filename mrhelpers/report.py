"""A small static site of an executed tutorial: an index with each step's status and duration,
and every notebook as an HTML page with its tables and figures (images embedded)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from mrhelpers.errors import InvalidInput
from mrhelpers.records import MIME

_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.4rem .7rem;text-align:left}
.ok{color:#1b5e20}.failed{color:#b71c1c;font-weight:bold}"""


def build_report(executed: str | Path, output: str | Path) -> Path:
    """Render the executed notebooks in ``executed`` (with its ``summary.json``) into ``output``.

    Args:
        executed: The folder :func:`mrhelpers.tutorial.run_notebooks` wrote.
        output: Where the site goes (created); ``index.html`` plus one page per notebook.

    Returns:
        The path of ``index.html``.

    Raises:
        InvalidInput: When ``executed`` has no ``summary.json`` (run the notebooks first).
    """
    import nbformat
    from nbconvert import HTMLExporter

    executed, output = Path(executed), Path(output)
    summary_path = executed / "summary.json"
    if not summary_path.is_file():
        raise InvalidInput("executed", str(executed), "a folder written by run-notebooks (it has summary.json)")
    summary: list[dict[str, Any]] = json.loads(summary_path.read_text())
    output.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    rows = []
    for step in summary:
        source = Path(step["output"])
        page = f"{step['notebook']}.html"
        if source.is_file():
            nb = nbformat.read(source, as_version=4)
            for cell in nb.cells:  # recorded values are for tests, not for readers
                if "outputs" in cell:
                    cell.outputs = [o for o in cell.outputs if MIME not in o.get("data", {})]
            body, _ = exporter.from_notebook_node(nb)
            (output / page).write_text(body)
            link = f'<a href="{html.escape(page)}">{html.escape(step["notebook"])}</a>'
        else:
            link = html.escape(step["notebook"])
        error = f"<br><small>{html.escape(step['error'])}</small>" if step.get("error") else ""
        rows.append(
            f"<tr><td>{link}</td><td class='{html.escape(step['status'])}'>{html.escape(step['status'])}{error}</td>"
            f"<td>{step['seconds']:.1f} s</td></tr>"
        )
    total = sum(s["seconds"] for s in summary)
    failed = sum(s["status"] != "ok" for s in summary)
    index = output / "index.html"
    index.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Model Registry tutorial: run report</title>"
        f"<style>{_STYLE}</style></head><body><h1>Model Registry tutorial: run report</h1>"
        f"<p>{len(summary)} notebooks, {failed} failed, {total:.1f} s in all.</p>"
        f"<table><thead><tr><th>step</th><th>status</th><th>duration</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>"
    )
    return index
