"""`tgmed-api serve` configuration: the contract other stages rely on."""

from __future__ import annotations

import json

import pytest

from tgmed_api.cli import main
from tgmed_api.config import ApiSettings


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("API_DATABASE_URL", "API_HOST", "API_PORT", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_and_environment(clean_env):
    clean_env.setenv("API_DATABASE_URL", "postgresql://tgmed_api:pw@db/tgmed")
    settings = ApiSettings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.database_url.get_secret_value() == "postgresql://tgmed_api:pw@db/tgmed"
    assert "pw" not in repr(settings)
    clean_env.setenv("API_HOST", "10.0.0.5")
    clean_env.setenv("API_PORT", "9001")
    assert (ApiSettings().host, ApiSettings().port) == ("10.0.0.5", 9001)


def test_serve_without_the_database_url_names_it(clean_env, capsys):
    assert main(["serve"]) == 2
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert "API_DATABASE_URL" in summary["error"] and "API_DATABASE_URL" in err
    # DATABASE_URL (the owner's, able to write) is not taken instead
    clean_env.setenv("DATABASE_URL", "postgresql://postgres@db/tgmed")
    assert main(["serve"]) == 2


def test_an_empty_or_foreign_url_is_a_configuration_error(clean_env, capsys):
    for value in ("", "mysql://x@db/tgmed"):
        clean_env.setenv("API_DATABASE_URL", value)
        assert main(["serve"]) == 2
        out = capsys.readouterr().out
        assert "API_DATABASE_URL" in out and "postgresql://" in out and "mysql" not in out


def test_a_bad_port_is_a_configuration_error(clean_env, capsys):
    clean_env.setenv("API_DATABASE_URL", "postgresql://tgmed_api@db/tgmed")
    clean_env.setenv("API_PORT", "http")
    assert main(["serve"]) == 2
    assert "API_PORT" in capsys.readouterr().out
