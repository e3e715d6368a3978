"""The suite's answer: one row per scenario (and launch mode), printed as a table and kept
in docs/reliability.md between markers, with the date and the machine."""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

# the goal every row is held to
MAX_SECONDS_TO_FAILURE = 120.0
MAX_SECONDS_TO_ALERT = 120.0
BEGIN, END = "<!-- chaos:begin -->", "<!-- chaos:end -->"


@dataclass
class Row:
    scenario: str
    mode: str
    trials: int = 0
    injected: str = ""
    lost: int = 0
    duplicated: int = 0
    leftovers: list[str] = field(default_factory=list)
    # seconds from each injected fault to the run's FAILURE (None: the run recovered
    # through its retries and succeeded, or no failure was expected)
    failure_seconds: list[float] = field(default_factory=list)
    # seconds from each failure to its alert; None where none arrived
    alert_seconds: list[float | None] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # (run id, when it failed): alerts checked at the end of the scenario (the receiver
    # stamps each arrival, so waiting later measures the same latency)
    pending_alerts: list[tuple[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str = ""

    @property
    def passed(self) -> bool:
        if self.skipped:
            return True
        return not (
            self.lost
            or self.duplicated
            or self.leftovers
            or self.problems
            or any(s > MAX_SECONDS_TO_FAILURE for s in self.failure_seconds)
            or any(a is None or a > MAX_SECONDS_TO_ALERT for a in self.alert_seconds)
        )

    def failure_text(self) -> str:
        if not self.failure_seconds:
            return "-"
        return f"max {max(self.failure_seconds):.0f} s ({len(self.failure_seconds)} runs)"

    def alert_text(self) -> str:
        if not self.alert_seconds:
            return "-"
        got = [a for a in self.alert_seconds if a is not None]
        text = f"{len(got)}/{len(self.alert_seconds)}"
        return f"{text}, max {max(got):.0f} s" if got else text

    def cells(self) -> list[str]:
        if self.skipped:
            return (
                [self.scenario, self.mode, "0", f"skipped: {self.skipped}"]
                + ["-"] * 5
                + ["skipped"]
            )
        leftovers = str(len(self.leftovers))
        return [
            self.scenario,
            self.mode,
            str(self.trials),
            self.injected,
            str(self.lost),
            str(self.duplicated),
            leftovers,
            self.failure_text(),
            self.alert_text(),
            "pass" if self.passed else "FAIL",
        ]


HEADER = [
    "scenario",
    "mode",
    "trials",
    "injected",
    "lost rows",
    "duplicated rows",
    "leftover files/containers/processes",
    "time to FAILURE",
    "alert received",
    "verdict",
]


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def table(rows: list[Row]) -> str:
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(_escape(c) for c in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def details(rows: list[Row]) -> str:
    """Every problem and leftover, by scenario (what the table counts)."""
    out = []
    for row in rows:
        if row.problems or row.leftovers:
            out.append(f"- **{row.scenario} ({row.mode})**")
            out += [f"  - {p}" for p in row.problems[:20]]
            out += [f"  - leftover: {item}" for item in row.leftovers[:20]]
    return "\n".join(out)


def machine() -> str:
    cores = os.cpu_count() or 0
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = 0.0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return (
        f"{platform.machine()}, {cores} cores, {memory:.0f} GiB, "
        f"load average {load:.1f} at the start"
    )


def section(rows: list[Row], seconds: float, command: str, started_machine: str) -> str:
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    parts = [
        BEGIN,
        f"Last run: **{date}**, `{command}`, {seconds / 60:.1f} min, on {started_machine}.",
        "",
        table(rows),
    ]
    found = details(rows)
    if found:
        parts += ["", "What the rows above count:", "", found]
    parts.append(END)
    return "\n".join(parts)


def write(doc: Path, rows: list[Row], seconds: float, command: str, started_machine: str) -> None:
    """Replace the results section of docs/reliability.md (the rest is kept)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    new = section(rows, seconds, command, started_machine)
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: new, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + new + "\n"
    doc.write_text(text, encoding="utf-8")
