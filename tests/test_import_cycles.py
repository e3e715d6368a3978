"""No import cycle between the modules of any of our packages, counting imports inside
functions too (a lazy import hides a cycle from Python, not from a reader): a module's
dependencies must form a tree a newcomer can read from the bottom up (issue 25)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules() -> dict[str, Path]:
    found = {}
    for package in sorted(ROOT.glob("*/src/tgmed_*")) + sorted(ROOT.glob("*/*/src/tgmed_*")):
        if ".venv" in package.parts:
            continue
        for path in package.rglob("*.py"):
            parts = list(path.relative_to(package.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(path: Path, known: set[str], name: str) -> set[str]:
    """Our modules `path` imports, anywhere in it (a package's import of its own
    submodules, as its __init__ re-exporting them, is not a cycle)."""
    wanted = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        wanted |= {c for c in candidates if c in known and c != name}
    return wanted


def cycles() -> list[list[str]]:
    known = modules()
    graph = {name: imports_of(path, set(known), name) for name, path in known.items()}
    # a package's __init__ imports its submodules; a submodule importing its package
    # would be the cycle: keep those edges, drop the package -> own submodule ones
    for name in graph:
        graph[name] = {d for d in graph[name] if not d.startswith(name + ".")}
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                found.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def test_no_import_cycle_in_our_packages():
    assert len(modules()) > 50
    assert cycles() == []
