"""`.env.example` lists every variable the code reads: each settings class's fields
(`env_config(PREFIX)` + the field's name) and every name read from `os.environ` in the
packages' sources. Read from the sources, not imported: the yolo stage's settings live in
an environment of their own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_READ = re.compile(
    r"""(?:environ\.get|getenv|environ\.setdefault|environ\.pop)\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|environ\[\s*["']([A-Z][A-Z0-9_]+)["']\s*\]"""
)


def sources() -> list[Path]:
    return sorted(
        {
            path
            for top in ("services", "orchestrator", "tools")
            for path in (ROOT / top).glob("**/src/**/*.py")
        }
    )


def settings_prefix(cls: ast.ClassDef, where: str) -> str:
    for node in cls.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", "") == "model_config" for t in node.targets
        ):
            for call in ast.walk(node.value):
                if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "env_config":
                    return call.args[0].value if call.args else ""
    raise AssertionError(f"{where}: {cls.name} does not take its model_config from env_config()")


def variables_read() -> dict[str, str]:
    """Each variable the code reads -> where."""
    found: dict[str, str] = {}
    for path in sources():
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(ROOT))
        for match in _READ.finditer(text):
            found.setdefault(match.group(1) or match.group(2), where)
        for cls in ast.walk(ast.parse(text)):
            if isinstance(cls, ast.ClassDef) and any(
                getattr(b, "id", None) == "BaseSettings" for b in cls.bases
            ):
                prefix = settings_prefix(cls, where)
                for node in cls.body:
                    if (
                        isinstance(node, ast.AnnAssign)
                        and isinstance(node.target, ast.Name)
                        and "ClassVar" not in ast.unparse(node.annotation)
                    ):
                        found.setdefault((prefix + node.target.id).upper(), f"{where}: {cls.name}")
    return found


def test_every_variable_the_code_reads_is_in_env_example():
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    read = variables_read()
    # the scan finds the settings classes and the direct reads it must (it could miss all)
    assert {"TELEGRAM_API_HASH", "TGMED_LAUNCH_MODE", "DETECT_MODEL", "LAKE_DIR"} <= set(read)
    assert len(read) > 80
    missing = {name: where for name, where in read.items() if name not in listed}
    assert not missing, f"add these to .env.example (with a comment): {missing}"
