"""The house's arrows point down: ebgan_core imports neither sweeps nor analysis (nor Ray nor SQL), sweeps does not
import analysis; only analysis.command, the `ebgan` command's composition root, may import every layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"ebgan_core": ("sweeps", "analysis", "ray", "sqlalchemy", "alembic"), "sweeps": ("analysis",)}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, anywhere in it (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_one_above_it(layer):
    wrong = {str(path.relative_to(ROOT)): sorted(imported_packages(path) & set(FORBIDDEN[layer]))
             for path in sorted((ROOT / layer).rglob("*.py"))}
    assert {path: names for path, names in wrong.items() if names} == {}
