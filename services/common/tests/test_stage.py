import json

from tgmed_common.settings import ConfigError
from tgmed_common.stage import run_stage


def last_line(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_success_prints_the_summary_and_exits_zero(capsys):
    assert run_stage("x", lambda: {"stage": "x", "rows": 3}) == 0
    assert last_line(capsys) == {"stage": "x", "rows": 3}


def test_partial_failure_exits_one_with_the_summary(capsys):
    code = run_stage(
        "x", lambda: {"stage": "x", "quarantined": 2}, failed=lambda s: s["quarantined"] > 0
    )
    assert code == 1 and last_line(capsys)["quarantined"] == 2


def test_configuration_and_usage_errors_exit_two(capsys, caplog):
    def missing():
        raise ConfigError("configuration problem: DATABASE_URL: Field required")

    assert run_stage("load", missing) == 2
    assert last_line(capsys) == {
        "stage": "load",
        "error": "configuration problem: DATABASE_URL: Field required",
    }

    def bad_path():
        raise FileNotFoundError("nowhere: no export here")

    assert run_stage("import", bad_path, usage_errors=(FileNotFoundError,)) == 2
    assert "nowhere" in caplog.text


def test_unexpected_errors_exit_one_without_a_raw_traceback(capsys, caplog):
    def broken():
        raise RuntimeError("disk on fire")

    assert run_stage("detect", broken) == 1
    assert last_line(capsys) == {"stage": "detect", "error": "RuntimeError: disk on fire"}
    assert "detect failed" in caplog.text
