"""Logging for every stage CLI: human lines on stderr, secrets never printed, and one
machine-readable JSON summary line on stdout at the end of a run.

Redaction works at record creation (a log record factory), so it covers every handler
(stderr, files, test capture) and every library's log lines, tracebacks included.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

REDACTED = "***"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_secrets: list[str] = []
_base_factory = logging.getLogRecordFactory()


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every registered secret, each of `secrets` (values of 4 characters or
    more) and any password in a URL masked: the platform's one redactor (log lines,
    stage summaries, alerts)."""
    extra = sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True)
    for secret in (*extra, *_secrets) if extra else _secrets:
        text = text.replace(secret, REDACTED)
    return _URL_PASSWORD.sub(rf"\g<scheme>{REDACTED}@", text) if "://" in text else text


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    if _secrets:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    return record


def register_secrets(secrets: Iterable[str]) -> None:
    """From now on these values print as *** in every log line."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret not in _secrets:
            _secrets.append(secret)
    _secrets.sort(key=len, reverse=True)
    if _secrets and logging.getLogRecordFactory() is not _redacting_factory:
        logging.setLogRecordFactory(_redacting_factory)


def configure_logging(level: str | int = "INFO", secrets: Iterable[str] = ()) -> None:
    """One stderr handler on the root logger (idempotent); secrets registered first."""
    register_secrets(secrets)
    # a failing handler must not print its own traceback: that bypasses redaction
    logging.raiseExceptions = False
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_tgmed", False)]
    if ours:
        ours[0].stream = sys.stderr  # type: ignore[attr-defined]  # (the old may be closed)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._tgmed = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)


def emit_summary(summary: dict[str, Any]) -> None:
    """The last line a stage prints on stdout: one JSON object of counts (redacted too:
    error texts in it may quote a library's message)."""
    sys.stdout.write(redact(json.dumps(summary, ensure_ascii=False, default=str)) + "\n")
    sys.stdout.flush()
