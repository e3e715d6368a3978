"""Alerts to people: a generic JSON webhook and the Telegram Bot API (httpx), each
configured by environment (ALERT_*), neither required. An alert never carries a secret:
the values of every secret variable the platform knows, and any password in a URL, are
masked before it leaves."""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx
from dagster import ConfigurableResource, EnvVar

from tgmed_common.logs import redact
from tgmed_orchestrator.settings import alert_settings
from tgmed_orchestrator.stages import SECRET_ENV

log = logging.getLogger(__name__)
ALERT_SECRET_ENV = (*SECRET_ENV, "ALERT_WEBHOOK_URL", "ALERT_TELEGRAM_BOT_TOKEN")
MAX_TEXT = 3500  # Telegram allows 4096 characters per message


def redact_secrets(text: str) -> str:
    """`text` with the value of every secret variable the platform knows, and any URL
    password, masked (tgmed_common.logs.redact)."""
    return redact(text, (os.environ.get(name, "") for name in ALERT_SECRET_ENV))


class Alerter(ConfigurableResource):
    """Sends an alert to every configured channel; returns the channels that took it.
    A channel that fails is logged and skipped: an alert must not fail the caller."""

    webhook_url: str | None = None
    telegram_bot_token: str | None = None
    telegram_chat_id: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    timeout_seconds: float = 10.0

    @classmethod
    def from_settings(cls) -> Alerter:
        """Secrets as `EnvVar`: resolved when a run or sensor uses the resource, never
        stored in (or shown with) the resource's configuration. A channel whose variable
        is not set at all is not configured (an empty value counts as unset)."""
        settings = alert_settings()

        def secret(name: str) -> Any:
            return EnvVar(name) if name in os.environ else None

        return cls(
            webhook_url=secret("ALERT_WEBHOOK_URL"),
            telegram_bot_token=secret("ALERT_TELEGRAM_BOT_TOKEN"),
            telegram_chat_id=settings.telegram_chat_id,
            telegram_api_url=settings.telegram_api_url,
            timeout_seconds=settings.timeout_seconds,
        )

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url or (self.telegram_bot_token and self.telegram_chat_id))

    def send(self, title: str, text: str, fields: dict[str, Any] | None = None) -> list[str]:
        title, text = redact_secrets(title), redact_secrets(text)[:MAX_TEXT]
        fields = {k: redact_secrets(str(v)) for k, v in (fields or {}).items()}
        sent = []
        with httpx.Client(timeout=self.timeout_seconds) as client:
            if self.webhook_url:
                payload = {"text": f"{title}\n{text}", "title": title, "body": text, **fields}
                if self._post(client, self.webhook_url, payload, "webhook"):
                    sent.append("webhook")
            if self.telegram_bot_token and self.telegram_chat_id:
                url = f"{self.telegram_api_url}/bot{self.telegram_bot_token}/sendMessage"
                payload = {
                    "chat_id": self.telegram_chat_id,
                    "text": f"{title}\n\n{text}",
                    "disable_web_page_preview": True,
                }
                if self._post(client, url, payload, "telegram"):
                    sent.append("telegram")
        return sent

    def _post(self, client: httpx.Client, url: str, payload: dict, channel: str) -> bool:
        try:
            response = client.post(url, json=payload)
            response.raise_for_status()
        except httpx.HTTPError as error:
            # the URL may hold a token (the bot's, a webhook's): never log it
            log.warning("alert via %s failed: %s", channel, type(error).__name__)
            return False
        return True
