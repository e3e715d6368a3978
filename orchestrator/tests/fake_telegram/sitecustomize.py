"""Loaded by the scrape stage's Python when a test puts this folder on PYTHONPATH: the
stage's Telegram client becomes tgmed_sample's fake (real Telethon TL objects),
which records in FAKE_TELEGRAM_STATE how many connections are open at once, across
processes. Telegram's servers are the one thing that cannot run here."""

import fcntl
import json
import os
from pathlib import Path

STATE = os.environ.get("FAKE_TELEGRAM_STATE")


def _update(change):
    with Path(STATE + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = Path(STATE)
        state = json.loads(path.read_text()) if path.exists() else {}
        result = change(state)
        path.write_text(json.dumps(state))
        return result


def _install():
    from tgmed_sample import fake_telegram as fake

    class CountingClient(fake.FakeTelegramClient):
        async def connect(self):
            def opened(state):
                state["open"] = state.get("open", 0) + 1
                state["connections"] = state.get("connections", 0) + 1
                state["max_open"] = max(state.get("max_open", 0), state["open"])
                state.setdefault("pids", []).append(os.getpid())

            _update(opened)
            await super().connect()

        async def disconnect(self):
            def closed(state):
                state["open"] -= 1

            _update(closed)
            await super().disconnect()

        async def get_entity(self, username):
            flaky = os.environ.get("FAKE_TELEGRAM_FLAKY", "")

            def first_time(state):
                done = state.setdefault("flaked", [])
                if username.lower() == flaky and username.lower() not in done:
                    done.append(username.lower())
                    return True
                return False

            if _update(first_time):
                raise ConnectionError("connection to Telegram lost (fake, once)")
            return await super().get_entity(username)

    def create_client(settings, **kwargs):
        client = CountingClient()
        for name in os.environ.get("FAKE_TELEGRAM_CHANNELS", "").split(","):
            if name:
                client.add_channel(name, count=12)
        return client

    import tgmed_scraper.cli

    tgmed_scraper.cli.create_client = create_client


def _is_scraper() -> bool:
    # sys.argv is not set yet while site runs: read the command line itself
    try:
        parts = Path("/proc/self/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(b"tgmed-scraper") for part in parts[:3])


if STATE and _is_scraper():
    _install()
