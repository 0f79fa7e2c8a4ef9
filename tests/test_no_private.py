"""Only public APIs of libraries (docs/STYLE: a private name is a silent break on upgrade), and no Treelite."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = sorted((ROOT / "scoring").rglob("*.py"))
LIBRARIES = {"fastapi", "starlette", "pydantic", "pydantic_core", "panel", "bokeh", "param", "holoviews", "hvplot",
             "xgboost", "treelite", "uvicorn", "httpx", "duckdb", "numpy", "pandas", "shap", "psycopg",
             "fastapi_offline", "sklearn"}


def _private(name: str) -> bool:
    return any(part.startswith("_") and not (part.startswith("__") and part.endswith("__"))
               for part in name.split("."))


def private_uses(source: str) -> list[str]:
    """`from lib._x import y`, `from lib import _y`, `import lib._x`, `lib._y` and `alias._y` where `alias` names a
    library module or anything imported from one; and any import of Treelite."""
    found, library_names = [], set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root == "treelite" or (root in LIBRARIES and _private(alias.name)):
                    found.append(f"import {alias.name}")
                if root in LIBRARIES:
                    library_names.add(alias.asname or root)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            root = node.module.split(".")[0]
            if root == "treelite":
                found.append(f"from {node.module} import ...")
            if root in LIBRARIES:
                if _private(node.module):
                    found.append(f"from {node.module} import ...")
                for alias in node.names:
                    if _private(alias.name):
                        found.append(f"from {node.module} import {alias.name}")
                    library_names.add(alias.asname or alias.name)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in library_names:
                found.append(f"{ast.unparse(node)} (line {node.lineno})")
    return found


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_of_a_library_and_no_treelite(path):
    assert private_uses(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("source", [
    "from treelite import gtil", "import treelite", "from fastapi.routing import _x", "from starlette._utils import y",
    "import panel as pn\npn.state._x", "from bokeh import models\nmodels._Private", "import pydantic._internal",
    "from panel.io import state\nstate._servers.clear()",
])
def test_the_check_finds_private_uses(source):
    assert private_uses(source)


def test_the_check_leaves_public_uses_and_own_private_names_alone():
    assert private_uses("import panel as pn\nfrom fastapi import FastAPI\nclass A:\n    def f(self):\n"
                        "        return self._cache, pn.state.cache, FastAPI.__init__") == []
