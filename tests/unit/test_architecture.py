"""The package's structure, counted from its source (issue 14's "Done when").

Walks ``mrhelpers/**/*.py`` with ``ast``: every ``import`` and ``from ... import`` (also those inside
functions), relative ones resolved; then the strongly connected components of that graph. Also counts
imports of another module's private names, comparisons with a backend's name outside
``mrhelpers/backends/``, and reads of the model-registry client's private ``_api``.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2] / "mrhelpers"


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    private = []
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges[mod] |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    if f"{target}.{alias.name}" in mods:
                        edges[mod].add(f"{target}.{alias.name}")
                    elif target in mods:
                        edges[mod].add(target)
                        if alias.name.startswith("_"):
                            private.append((mod, target, alias.name))
    return edges, private


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (or a module importing itself)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or (v in edges[v] and v != "mrhelpers"):
                found.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    edges, _ = _graph()
    assert len(edges) > 30  # the walk found the package
    assert _cycles(edges) == []


def test_no_imports_of_another_modules_private_names():
    _, private = _graph()
    assert private == []


def test_nothing_outside_backends_compares_the_backends_name():
    branches = {
        str(path.relative_to(ROOT)): len(re.findall(r"backend\s*[!=]=\s*[\"']", path.read_text()))
        for path in ROOT.rglob("*.py")
        if "backends" not in path.relative_to(ROOT).parts
    }
    assert {k: v for k, v in branches.items() if v} == {}


def test_the_cycle_count_sees_a_cycle(tmp_path):
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


PRIVATE_USE = re.compile(r"\._api\b|\bregistry\._[A-Za-z]|setattr\(\s*registry\b")


def test_no_use_of_the_clients_private_attributes():
    """Nothing read from or set on the model-registry client's private attributes (``_api``, ``_author`` ...)."""
    uses = {str(p.relative_to(ROOT)): len(PRIVATE_USE.findall(p.read_text())) for p in ROOT.rglob("*.py")}
    assert {k: v for k, v in uses.items() if v} == {}


def test_the_private_attribute_count_sees_a_use(tmp_path):
    assert len(PRIVATE_USE.findall("a = registry._api.config\nregistry._author\nsetattr(registry, 'x', 1)")) == 3
