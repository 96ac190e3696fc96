"""The layers stay as DESIGN.md draws them: pure code imports no trio and no sockets,
and linkproto never imports ircd."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = ["linkproto", "ircd/state", "ircd/protocol", "ircd/commands", "ircd/routing.py",
        "ircd/server.py", "ircd/session.py", "ircd/linking.py", "ircd/link.py"]
IO_MODULES = {"trio", "socket", "ssl", "selectors", "asyncio"}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def files(place: str) -> list[Path]:
    p = ROOT / place
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


@pytest.mark.parametrize("place", PURE)
def test_pure_layers_do_no_io(place):
    for path in files(place):
        bad = imports(path) & IO_MODULES
        assert not bad, f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}"


def test_linkproto_never_imports_ircd():
    for path in files("linkproto"):
        assert "ircd" not in imports(path), f"{path.relative_to(ROOT)} imports ircd"
