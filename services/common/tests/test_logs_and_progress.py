import json
import logging

from tgmed_common.logs import configure_logging, emit_summary, redact, register_secrets
from tgmed_common.progress import Progress
from tgmed_common.settings import ConfigError, LakeSettings, load_settings, secret_values


def test_secrets_are_redacted_in_messages_args_and_tracebacks(caplog):
    register_secrets(["s3cr3t-hash-value"])
    log = logging.getLogger("test.redaction")
    with caplog.at_level(logging.INFO):
        log.info("hash is %s", "s3cr3t-hash-value")
        try:
            raise RuntimeError("failed with s3cr3t-hash-value inside")
        except RuntimeError:
            log.exception("boom")
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "s3cr3t-hash-value" not in text
    assert "hash is ***" in caplog.text


def test_configure_logging_is_idempotent():
    configure_logging("INFO")
    configure_logging("DEBUG")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_tgmed", False)]
    assert len(ours) == 1


def test_summary_is_one_json_line(capsys):
    emit_summary({"stage": "x", "messages": 3, "text": "ዋጋ"})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == {"stage": "x", "messages": 3, "text": "ዋጋ"}


def test_progress_reports_rate_and_eta(caplog):
    now = [100.0]  # a clock the test moves: the rate and ETA are exact on any machine
    progress = Progress("import x", unit="messages", total=100, interval=0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="progress"):
        now[0] += 5
        progress.advance(25)
        now[0] += 5
        progress.done()
    assert "import x: 25/100 messages (25%), 5.0 messages/s, ETA 15s" in caplog.text
    assert "import x: done, 25 messages in 10s (2.5 messages/s)" in caplog.text


def test_progress_logs_at_most_every_interval(caplog):
    now = [0.0]
    progress = Progress("load", unit="files", total=10, interval=5, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="progress"):
        for _ in range(10):
            now[0] += 1
            progress.advance()
    assert [r.getMessage().split(",")[0] for r in caplog.records] == [
        "load: 5/10 files (50%)",
        "load: 10/10 files (100%)",
    ]


def test_settings_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv("LAKE_DIR", "/tmp/lake-x")
    assert str(load_settings(LakeSettings).lake_dir) == "/tmp/lake-x"
    from pydantic import SecretStr
    from pydantic_settings import BaseSettings

    from tgmed_common.settings import env_config

    class Needs(BaseSettings):
        model_config = env_config("DEMO_")
        token: SecretStr

    monkeypatch.delenv("DEMO_TOKEN", raising=False)
    try:
        load_settings(Needs)
    except ConfigError as error:
        assert "DEMO_TOKEN" in str(error) and ".env.example" in str(error)
    else:
        raise AssertionError("a missing secret must fail")
    monkeypatch.setenv("DEMO_TOKEN", "abcd1234")
    assert secret_values(load_settings(Needs)) == ["abcd1234"]


def test_one_redactor_masks_given_values_and_url_passwords():
    """The redactor of log lines, stage summaries and alerts: values passed in (a short
    one is not a secret: it would mask common words), and a URL's password even when it
    was never registered."""
    text = "token tok-123456 to postgresql://tgmed:pa55word@db:5432/tgmed, code abc"
    assert redact(text, ["tok-123456", "abc"]) == (
        "token *** to postgresql://tgmed:***@db:5432/tgmed, code abc"
    )
    assert redact("no url, no secret") == "no url, no secret"
    assert redact("https://example.org/path:x@y") == "https://example.org/path:x@y"
