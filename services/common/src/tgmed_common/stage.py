"""The one way a stage CLI ends, in every launch mode: the last stdout line is a JSON
summary, and the exit code says how it went (0: everything went through; 1: something
failed, the rest went through, or the stage itself failed; 2: a usage or configuration
error, nothing was done)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tgmed_common.logs import emit_summary
from tgmed_common.settings import ConfigError

log = logging.getLogger("tgmed.stage")


def run_stage(
    stage: str,
    body: Callable[[], dict[str, Any]],
    *,
    usage_errors: tuple[type[Exception], ...] = (),
    failed: Callable[[dict[str, Any]], bool] = lambda summary: False,
) -> int:
    """Run `body` (which returns the summary) and turn its outcome into the summary line
    and the exit code. Errors are logged (redacted) rather than printed as tracebacks."""
    try:
        summary = body()
    except (ConfigError, *usage_errors) as error:
        log.error("%s", error)
        emit_summary({"stage": stage, "error": str(error)})
        return 2
    except Exception as error:
        log.exception("%s failed", stage)
        emit_summary({"stage": stage, "error": f"{type(error).__name__}: {error}"})
        return 1
    emit_summary(summary)
    return 1 if failed(summary) else 0
