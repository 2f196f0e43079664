"""How the predictors package is put together: no import cycle through the schema, nothing from ``nas``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "predictors"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_base_does_not_import_the_features_package():
    assert not {m for m in _imports(PACKAGE / "base.py") if m.startswith("predictors.features")}
    assert not {m for m in _imports(PACKAGE / "schema.py") if m.startswith("predictors")}


def test_predictors_import_nothing_from_nas():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(m for m in _imports(path) if m == "nas" or m.startswith("nas."))
        for path in PACKAGE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
