"""The one way a stage CLI ends, in every launch mode.

By hand (no Dagster around): the last stdout line is a JSON summary, and the exit code
says how it went: 0 everything went through; 1 something failed or was set aside (the
rest went through); 2 a usage or configuration error, nothing was done.

Launched by Dagster (Dagster Pipes: the orchestrator's PipesSubprocessClient,
PipesDockerClient or PipesK8sClient set DAGSTER_PIPES_* in the environment): the same,
and besides, through `dagster-pipes`,
- the stage's log lines (INFO and up) go to the run's event log;
- what the stage produced is reported as asset materializations and check results (the
  stage's `report` callback: tables loaded, dbt models built, tests run);
- the outcome is said explicitly, as a custom message `{"tgmed": "outcome", ...}`, so
  the orchestrator never guesses from exit codes and summary keys:
    ok            everything went through
    config_error  configuration or usage: a retry would fail the same way
    set_aside     some input was set aside (quarantined file, failed export): the run
                  must fail without retry so someone is alerted
    transient     the network or a server failed: a retry may succeed
    failed        the stage itself failed (a bug, bad data it cannot set aside)
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

from tgmed_common.logs import emit_summary, redact
from tgmed_common.settings import ConfigError

log = logging.getLogger("tgmed.stage")

Outcome = Literal["ok", "config_error", "set_aside", "transient", "failed"]
EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "set_aside": 1,
    "transient": 1,
    "failed": 1,
    "config_error": 2,
}
OUTCOME_MESSAGE = "outcome"  # the `tgmed` key of the custom message
# errno values of a network or server that is not there (yet): worth a retry
_TRANSIENT_ERRNO = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}


class TransientError(RuntimeError):
    """A failure a retry may fix (a network error, a database restarting)."""


def is_transient(error: BaseException, kinds: tuple[type[BaseException], ...] = ()) -> bool:
    if isinstance(error, (TransientError, ConnectionError, TimeoutError, *kinds)):
        return True
    return isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNO


class _PipesLogHandler(logging.Handler):
    """Log records of the stage (already redacted at creation) into the run's event log."""

    def __init__(self, pipes: Any) -> None:
        super().__init__(logging.INFO)
        self.pipes = pipes

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("dagster_pipes"):
            return
        try:
            text = f"{record.name}: {record.getMessage()}"
            if record.exc_text:
                text += "\n" + record.exc_text
            level = record.levelname.lower()
            level = level if level in {"warning", "error", "critical"} else "info"
            getattr(self.pipes.log, level)(redact(text))
        except Exception:  # a log line must never fail the stage
            return


@contextlib.contextmanager
def dagster_pipes() -> Iterator[Any]:
    """The Pipes context when Dagster launched this process, else None (by hand)."""
    try:
        from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes
    except ImportError:  # a stage installed without dagster-pipes still runs by hand
        yield None
        return
    if not PipesEnvVarParamsLoader().is_dagster_pipes_process():
        yield None
        return
    with open_dagster_pipes() as pipes:
        handler = _PipesLogHandler(pipes)
        logging.getLogger().addHandler(handler)
        try:
            yield pipes
        finally:
            logging.getLogger().removeHandler(handler)


Report = Callable[[Any, dict[str, Any]], None]


def run_stage(
    stage: str,
    body: Callable[[], dict[str, Any]],
    *,
    usage_errors: tuple[type[Exception], ...] = (),
    transient_errors: tuple[type[BaseException], ...] = (),
    set_aside: Callable[[dict[str, Any]], bool] = lambda summary: False,
    transient: Callable[[dict[str, Any]], bool] = lambda summary: False,
    failed: Callable[[dict[str, Any]], bool] = lambda summary: False,
    report: Report | None = None,
) -> int:
    """Run `body` (which returns the summary); say how it went (summary line, exit code,
    and through Pipes when Dagster launched the stage). Errors are logged (redacted)
    rather than printed as tracebacks.

    `usage_errors`: exception types that mean the invocation itself is wrong (a path that
    does not exist); `transient_errors`: library errors a retry may fix (besides network
    errors); `set_aside`, `transient`, `failed`: what a finished run's summary means.
    `report(pipes, summary)` reports materializations and checks (Dagster only)."""
    with dagster_pipes() as pipes:
        started = time.monotonic()
        outcome: Outcome
        try:
            summary = body()
        except (ConfigError, *usage_errors) as error:
            log.error("%s", error)
            summary, outcome = {"stage": stage, "error": str(error)}, "config_error"
        except Exception as error:
            if is_transient(error, transient_errors):
                log.error(
                    "%s failed, a retry may succeed: %s: %s", stage, type(error).__name__, error
                )
                outcome = "transient"
            else:
                log.exception("%s failed", stage)
                outcome = "failed"
            summary = {"stage": stage, "error": f"{type(error).__name__}: {error}"}
        else:
            if transient(summary):
                outcome = "transient"
            elif set_aside(summary):
                outcome = "set_aside"
            elif failed(summary):
                outcome = "failed"
            else:
                outcome = "ok"
        if pipes is not None:
            if report is not None and "error" not in summary:
                try:
                    report(pipes, summary)
                except Exception:
                    log.exception("%s: reporting to Dagster failed", stage)
            pipes.report_custom_message(
                {
                    "tgmed": OUTCOME_MESSAGE,
                    "stage": stage,
                    "outcome": outcome,
                    "error": redact(str(summary.get("error") or "")),
                    "seconds": round(time.monotonic() - started, 3),
                    "summary": _redacted(summary),
                }
            )
        emit_summary(summary)
    return EXIT_CODES[outcome]


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value
