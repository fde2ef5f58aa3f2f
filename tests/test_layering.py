"""The layers beside access/ import only what lies below them (docs/architecture.md): never an edge,
and alerts/ and judge/ not each other's neighbours either. One check, every module of each layer."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EDGES = ("api", "web", "collector", "server", "access")
FORBIDDEN = {
    "alerts": EDGES + ("reports",),
    "reports": EDGES,
    "judge": EDGES + ("reports", "alerts"),
}
MODULES = [(layer, path) for layer in FORBIDDEN for path in sorted((ROOT / layer).glob("*.py"))]


@pytest.mark.parametrize(("layer", "path"), MODULES, ids=[f"{layer}/{p.name}" for layer, p in MODULES])
def test_layer_imports_nothing_forbidden(layer, path):
    tree = ast.parse(path.read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    assert not [m for m in imported if m.split(".")[0] in FORBIDDEN[layer]]
