"""TELEGRAM_SESSION is checked before anything dials, and the server override.

Nothing here uses the fake client: these run the real `create_client` and Telethon's
real connection code, with the sockets' `connect` patched to refuse (and record) any
attempt, or against a minimal MTProto endpoint on 127.0.0.1 that answers as a server
that does not know the authorization key (the transport error -404)."""

from __future__ import annotations

import json
import socket
import struct
import threading
import zlib

import pytest
import rsa
from telethon.crypto import AuthKey
from telethon.crypto import rsa as telethon_rsa
from telethon.sessions import StringSession

from tgmed_scraper import cli
from tgmed_scraper.session import check_session
from tgmed_scraper.settings import TelegramAppSettings, TelegramSettings
from tgmed_scraper.telegram_client import create_client

API_HASH = "0123456789abcdef0123456789abcdef"


def session_string(address="149.154.167.51", port=443, dc_id=2, key=bytes(range(256))) -> str:
    session = StringSession()
    session.set_dc(dc_id, address, port)
    session.auth_key = AuthKey(key)
    return session.save()


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("TELEGRAM_API_ID", "123456")
    monkeypatch.setenv("TELEGRAM_API_HASH", API_HASH)
    monkeypatch.setenv("SCRAPER_REQUEST_TIMEOUT_SECONDS", "20")
    return tmp_path


@pytest.fixture
def dials(monkeypatch) -> list:
    """Every socket connect attempt, refused: the list of where it tried to go."""
    attempts: list = []

    def refuse(sock, address, *args):
        attempts.append(address)
        raise ConnectionRefusedError(111, "refused by the test: no connection allowed")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def scrape(capsys) -> tuple[int, dict, str]:
    code = cli.main(["scrape", "--channel", "chemed123"])
    out, err = capsys.readouterr()
    return code, json.loads(out.splitlines()[-1]), err


BAD_SESSIONS = {
    "empty": ("", "TELEGRAM_SESSION is empty"),
    "blank": ("   ", "TELEGRAM_SESSION is empty"),
    "garbage": ("not-a-session-at-all", "TELEGRAM_SESSION is not a Telethon session string"),
    "wrong length": ("1" + "A" * 353, "TELEGRAM_SESSION is not a Telethon session string"),
    "not base64": ("1" + "!*" * 176, "TELEGRAM_SESSION is not a Telethon session string"),
    "bad padding": ("1" + "A" * 350 + "=A", "TELEGRAM_SESSION is not a Telethon session string"),
    "no key": (
        session_string(key=bytes(256)),
        "TELEGRAM_SESSION holds no authorization key",
    ),
}


@pytest.mark.parametrize("name", list(BAD_SESSIONS))
def test_a_bad_session_exits_2_naming_the_variable_before_any_connection(
    name, env, monkeypatch, capsys, caplog, dials
):
    value, expected = BAD_SESSIONS[name]
    monkeypatch.setenv("TELEGRAM_SESSION", value)
    code, summary, err = scrape(capsys)
    assert code == 2
    assert summary["error"].startswith(expected) and "tgmed-scraper login" in summary["error"]
    assert expected in caplog.text and "Traceback" not in err + caplog.text
    assert dials == []  # never dialled, Telegram's production DC included
    if len(value.strip()) >= 4:
        assert value.strip() not in err + caplog.text + json.dumps(summary)


def test_a_missing_session_exits_2_naming_the_variable(env, monkeypatch, capsys, dials):
    monkeypatch.delenv("TELEGRAM_SESSION", raising=False)
    code, summary, _ = scrape(capsys)
    assert code == 2 and "TELEGRAM_SESSION" in summary["error"] and dials == []


def test_the_patch_does_catch_telethon_dialling(env, monkeypatch, capsys, dials):
    """The control for the tests above: a well-formed session does dial (the patched
    connect refuses), and that is a transient failure, not a configuration error."""
    monkeypatch.setenv("TELEGRAM_SESSION", session_string(address="127.0.0.1", port=9))
    code, summary, err = scrape(capsys)
    assert dials and dials[0] == ("127.0.0.1", 9)
    assert code == 1 and summary["outcome"] == "transient"
    assert summary["error"].startswith("could not connect to Telegram")
    assert "Traceback" not in err


