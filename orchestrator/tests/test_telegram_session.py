"""One Telegram session is never used by two processes at once: the scrape of every
Telegram channel of a run is ONE stage process with one connection (Telegram revokes a
key used from two places at once). The stage's client is the scraper tests' fake
(tests/fake_telegram/sitecustomize.py), counting open connections across processes.
A channel that fails on the network makes the outcome transient: the step is retried,
and the channels already done are no-ops then (their high-water marks moved)."""

from __future__ import annotations

import json
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance

from tgmed_common.lake import Lake
from tgmed_orchestrator.alerts import Alerter
from tgmed_orchestrator.definitions import defs
from tgmed_orchestrator.launchers import LocalStageLauncher

FAKE = Path(__file__).parent / "fake_telegram"


def session_string() -> str:
    """A well-formed StringSession (as `login` prints) with a made-up key."""
    from telethon.crypto import AuthKey
    from telethon.sessions import StringSession

    session = StringSession()
    session.set_dc(2, "149.154.167.51", 443)
    session.auth_key = AuthKey(bytes(range(256)))
    return session.save()


def test_two_channels_share_one_connection_and_a_network_failure_is_retried(tmp_path, monkeypatch):
    state = tmp_path / "telegram.json"
    lake = Lake(tmp_path / "lake")
    monkeypatch.setenv("PYTHONPATH", str(FAKE))
    monkeypatch.setenv("FAKE_TELEGRAM_STATE", str(state))
    monkeypatch.setenv("FAKE_TELEGRAM_CHANNELS", "chemed123,tikvahpharma")
    monkeypatch.setenv("FAKE_TELEGRAM_FLAKY", "tikvahpharma")
    monkeypatch.setenv("LAKE_DIR", str(lake.root))
    monkeypatch.setenv("TELEGRAM_API_ID", "12345")
    monkeypatch.setenv("TELEGRAM_API_HASH", "0123456789abcdef")
    monkeypatch.setenv("TELEGRAM_SESSION", session_string())
    monkeypatch.setenv("SCRAPER_CONCURRENCY", "4")  # both channels at once, one client
    monkeypatch.setenv("SCRAPER_DOWNLOAD_PHOTOS", "false")
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("scrape_and_load").execute_in_process(
            resources={"launcher": LocalStageLauncher(), "alerter": Alerter()},
            run_config={
                "ops": {
                    "telegram_lake": {
                        "config": {"source": "telegram", "channels": ["CheMed123", "tikvahpharma"]}
                    }
                }
            },
            instance=instance,
            op_selection=["telegram_lake"],
        )
        partitions = instance.get_dynamic_partitions("channels")
    assert result.success
    seen = json.loads(state.read_text())
    # two attempts (the first lost tikvahpharma to the network), one connection each,
    # never two at once, each from its own single process
    assert seen["connections"] == 2
    assert seen["max_open"] == 1
    assert seen["open"] == 0
    assert len(set(seen["pids"])) == 2
    retries = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 1
    [retry] = retries
    error = retry.event_specific_data.error
    message = error.cause.message if error.cause else error.message
    assert (
        "tgmed-scraper scrape --channel chemed123 --channel tikvahpharma exited with 1" in message
    )
    assert "transient failure (retried with backoff)" in message
    files = {p.parent.name for p in lake.message_files()}
    assert files == {"channel=chemed123", "channel=tikvahpharma"}
    assert sorted(partitions) == ["chemed123", "tikvahpharma"]
    per_channel = {
        e.event_specific_data.materialization.partition: e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
        and e.asset_key.to_user_string() == "lake/telegram_messages"
    }
    # after the retry chemed123 had nothing new (done in the first attempt)
    assert per_channel["tikvahpharma"].metadata["messages"].value > 0
