"""docs/architecture.md stays true: every import between the project's modules follows an arrow of its
diagram, and the modules imported at load time form no cycle."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _edges() -> set[tuple[str, str]]:
    block = re.search(r"```mermaid\n(.*?)```", _doc(), re.S).group(1)
    edges = set()
    for line in block.splitlines():
        m = re.match(r"\s*(\w+)(?:\[[^\]]*\])?\s*-->\s*(\w+)", line)
        if m:
            edges.add((m.group(1), m.group(2)))
    return edges


def _parts() -> dict[str, str]:
    """module name (or notebook path) -> part, from the table of the doc."""
    parts = {}
    for line in _doc().splitlines():
        m = re.match(r"\|\s*(\w+)\s*\|(.*)\|\s*$", line)
        if m and m.group(1) not in ("part", "you"):
            for name in re.findall(r"`([^`]+)`", m.group(2)):
                parts[name] = m.group(1)
    return parts


def _part_of(module: str, parts: dict[str, str]) -> str | None:
    for pattern, part in parts.items():
        if "/" in pattern and fnmatch.fnmatch(module, pattern):  # notebooks/*.ipynb
            return part
    while module:
        if module in parts:
            return parts[module]
        if module + ".*" in parts:
            return parts[module + ".*"]
        module = module.rpartition(".")[0]
    return None


def _sources() -> dict[str, tuple[Path, str]]:
    """Every module of the product (dashboard.py, scoring/, views/) and each notebook: name -> (path, code)."""
    out = {"dashboard": (ROOT / "dashboard.py", (ROOT / "dashboard.py").read_text(encoding="utf-8"))}
    for package in ("scoring", "views"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts).removesuffix(".__init__")
            out[name] = (path, path.read_text(encoding="utf-8"))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
        out[f"notebooks/{path.name}"] = (path, code)
    return out


def _imports(name: str, code: str, top_level_only: bool = False) -> set[str]:
    """Project modules imported by `name` (relative imports resolved)."""
    package = name if name in ("scoring", "views") else name.rpartition(".")[0]
    found = set()
    nodes = ast.iter_child_nodes(ast.parse(code)) if top_level_only else ast.walk(ast.parse(code))
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}  # `from scoring import api` imports scoring.api
    return {m for m in found if m.split(".")[0] in ("scoring", "views", "dashboard")}


def test_the_doc_names_a_part_for_every_module():
    parts = _parts()
    missing = [name for name in _sources() if _part_of(name, parts) is None]
    assert not missing, f"docs/architecture.md gives no part for {missing}: add them to its table"


def test_every_import_follows_an_arrow_of_the_diagram():
    parts, edges, sources = _parts(), _edges(), _sources()
    known = set(sources)
    wrong = []
    for name, (path, code) in sources.items():
        source_part = _part_of(name, parts)
        for imported in _imports(name, code):
            if imported not in known:  # `from scoring.contracts import Score`: the module is scoring.contracts
                continue
            target_part = _part_of(imported, parts)
            if target_part != source_part and (source_part, target_part) not in edges:
                wrong.append(f"{name} ({source_part}) imports {imported} ({target_part})")
    assert not wrong, "imports that docs/architecture.md does not allow:\n" + "\n".join(wrong)


def test_modules_loaded_together_form_no_cycle():
    sources = {k: v for k, v in _sources().items() if not k.startswith("notebooks/")}
    graph = {name: {m for m in _imports(name, code, top_level_only=True) if m in sources and m != name}
             for name, (_, code) in sources.items()}
    for name in graph:  # a package's __init__ is loaded by each of its modules: not an edge of a cycle
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(nxt):] + [node, nxt]) if nxt in path
                            else f"import cycle through {node} -> {nxt}")
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_the_diagram_and_the_table_name_the_same_parts():
    in_diagram = {p for edge in _edges() for p in edge}
    in_table = set(_parts().values())
    assert in_diagram == in_table, (in_diagram ^ in_table)


def test_the_checker_sees_a_forbidden_import():
    """The test above would catch a view importing the engine (the checker is not blind)."""
    parts, edges = _parts(), _edges()
    imported = _imports("views.state", "from scoring.store import ClientStore\nfrom .i18n import t\n")
    assert "scoring.store" in imported and "views.i18n" in imported
    assert (_part_of("views.state", parts), _part_of("scoring.store", parts)) not in edges
