"""The real Telegram client: Telethon with a StringSession from the environment, so a
container never needs a `.session` file.

Nothing here dials: `create_client` checks TELEGRAM_SESSION and the server override
first, so a bad configuration fails before any connection is attempted.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

import rsa  # Telethon's own dependency, which it reads server keys with
from telethon import TelegramClient
from telethon.crypto.rsa import add_key
from telethon.sessions import StringSession

from tgmed_common.settings import ConfigError
from tgmed_scraper.session import check_session
from tgmed_scraper.settings import TelegramAppSettings, TelegramSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerOverride:
    """Where to connect instead of Telegram's production data centres."""

    host: str
    address: str  # the IP Telethon sessions store
    port: int
    dc_id: int
    public_key: str | None  # PEM (PKCS#1)

    def __str__(self) -> str:
        return f"{self.host}:{self.port} (DC {self.dc_id})"


def _split_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:443
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"TELEGRAM_SERVER {value!r} is not host:port (for example 149.154.167.40:443 "
            "or [::1]:8443); leave it unset to use Telegram's own servers"
        )
    return host, int(port)


def _resolve(host: str) -> str:
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    try:  # a name (a compose service): Telethon sessions store an address
        return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]
    except OSError as error:
        raise ConfigError(
            f"TELEGRAM_SERVER host {host!r} does not resolve ({error.strerror or error}); "
            "give an IP address or a name this machine can resolve"
        ) from None


def _public_key(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text.startswith("-----BEGIN"):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"TELEGRAM_SERVER_PUBLIC_KEY: cannot read {path} ({error}); give the path "
                "of the server's RSA public key (PEM) or the PEM text itself"
            ) from None
    try:
        rsa.PublicKey.load_pkcs1(text.encode())
    except Exception:
        raise ConfigError(
            "TELEGRAM_SERVER_PUBLIC_KEY is not an RSA public key in PEM form "
            "('-----BEGIN RSA PUBLIC KEY-----', as servers publish it)"
        ) from None
    return text


def server_override(settings: TelegramAppSettings) -> ServerOverride | None:
    """TELEGRAM_SERVER, TELEGRAM_SERVER_DC_ID and TELEGRAM_SERVER_PUBLIC_KEY, checked;
    None when TELEGRAM_SERVER is unset (Telegram's own servers)."""
    if settings.server is None:
        if settings.server_public_key is not None:
            raise ConfigError(
                "TELEGRAM_SERVER_PUBLIC_KEY is set but TELEGRAM_SERVER is not: the key "
                "belongs to the server override; set both or neither"
            )
        return None
    host, port = _split_host_port(settings.server)
    return ServerOverride(
        host=host,
        address=_resolve(host),
        port=port,
        dc_id=settings.server_dc_id,
        public_key=_public_key(settings.server_public_key),
    )


class _KeyExchangeFailures(logging.Filter):
    """What Telethon says (in a warning per attempt, nothing in the error it raises)
    when a key exchange fails because the server offers an RSA key it does not know:
    noted, and kept off the log unless at DEBUG (the error we raise says it once)."""

    unknown_fingerprints = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "could not find a valid key for fingerprints" not in record.getMessage():
            return True
        self.unknown_fingerprints = True
        return logging.getLogger().getEffectiveLevel() <= logging.DEBUG


KEY_EXCHANGE = _KeyExchangeFailures()
logging.getLogger("telethon.network.mtprotosender").addFilter(KEY_EXCHANGE)


def key_exchange_error(settings: TelegramAppSettings, error: BaseException) -> ConfigError | None:
    """A first connection (login) that failed its key exchange because the server's
    public key is missing or wrong: a configuration error naming the variable (a retry
    cannot help); None for any other failure."""
    if "auth_key generation failed" not in str(error) or not KEY_EXCHANGE.unknown_fingerprints:
        return None
    server = server_override(settings)
    if server is None:
        return None  # Telegram's own servers: Telethon knows their keys
    if server.public_key is None:
        return ConfigError(
            f"the server {server} offers an RSA key Telethon does not know, so no session "
            "can be created: set TELEGRAM_SERVER_PUBLIC_KEY to the server's public key (PEM "
            "text or the path of a .pem file); a retry will not help"
        )
    return ConfigError(
        f"the server {server} does not use the key in TELEGRAM_SERVER_PUBLIC_KEY (its "
        "fingerprint is not among those the server offers): give that server's public "
        "key; a retry will not help"
    )


def create_client(settings: TelegramAppSettings, *, timeout: float = 10) -> TelegramClient:
    """A client that has not connected yet. `timeout` bounds each connection attempt.
    Raises ConfigError (a SessionError for TELEGRAM_SESSION) before any network use."""
    if isinstance(settings, TelegramSettings):
        value = settings.session.get_secret_value()
        check_session(value)
        session = StringSession(value.strip())
    else:
        session = StringSession()
    server = server_override(settings)
    if server is not None:
        session.set_dc(server.dc_id, server.address, server.port)
        if server.public_key is not None:
            add_key(server.public_key, old=False)
        log.debug("Telegram server: %s (TELEGRAM_SERVER)", server)
    # flood_sleep_threshold=0: every FloodWait reaches our own policy (wait when short,
    # fail clearly when long) instead of Telethon sleeping silently.
    return TelegramClient(
        session,
        settings.api_id,
        settings.api_hash.get_secret_value(),
        flood_sleep_threshold=0,
        receive_updates=False,
        timeout=timeout,
        connection_retries=2,
        request_retries=2,
        retry_delay=1,
    )
