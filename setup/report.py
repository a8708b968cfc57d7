"""A small static site of an executed tutorial: an index with each step's status, duration and what it
teaches, what the tutorial registered, and every notebook as an HTML page with its tables and figures
(images embedded). Each page is titled with its notebook's H1 and links to the index and its neighbours.
Nothing on any page loads from the network: nbconvert's CDN scripts (require.js, MathJax, mermaid) are
dropped, as the notebooks need none of them."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from mrhelpers.core.errors import InvalidInput
from mrhelpers.core.records import MIME

_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.4rem .7rem;text-align:left;vertical-align:top}
.ok{color:#1b5e20}.failed{color:#b71c1c;font-weight:bold}ul{margin:0;padding-left:1.1rem}"""
_NAV_STYLE = "font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:.5rem 1rem;"
REMOTE = re.compile(
    r"<script[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>"  # require.js, MathJax
    r"|<link[^>]*\bhref=[\"']https?://[^>]*>"
    r"|<script[^>]*>(?:(?!</script>).)*?import\(\s*[\"']https?://(?:(?!</script>).)*</script>",  # mermaid
    flags=re.S,
)
"""Script and style tags that would load from the network."""


def notebook_title(nb: Any, fallback: str) -> str:
    """The notebook's H1 (its first ``# `` line), or ``fallback``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (m := re.search(r"^# (.+)$", cell.source, flags=re.M)):
            return m.group(1).strip()
    return fallback


def notebook_teaches(nb: Any) -> list[str]:
    """The bullets of the notebook's "In this notebook you learn" section."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "In this notebook you learn" in cell.source:
            part = cell.source.split("In this notebook you learn", 1)[1]
            bullets = []
            for line in part.splitlines()[1:]:
                if line.startswith("#"):
                    break
                if line.startswith("- "):
                    bullets.append(line[2:].strip())
                elif bullets and line.startswith("  "):
                    bullets[-1] += " " + line.strip()
            return bullets
    return []


def _inline(text: str) -> str:
    """Escape, then render `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _nav(pages: list[tuple[str, str]], i: int) -> str:
    links = ['<a href="index.html">index</a>']
    if i > 0:
        links.append(f'previous: <a href="{pages[i - 1][0]}">{html.escape(pages[i - 1][1])}</a>')
    if i + 1 < len(pages):
        links.append(f'next: <a href="{pages[i + 1][0]}">{html.escape(pages[i + 1][1])}</a>')
    return f'<nav class="mrh-nav" style="{_NAV_STYLE}">' + " · ".join(links) + "</nav>"


def collapse(body: str, cell_id: str, summary: str = "Show the answer") -> str:
    """``body`` with the cell ``cell_id`` (its whole ``<div>``) inside a closed ``<details>``."""
    at = body.find(f'id="{html.escape("cell-id=" + cell_id)}"')
    start = body.rfind("<div", 0, at)
    if at < 0 or start < 0:
        return body
    depth = 0
    for m in re.finditer(r"<div\b|</div>", body[start:]):
        depth += 1 if m.group() != "</div>" else -1
        if depth == 0:
            end = start + m.end()
            summary_tag = f"<summary style='font-family:system-ui,sans-serif;cursor:pointer'>{summary}</summary>"
            return f"{body[:start]}<details>{summary_tag}{body[start:end]}</details>{body[end:]}"
    return body


def offline(body: str) -> str:
    """``body`` without the tags that load scripts or styles from the network."""
    return REMOTE.sub("", body)


def build_report(executed: str | Path, output: str | Path) -> Path:
    """Render the executed notebooks in ``executed`` (with its ``summary.json``) into ``output``.

    Args:
        executed: The folder :func:`run_notebooks.run_notebooks` wrote.
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
    notebooks = {}
    for step in summary:
        source = Path(step["output"])
        if source.is_file():
            notebooks[step["notebook"]] = nbformat.read(source, as_version=4)
    pages = [(f"{n}.html", notebook_title(nb, n)) for n, nb in notebooks.items()]
    rows, registered = [], []
    for step in summary:
        name, nb = step["notebook"], notebooks.get(step["notebook"])
        teaches = ""
        if nb is not None:
            i = list(notebooks).index(name)
            for cell in nb.cells:  # recorded values are for tests, not for readers
                if "outputs" in cell:
                    for o in cell.outputs:
                        rec = o.get("data", {}).get(MIME)
                        if rec and rec["name"] == "registered":
                            registered += [{**r, "notebook": name} for r in rec["value"]]
                    cell.outputs = [o for o in cell.outputs if MIME not in o.get("data", {})]
            nb.cells = [c for c in nb.cells if "record" not in c.metadata.get("tags", [])]
            answers = [c.id for c in nb.cells if c.metadata.get("jupyter", {}).get("source_hidden")]
            nb.metadata["title"] = pages[i][1]
            body, _ = exporter.from_notebook_node(nb)
            for cell_id in answers:  # exercise answers open on a click
                body = collapse(body, cell_id)
            body = offline(body)
            body = re.sub(
                r"<title>.*?</title>", f"<title>{html.escape(pages[i][1])}</title>", body, count=1, flags=re.S
            )
            nav = _nav(pages, i)
            body = re.sub(r"(<body[^>]*>)", lambda m, nav=nav: m.group(1) + nav, body, count=1)
            body = body.replace("</body>", nav + "</body>", 1)
            (output / pages[i][0]).write_text(body)
            link = f'<a href="{html.escape(pages[i][0])}">{html.escape(name)}</a>'
            items = "".join(f"<li>{_inline(t)}</li>" for t in notebook_teaches(nb))
            teaches = f"<b>{html.escape(pages[i][1])}</b><ul>{items}</ul>"
        else:
            link = html.escape(name)
        error = f"<br><small>{html.escape(step['error'])}</small>" if step.get("error") else ""
        rows.append(
            f"<tr><td>{link}</td><td class='{html.escape(step['status'])}'>{html.escape(step['status'])}{error}</td>"
            f"<td>{step['seconds']:.1f} s</td><td>{teaches}</td></tr>"
        )
    total = sum(s["seconds"] for s in summary)
    failed = sum(s["status"] != "ok" for s in summary)
    reg_rows = "".join(
        f"<tr><td>{html.escape(str(r.get('model')))}</td><td>{html.escape(str(r.get('version')))}</td>"
        f"<td>{html.escape(str(r.get('version_id', '')))}</td><td>{html.escape(r['notebook'])}</td></tr>"
        for r in registered
    )
    reg = (
        "<h2>What the tutorial registered</h2><table class='registered'><thead><tr><th>model</th><th>version</th>"
        f"<th>version id</th><th>by</th></tr></thead><tbody>{reg_rows}</tbody></table>"
        if registered
        else "<h2>What the tutorial registered</h2><p>Nothing was recorded.</p>"
    )
    index = output / "index.html"
    index.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Model Registry tutorial: run report</title>"
        f"<style>{_STYLE}</style></head><body><h1>Model Registry tutorial: run report</h1>"
        f"<p>{len(summary)} notebooks, {failed} failed, {total:.1f} s in all.</p>"
        f"<table class='steps'><thead><tr><th>step</th><th>status</th><th>duration</th><th>what it teaches</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>{reg}</body></html>"
    )
    return index


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="setup/report.py", description="Render executed notebooks as a static site.")
    parser.add_argument("--input", default="build/notebooks", help="executed notebooks (default build/notebooks)")
    parser.add_argument("--output", default="build/report", help="site folder (default build/report)")
    args = parser.parse_args()
    print(f"Report: {build_report(args.input, args.output).resolve()}")
