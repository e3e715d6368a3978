import json
import logging

import pytest
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from tgmed_scraper import cli

API_HASH = "0123456789abcdef0123456789abcdef"


def session_string(address: str = "149.154.167.51", port: int = 443, dc_id: int = 2) -> str:
    """A well-formed StringSession (as `login` prints) with a made-up authorization key."""
    session = StringSession()
    session.set_dc(dc_id, address, port)
    session.auth_key = AuthKey(bytes(range(256)))
    return session.save()


SESSION = session_string()


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("TELEGRAM_API_ID", "123456")
    monkeypatch.setenv("TELEGRAM_API_HASH", API_HASH)
    monkeypatch.setenv("TELEGRAM_SESSION", SESSION)
    return tmp_path


@pytest.mark.parametrize("command", [[], ["login"], ["scrape"], ["import-export"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([*command, "--help"])
    assert done.value.code == 0
    assert "usage: tgmed-scraper" in capsys.readouterr().out


def test_missing_secret_is_a_clear_configuration_error(env, monkeypatch, capsys, caplog):
    monkeypatch.delenv("TELEGRAM_API_HASH")
    assert cli.main(["scrape", "--channel", "chemed123"]) == 2
    assert "TELEGRAM_API_HASH" in caplog.text and ".env.example" in caplog.text
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["stage"] == "scrape"


def test_scrape_cli_ends_with_a_json_summary_and_never_logs_secrets(
    env, monkeypatch, capsys, caplog, client
):
    class LeakyClient(type(client)):
        async def get_entity(self, username):
            if username == "leaky":  # a library error that echoes credentials back
                raise RuntimeError(f"auth rejected for api_hash={API_HASH} session={SESSION}")
            return await super().get_entity(username)

    fake = LeakyClient(channels=client.channels, ids=client.ids)
    monkeypatch.setattr(cli, "create_client", lambda settings, **_: fake)
    with caplog.at_level(logging.DEBUG):
        code = cli.main(
            ["--log-level", "DEBUG", "scrape", "--channel", "CheMed123", "--channel", "leaky"]
        )
    out, err = capsys.readouterr()
    assert code == 1  # one channel failed
    summary = json.loads(out.splitlines()[-1])
    assert summary["messages"] == 27 and list(summary["failed_channels"]) == ["leaky"]
    everything = out + err + caplog.text
    assert "auth rejected" in everything  # the error itself is reported...
    assert API_HASH not in everything and SESSION not in everything  # ...its secrets are not
    assert fake.connected is False  # disconnected at the end


def test_import_of_a_missing_path_is_a_usage_error(env, caplog):
    assert cli.main(["import-export", str(env / "nowhere")]) == 2
    assert "no Telegram Desktop export here" in caplog.text


def test_the_summary_counts_every_message_read_and_the_refresh_window_is_an_option(
    env, monkeypatch, capsys, client, tg
):
    seen_options = []
    real = cli.scrape_channels

    async def spy(fake, lake, channels, options, summary):
        seen_options.append(options)
        return await real(fake, lake, channels, options, summary)

    monkeypatch.setattr(cli, "scrape_channels", spy)
    monkeypatch.setattr(cli, "create_client", lambda settings, **_: client)
    monkeypatch.setenv("SCRAPER_REFRESH_DAYS", "5")
    monkeypatch.setenv("SCRAPER_REQUEST_TIMEOUT_SECONDS", "7.5")
    assert cli.main(["scrape", "--channel", "chemed123"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    # 30 read: 27 posts and 3 service messages, none of them lost from the count
    assert summary["read"] == 30 and summary["messages"] == 27
    assert summary["service_messages"] == 3 and summary["outcome"] == "ok"
    assert summary["refresh_days"] == 5 and summary["snapshots"] == 1
    assert seen_options[-1].refresh_days == 5 and seen_options[-1].request_timeout == 7.5
    assert cli.main(["scrape", "--channel", "chemed123", "--refresh-days", "0"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["refresh_days"] == 0
    assert cli.main(["scrape", "--channel", "chemed123", "--refresh-days", "-1"]) == 2
    assert "--refresh-days -1" in json.loads(capsys.readouterr().out.splitlines()[-1])["error"]


def test_an_unknown_channel_is_named_a_channel_and_partial(env, monkeypatch, capsys, client):
    monkeypatch.setattr(cli, "create_client", lambda settings, **_: client)
    code = cli.main(["scrape", "--channel", "chemed123", "--channel", "nosuchchannel"])
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 1 and summary["outcome"] == "partial" and "error" not in summary
    error = summary["failed_channels"]["nosuchchannel"]
    assert error.startswith("channel nosuchchannel: no public Telegram channel")
    assert "No user has" not in error and summary["transient_channels"] == []
    # what the orchestrator reads: the channel set aside, named once
    report = cli.stage_report(summary)
    assert report.set_aside_total == 1
    assert str(report.set_aside[0]).startswith("channel nosuchchannel: no public Telegram")
    assert report.channels["chemed123"]["messages"] == summary["messages"]


def test_a_partial_scrape_lists_its_transient_channel_too():
    """One channel failed for good, one on the network: the run is partial (not
    retried), so the report lists both; the alert must not hide the second."""
    summary = {
        "stage": "scrape",
        "outcome": "partial",
        "failed_channels": {"gone": "channel gone: no public Telegram channel", "slow": "x"},
        "transient_channels": ["slow"],
    }
    report = cli.stage_report(summary)
    assert report.set_aside_total == 2
    assert [item.where for item in report.set_aside] == ["channel gone", "channel slow"]


def test_a_transient_channel_failure_reads_as_one_for_the_orchestrator(
    env, monkeypatch, capsys, client
):
    client.fail_after = 5  # the connection drops mid-channel
    monkeypatch.setattr(cli, "create_client", lambda settings, **_: client)
    code = cli.main(["scrape", "--channel", "chemed123"])
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 1 and summary["outcome"] == "transient"
    assert summary["transient_channels"] == ["chemed123"]
    # an `error` in the summary: today's orchestrator retries such a failure
    assert summary["error"].startswith("transient failure, run again later: channel chemed123")
    assert "connection to Telegram failed" in summary["error"]
    # retried, not set aside
    assert cli.stage_report(summary).set_aside_total == 0
