"""alerts/ is a layer beside access/ and pages/: it may import core/, db/ and pages/, never an edge."""

import ast
from pathlib import Path

import pytest

ALERTS = Path(__file__).resolve().parents[2] / "alerts"
EDGES = ("api", "web", "collector", "server", "access", "reports")


@pytest.mark.parametrize("path", sorted(ALERTS.glob("*.py")), ids=lambda p: p.name)
def test_alerts_import_no_edge(path):
    tree = ast.parse(path.read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    assert not [m for m in imported if m.split(".")[0] in EDGES]
