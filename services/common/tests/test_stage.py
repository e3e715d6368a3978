import json

from tgmed_common.logs import register_secrets
from tgmed_common.settings import ConfigError
from tgmed_common.stage import MAX_SET_ASIDE_LISTED, SetAside, StageReport, run_stage


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


def test_a_report_set_aside_is_the_outcome_set_aside(capsys):
    def report(summary):
        return StageReport.of(
            summary, set_aside=[SetAside("raw/a.jsonl", "bad")], set_aside_total=summary["bad"]
        )

    assert run_stage("load", lambda: {"stage": "load", "bad": 0}, describe=report) == 0
    assert run_stage("load", lambda: {"stage": "load", "bad": 3}, describe=report) == 1


def test_a_describe_that_fails_keeps_the_outcome(capsys, caplog):
    def broken(summary):
        raise KeyError("files")

    assert run_stage("load", lambda: {"stage": "load", "rows": 1}, describe=broken) == 0
    assert "describing the run failed" in caplog.text


def test_the_report_is_the_summarys_numbers_and_texts_and_travels_as_json():
    summary = {
        "stage": "scrape",
        "messages": 12,
        "seconds": 1.5,
        "done": True,
        "marks": {"a": 3, "b": {"c": 4}},
        "names": ["x"],
        "by_channel": {"a": {"messages": 12, "note": "x"}},
        "error": "not a fact",
    }
    items = [SetAside(f"raw/{i}.jsonl", "bad line", i) for i in range(MAX_SET_ASIDE_LISTED + 5)]
    report = StageReport.of(
        summary,
        set_aside=items,
        channels=summary["by_channel"],
        failures=["test not_null_x"],
        leave_out=("by_channel",),
    )
    assert report.counts == {"messages": 12, "seconds": 1.5, "marks.a": 3, "marks.b.c": 4}
    assert report.facts == {"stage": "scrape"}
    assert report.channels == {"a": {"messages": 12}}
    assert len(report.set_aside) == MAX_SET_ASIDE_LISTED
    assert report.set_aside_total == MAX_SET_ASIDE_LISTED + 5
    assert str(report.set_aside[2]) == "raw/2.jsonl:2: bad line"
    assert StageReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    assert StageReport.from_dict(None) == StageReport()  # a stage that sent none


def test_a_reason_that_names_its_file_and_line_is_split():
    found = SetAside.from_reason("raw/a.jsonl", "/lake/raw/a.jsonl:7: text: field required")
    assert found == SetAside("raw/a.jsonl", "text: field required", 7)
    found = SetAside.from_reason("raw/a.jsonl", "/lake/raw/a.jsonl: PostgreSQL refused a row")
    assert found == SetAside("raw/a.jsonl", "PostgreSQL refused a row")
    found = SetAside.from_reason("channel x", "channel x: no public Telegram channel")
    assert str(found) == "channel x: no public Telegram channel"
    # a reason that starts with something else is kept whole
    found = SetAside.from_reason("channel x", "ChannelPrivateError: private")
    assert str(found) == "channel x: ChannelPrivateError: private"


def test_secrets_do_not_travel_in_the_report():
    register_secrets(["hunter2hunter2"])
    report = StageReport.of(
        {"stage": "scrape", "note": "key hunter2hunter2"},
        set_aside=[SetAside("channel x", "auth hunter2hunter2 refused")],
        failures=["login with hunter2hunter2"],
    )
    assert "hunter2hunter2" not in json.dumps(report.to_dict())