class NotKnownServer:
    """A TCP endpoint speaking MTProto's full transport that answers every packet as a
    server that does not know the authorization key: the 4-byte transport error -404."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.packets = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def frame(payload: bytes, seq: int) -> bytes:
        head = struct.pack("<ii", len(payload) + 12, seq)
        return head + payload + struct.pack("<I", zlib.crc32(head + payload))

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                seq = 0
                while conn.recv(65536):
                    self.packets += 1
                    conn.sendall(self.frame(struct.pack("<i", -404), seq))
                    seq += 1

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def not_known_server():
    server = NotKnownServer()
    yield server
    server.close()


def test_an_auth_key_the_server_does_not_know_exits_2_with_one_clear_line(
    env, monkeypatch, capsys, caplog, not_known_server
):
    monkeypatch.setenv("TELEGRAM_SERVER", f"127.0.0.1:{not_known_server.port}")
    monkeypatch.setenv("TELEGRAM_SESSION", session_string(address="127.0.0.1", port=1))
    code, summary, err = scrape(capsys)
    assert not_known_server.packets >= 1  # Telethon really talked to it
    assert code == 2
    assert summary["error"].startswith("TELEGRAM_SESSION is not known to the Telegram server")
    assert "tgmed-scraper login" in summary["error"]
    assert "Traceback" not in err + caplog.text
    ours = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(ours) == 1 and ours[0].getMessage() == summary["error"]


# --- the server override ------------------------------------------------------------------


def test_the_server_override_is_off_by_default(env, monkeypatch):
    monkeypatch.setenv("TELEGRAM_SESSION", session_string())
    client = create_client(TelegramSettings())
    assert (client.session.server_address, client.session.port) == ("149.154.167.51", 443)


def test_the_server_override_sets_address_dc_and_the_servers_public_key(env, monkeypatch):
    public, _ = rsa.newkeys(512)
    pem = public.save_pkcs1().decode()
    (env / "server.pub").write_text(pem)
    monkeypatch.setenv("TELEGRAM_SERVER", "127.0.0.1:8443")
    monkeypatch.setenv("TELEGRAM_SERVER_DC_ID", "3")
    monkeypatch.setenv("TELEGRAM_SERVER_PUBLIC_KEY", str(env / "server.pub"))
    before = set(telethon_rsa._server_keys)
    login = create_client(TelegramAppSettings())  # a first login: no session yet
    session = login.session
    assert (session.server_address, session.port, session.dc_id) == ("127.0.0.1", 8443, 3)
    added = set(telethon_rsa._server_keys) - before
    assert len(added) == 1 and telethon_rsa._server_keys[added.pop()][0] == public
    monkeypatch.setenv("TELEGRAM_SESSION", session_string())
    scraping = create_client(TelegramSettings()).session
    assert (scraping.server_address, scraping.port, scraping.dc_id) == ("127.0.0.1", 8443, 3)
    assert scraping.auth_key is not None  # the session's key, kept
    monkeypatch.setenv("TELEGRAM_SERVER", "[::1]:443")
    assert create_client(TelegramSettings()).session.server_address == "::1"


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"TELEGRAM_SERVER": "nonsense"}, "TELEGRAM_SERVER 'nonsense' is not host:port"),
        ({"TELEGRAM_SERVER": "127.0.0.1:99999"}, "is not host:port"),
        ({"TELEGRAM_SERVER": "no-such-host.invalid:443"}, "does not resolve"),
        (
            {"TELEGRAM_SERVER": "127.0.0.1:443", "TELEGRAM_SERVER_PUBLIC_KEY": "-----BEGIN x"},
            "TELEGRAM_SERVER_PUBLIC_KEY is not an RSA public key",
        ),
        (
            {"TELEGRAM_SERVER": "127.0.0.1:443", "TELEGRAM_SERVER_PUBLIC_KEY": "/no/such.pem"},
            "TELEGRAM_SERVER_PUBLIC_KEY: cannot read /no/such.pem",
        ),
        ({"TELEGRAM_SERVER_PUBLIC_KEY": "/x.pem"}, "TELEGRAM_SERVER is not"),
        ({"TELEGRAM_SERVER": "127.0.0.1:443", "TELEGRAM_SERVER_DC_ID": "0"}, "SERVER_DC_ID"),
    ],
)
def test_a_bad_server_override_exits_2_before_any_connection(
    variables, expected, env, monkeypatch, capsys, dials
):
    monkeypatch.setenv("TELEGRAM_SESSION", session_string())
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    code, summary, _ = scrape(capsys)
    assert code == 2 and expected in summary["error"] and dials == []


def test_empty_override_variables_mean_unset(env, monkeypatch):
    """compose passes every name it knows, empty when unused"""
    for name in ("TELEGRAM_SERVER", "TELEGRAM_SERVER_DC_ID", "TELEGRAM_SERVER_PUBLIC_KEY"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("TELEGRAM_SESSION", session_string())
    settings = TelegramSettings()
    assert settings.server is None and settings.server_dc_id == 2
    assert create_client(settings).session.server_address == "149.154.167.51"


def test_check_session_reads_where_the_session_was_made():
    info = check_session(session_string(address="2001:67c:4e8:f002::a", port=443, dc_id=4))
    assert (info.dc_id, info.server_address, info.port) == (4, "2001:67c:4e8:f002::a", 443)
