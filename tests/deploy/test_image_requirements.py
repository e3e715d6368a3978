"""What each image installs (deploy/requirements/<image>.txt, the exact set
deploy/python.Dockerfile installs with --no-deps): current with uv.lock, and the Dagster
images carry no stage's heavy dependencies: the code location runs no dbt, torch or
Telethon (the stages run in their own images; dbt's graph reaches it as a file)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "deploy" / "requirements"
# image -> the workspace packages whose locked dependencies it installs (Makefile:
# requirements), and the extra
EXPORTS = {
    "scraper": (["tgmed-scraper"], None),
    "loader": (["tgmed-loader", "tgmed-extract"], None),
    "transform": (["tgmed-transform"], None),
    "api": (["tgmed-api"], None),
    "orchestrator": (["tgmed-orchestrator"], None),
    "dagster": (["tgmed-orchestrator"], "ui"),
}
NOT_IN_DAGSTER_IMAGES = {"dbt-core", "dbt-postgres", "dbt-adapters", "torch", "telethon"}


def installed(image: str) -> set[str]:
    text = (REQUIREMENTS / f"{image}.txt").read_text(encoding="utf-8")
    return {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.M)}


def uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def test_every_python_image_has_its_requirements_and_wheel_folder():
    for image in EXPORTS:
        assert installed(image), image
        assert (ROOT / "deploy" / "wheelhouse" / image / ".gitkeep").is_file(), image
    assert {p.stem for p in REQUIREMENTS.glob("*.txt")} == set(EXPORTS)


@pytest.mark.parametrize("image", ["orchestrator", "dagster"])
def test_the_dagster_images_carry_no_dbt_torch_or_telethon(image):
    packages = installed(image)
    assert {"dagster", "dagster-docker", "dagster-k8s", "dagster-postgres"} <= packages
    assert packages & NOT_IN_DAGSTER_IMAGES == set()
    assert not any(name.startswith("dbt-") for name in packages)


def test_the_stage_images_carry_their_own_tools():
    assert "dbt-core" in installed("transform")
    assert "telethon" in installed("scraper")
    assert "pyahocorasick" in installed("loader")  # the extract stage's matcher


@pytest.mark.parametrize("image", sorted(EXPORTS))
def test_each_images_requirements_are_current_with_the_lock(image, tmp_path):
    """`make requirements` after a change to uv.lock: a stale export would build images
    with other versions than the tests ran with."""
    packages, extra = EXPORTS[image]
    out = tmp_path / f"{image}.txt"
    argv = [*uv(), "export", "--frozen", "--no-dev", "--no-emit-workspace", "--no-header", "-q"]
    argv += [part for name in packages for part in ("--package", name)]
    argv += ["--extra", extra] if extra else []
    subprocess.run([*argv, "-o", str(out)], cwd=ROOT, check=True, capture_output=True)
    assert out.read_text() == (REQUIREMENTS / f"{image}.txt").read_text(), (
        f"deploy/requirements/{image}.txt is stale: make requirements"
    )
