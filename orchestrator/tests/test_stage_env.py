"""Every variable a stage's settings read reaches it in docker and k8s mode (one
settings pattern: pydantic-settings classes, so their fields are the list), and no
stage gets what it does not read."""

from __future__ import annotations

import json
import subprocess

import pytest
from dagster import build_op_context
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from tgmed_common.settings import LakeSettings
from tgmed_extract.settings import ExtractSettings
from tgmed_loader.settings import ApiRoleSettings, DatabaseSettings, LoaderSettings
from tgmed_orchestrator import stages
from tgmed_orchestrator.launchers import DockerStageLauncher, K8sStageLauncher
from tgmed_scraper.settings import ScraperSettings, TelegramSettings
from tgmed_transform.settings import TransformSettings

SETTINGS: dict[str, list[type[BaseSettings]]] = {
    "scrape": [LakeSettings, TelegramSettings, ScraperSettings],
    "extract": [LakeSettings, ExtractSettings],
    "load": [LakeSettings, DatabaseSettings, LoaderSettings, ApiRoleSettings],
    "transform": [TransformSettings],
}
COMMANDS = {
    "scrape": stages.scrape_telegram(["a"]),
    "detect": stages.detect(0, 1),
    "extract": stages.extract(),
    "load": stages.load("messages"),
    "transform": stages.transform(),
}


def variables(cls: type[BaseSettings]) -> dict[str, bool]:
    """Environment variable -> is it a secret, for every field of a settings class."""
    prefix = cls.model_config.get("env_prefix", "") or ""
    return {
        (prefix + name).upper(): field.annotation is SecretStr
        or "SecretStr" in str(field.annotation)
        for name, field in cls.model_fields.items()
    }


def detect_variables(yolo_bin) -> dict[str, bool]:
    """The detection stage lives in its own environment: ask it."""
    folder, _ = yolo_bin
    code = (
        "import json; from tgmed_yolo.settings import DetectSettings as D; "
        "from tgmed_common.settings import LakeSettings as L; "
        "print(json.dumps([(c.model_config.get('env_prefix') or '') + n for c in (D, L) "
        "for n in c.model_fields]))"
    )
    out = subprocess.run(
        [f"{folder}/python", "-c", code], capture_output=True, text=True, check=True
    )
    return {name.upper(): False for name in json.loads(out.stdout)}


@pytest.fixture
def every_variable_set(monkeypatch):
    for names in stages.STAGE_ENV.values():
        for name in names:
            monkeypatch.setenv(name, f"value-of-{name}")


def read_by(stage: str, yolo_bin=None) -> dict[str, bool]:
    if stage == "detect":
        return detect_variables(yolo_bin)
    found: dict[str, bool] = {}
    for cls in SETTINGS[stage]:
        found.update(variables(cls))
    return found


@pytest.mark.parametrize("stage", ["scrape", "extract", "load", "transform", "detect"])
def test_docker_passes_every_variable_the_stage_reads(stage, request):
    yolo_bin = request.getfixturevalue("yolo_bin") if stage == "detect" else None
    request.getfixturevalue("every_variable_set")  # after yolo_bin read DETECT_MODEL
    env = DockerStageLauncher().container_config(build_op_context(), COMMANDS[stage])["env"]
    wanted = set(read_by(stage, yolo_bin))
    assert wanted <= set(env), (
        f"{stage} reads {sorted(wanted - set(env))} but docker does not pass them"
    )
    assert env["LAKE_DIR"] == "/lake"


@pytest.mark.parametrize("stage", ["scrape", "extract", "load", "transform", "detect"])
def test_k8s_gives_every_secret_the_stage_reads_through_its_own_secrets(stage, request):
    """Non-secret variables come from the shared ConfigMap; each secret one from a Secret
    the stage's pod gets, and no stage gets a Secret it reads nothing from."""
    yolo_bin = request.getfixturevalue("yolo_bin") if stage == "detect" else None
    launcher = K8sStageLauncher()
    container = launcher.pod_config(build_op_context(), COMMANDS[stage])["base_pod_spec"][
        "containers"
    ][0]
    given = [ref["secret_ref"]["name"] for ref in container["env_from"] if "secret_ref" in ref]
    assert container["env_from"][0] == {"config_map_ref": {"name": "tgmed-config"}}
    secrets = {name for name, secret in read_by(stage, yolo_bin).items() if secret}
    provided = {var for name in given for var in launcher.secret_env[name]}
    assert secrets <= provided, f"{stage}: {sorted(secrets - provided)} in no Secret it gets"
    for name in given:
        assert set(launcher.secret_env[name]) & set(read_by(stage, yolo_bin)), name


def test_stage_env_lists_nothing_a_stage_does_not_read(request):
    yolo_bin = request.getfixturevalue("yolo_bin")
    for stage, names in stages.STAGE_ENV.items():
        extra = set(names) - set(read_by(stage, yolo_bin)) - {"YOLO_OFFLINE", "YOLO_AUTOINSTALL"}
        assert not extra, f"{stage} is given {sorted(extra)}, which it does not read"
