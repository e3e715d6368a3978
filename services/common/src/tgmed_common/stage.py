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
  the orchestrator never guesses from exit codes and summary keys, with the stage's
  report (`StageReport`: counts, what was set aside with file, line and reason,
  per-channel counts, what failed by name), the one type the orchestrator reads:
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
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
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


_FILE_LINE = re.compile(r"^(?P<file>\S+?)(?::(?P<line>\d+))?: (?P<reason>.*)$", re.DOTALL)
MAX_SET_ASIDE_LISTED = 20  # the report lists the first ones; `set_aside_total` counts all


@dataclass(frozen=True)
class SetAside:
    """One input a stage set aside: where (a lake file, an export, a channel), the line
    where the stage knows it, and why."""

    where: str
    reason: str
    line: int | None = None

    @classmethod
    def from_reason(cls, where: str, reason: str) -> SetAside:
        """From a stage's reason text, which may begin with its file and line, as a
        LakeRecordError's does (`/lake/raw/...jsonl:3: why`)."""
        if reason.startswith(f"{where}: "):  # named already (`channel x: why`)
            return cls(where, reason[len(where) + 2 :])
        found = _FILE_LINE.match(reason)
        if found is None or not found["file"].endswith(where):
            return cls(where, reason)
        line = found["line"]
        return cls(where, found["reason"], int(line) if line else None)

    def __str__(self) -> str:
        place = self.where if self.line is None else f"{self.where}:{self.line}"
        return f"{place}: {self.reason}"


@dataclass(frozen=True)
class StageReport:
    """What a stage did, in the one shape every stage sends and the orchestrator reads:
    `counts` (numbers, nested ones as `parent.child`), `facts` (short texts: a version,
    a model, a device), `set_aside` (the first MAX_SET_ASIDE_LISTED inputs set aside;
    `set_aside_total` counts every one), `channels` (counts per channel) and `failures`
    (what failed by name: a dbt test, a model)."""

    counts: dict[str, float] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)
    set_aside: tuple[SetAside, ...] = ()
    set_aside_total: int = 0
    channels: dict[str, dict[str, float]] = field(default_factory=dict)
    failures: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        summary: Mapping[str, Any],
        *,
        set_aside: Iterable[SetAside] = (),
        set_aside_total: int | None = None,
        channels: Mapping[str, Mapping[str, Any]] | None = None,
        failures: Iterable[str] = (),
        leave_out: Iterable[str] = (),
    ) -> StageReport:
        """A report from a stage's summary: its numbers as counts (`leave_out`: keys that
        are not counts, such as per-channel tables), its top-level texts as facts."""
        left_out = {*leave_out, "error"}
        kept = {k: v for k, v in summary.items() if k not in left_out}
        listed = list(set_aside)
        return cls(
            counts=numbers(kept),
            facts={k: v for k, v in kept.items() if isinstance(v, str)},
            set_aside=tuple(listed[:MAX_SET_ASIDE_LISTED]),
            set_aside_total=len(listed) if set_aside_total is None else set_aside_total,
            channels={name: numbers(counts) for name, counts in (channels or {}).items()},
            failures=tuple(str(f) for f in failures),
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as it leaves the stage: every text redacted, here and only here."""
        body = asdict(self)
        body["facts"] = {k: redact(v) for k, v in self.facts.items()}
        body["failures"] = [redact(f) for f in self.failures]
        body["set_aside"] = [
            {**item, "where": redact(item["where"]), "reason": redact(item["reason"])}
            for item in body["set_aside"]
        ]
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any] | None) -> StageReport:
        """The report a stage sent (a stage of another version may leave fields out)."""
        body = body or {}
        return cls(
            counts=dict(body.get("counts") or {}),
            facts=dict(body.get("facts") or {}),
            set_aside=tuple(SetAside(**item) for item in body.get("set_aside") or ()),
            set_aside_total=int(body.get("set_aside_total") or 0),
            channels={k: dict(v) for k, v in (body.get("channels") or {}).items()},
            failures=tuple(body.get("failures") or ()),
        )


def numbers(value: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers in a (nested) mapping, flat: `{"a": {"b": 1}}` -> `{"a.b": 1}`;
    booleans, texts and lists are not numbers."""
    found: dict[str, float] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, bool):
            continue
        if isinstance(item, int | float):
            found[name] = item
        elif isinstance(item, Mapping):
            found.update(numbers(item, name))
    return found


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
Describe = Callable[[dict[str, Any]], StageReport]


def run_stage(
    stage: str,
    body: Callable[[], dict[str, Any]],
    *,
    usage_errors: tuple[type[Exception], ...] = (),
    transient_errors: tuple[type[BaseException], ...] = (),
    transient: Callable[[dict[str, Any]], bool] = lambda summary: False,
    failed: Callable[[dict[str, Any]], bool] = lambda summary: False,
    report: Report | None = None,
    describe: Describe = StageReport.of,
) -> int:
    """Run `body` (which returns the summary); say how it went (summary line, exit code,
    and through Pipes when Dagster launched the stage). Errors are logged (redacted)
    rather than printed as tracebacks.

    `usage_errors`: exception types that mean the invocation itself is wrong (a path that
    does not exist); `transient_errors`: library errors a retry may fix (besides network
    errors); `transient`, `failed`: what a finished run's summary means.
    `describe(summary)`: the stage's StageReport (by default its numbers and texts); a
    finished run whose report sets input aside has the outcome `set_aside`.
    `report(pipes, summary)` reports materializations and checks (Dagster only)."""
    with dagster_pipes() as pipes:
        started = time.monotonic()
        outcome: Outcome | None = None
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
        described = _describe(stage, describe, summary)
        if outcome is None:  # the body finished: what its summary and report say
            if transient(summary):
                outcome = "transient"
            elif described.set_aside_total:
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
                    "report": described.to_dict(),
                }
            )
        emit_summary(summary)
    return EXIT_CODES[outcome]


def _describe(stage: str, describe: Describe, summary: dict[str, Any]) -> StageReport:
    """The stage's report of `summary`; its plain numbers if describing failed (a bug
    there must not lose the run's outcome)."""
    try:
        return describe(summary)
    except Exception:
        log.exception("%s: describing the run failed", stage)
        return StageReport.of(summary)
