"""Whose heartbeat counts as a live daemon (local_services.live_daemon): a daemon someone
stopped must not, though its last heartbeat stays fresh for a while.

A heartbeat is stored as a Dagster 1.13 daemon stores one (the serialized form recorded
from a `make demo` instance), with this test's daemon id, loop and time."""

from __future__ import annotations

import json
import time

from dagster import DagsterInstance, deserialize_value

from tgmed_orchestrator.cli import main
from tgmed_orchestrator.local_services import live_daemon, mark_daemon_stopped


def beat(instance: DagsterInstance, daemon_id: str, at: float, loop: str = "SENSOR") -> None:
    recorded = {
        "__class__": "DaemonHeartbeat",
        "daemon_id": daemon_id,
        "daemon_type": loop,
        "errors": [],
        "timestamp": at,
    }
    instance.add_daemon_heartbeat(deserialize_value(json.dumps(recorded)))


def test_a_fresh_heartbeat_is_a_live_daemon_until_its_stop_is_recorded(tmp_path):
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        started = time.time()
        beat(instance, "dev-daemon", started + 1)
        assert live_daemon(instance, tmp_path) is not None
        assert mark_daemon_stopped(instance, tmp_path, since=started) == "dev-daemon"
        assert live_daemon(instance, tmp_path) is None
        # another daemon starting later counts again, whichever of its loops beats last
        beat(instance, "next-daemon", time.time() + 2, loop="QUEUED_RUN_COORDINATOR")
        assert live_daemon(instance, tmp_path) is not None


def test_a_heartbeat_older_than_the_stopped_daemons_start_is_not_marked(tmp_path):
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        now = time.time()
        beat(instance, "someone-elses", now - 5)
        # a daemon that started after that heartbeat never wrote one: nothing to mark
        assert mark_daemon_stopped(instance, tmp_path, since=now) is None
        assert live_daemon(instance, tmp_path) is not None


def test_the_command_serve_sh_calls_marks_it(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    home.mkdir()
    with DagsterInstance.get() as instance:
        started = time.time()
        beat(instance, "dev-daemon", started + 1)
    assert main(["daemon-stopped", "--since", str(int(started))]) == 0
    assert "dev-daemon marked stopped" in capsys.readouterr().out
    with DagsterInstance.get() as instance:
        assert live_daemon(instance, home) is None
