"""The project speaks to Dagster through its public API (issue 25): no import of a
`dagster._` module and no match on Dagster's formatted text (its module paths in an
error's message) and no hidden `.dagster/` run tag, read from the sources of every
package, script and test. What had no public form was rebuilt on public parts: run
workers' health (run_workers.py: a sensor, not a run launcher's private health types),
daemon heartbeats and run-worker events in tests (stored from their recorded
serialized form through `deserialize_value`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOPS = ("services", "orchestrator", "tools", "deploy", "k8s", "bench", "tests")


def python_files(root: Path = ROOT) -> list[Path]:
    return sorted(
        path
        for top in TOPS
        for path in (root / top).glob("**/*.py")
        if not any(part.startswith(".venv") or part == "node_modules" for part in path.parts)
    )


def private_imports(root: Path = ROOT) -> set[tuple[str, str]]:
    found = set()
    for path in python_files(root):
        where = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), where)):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found |= {(where, name) for name in names if name.startswith("dagster._")}
    return found


def texts_in_code(fragment: str) -> list[str]:
    """`file:line: text` of every string constant holding `fragment` in code that is not
    a test (a test may query as the UI does, or assert that a text lacks it)."""
    hits = []
    for path in python_files():
        where = str(path.relative_to(ROOT))
        if where.startswith("tests/") or "/tests/" in where:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), where)):
            if isinstance(node, ast.Constant) and fragment in str(node.value):
                hits.append(f"{where}:{node.lineno}: {str(node.value)[:60]!r}")
    return hits


def test_no_private_dagster_import():
    assert private_imports() == set(), "import from Dagster's public API (`from dagster import`)"


def test_no_hidden_dagster_run_tag():
    """Dagster's own run tags (`.dagster/...`, e.g. the code server a run went to) are
    internal: no code reads or filters on them (a test may query as the UI does)."""
    assert texts_in_code(".dagster/") == []


def test_no_code_matches_dagster_module_paths_in_text():
    """Error texts are read by class (outcomes.error_texts), not by Dagster's wording.
    Tests may still assert that a text does *not* show Dagster's module paths."""
    assert texts_in_code("dagster._") == []


def test_the_scan_finds_a_private_import(tmp_path):
    """The scan itself, on a tree of its own: `from dagster._...` and `import dagster._...`
    are found, a public import is not."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "a.py").write_text(
        "from dagster._core.launcher import WorkerStatus\nimport dagster._utils\n"
        "from dagster import Failure\n",
        encoding="utf-8",
    )
    assert private_imports(tmp_path) == {
        ("tools/a.py", "dagster._core.launcher"),
        ("tools/a.py", "dagster._utils"),
    }
