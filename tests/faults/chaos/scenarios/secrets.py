"""Scenario 7: secrets. Every secret the platform reads was a fresh random value for this
session (platform.TestSecrets); after the other scenarios (which made runs crash, retry
and fail in every way), none of them may appear in: the captured logs (Dagster's own
output, every run's compute logs, dbt's log), every run's Dagster event log read back
through GraphQL (messages, metadata, errors with their stacks), the alert payloads, and
the lake. In docker mode the built images (`docker save`) and the stage containers
(`docker inspect`: no Docker socket, no Dagster storage credentials) are checked too
(docker_platform.py)."""

from __future__ import annotations

import json
import random
import time

from chaos.baseline import Baseline
from chaos.platform import LocalPlatform, log
from chaos.report import Row

RUNS = "query Runs { runsOrError(limit: 10000) { __typename ... on Runs { results { runId } } } }"
EVENTS = """
fragment Meta on MetadataEntry {
  label description
  ... on TextMetadataEntry { text }
  ... on JsonMetadataEntry { jsonString }
  ... on MarkdownMetadataEntry { mdStr }
  ... on UrlMetadataEntry { url }
  ... on PathMetadataEntry { path }
}
query Everything($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 5000) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on MessageEvent { message }
        ... on ExecutionStepOutputEvent { metadataEntries { ...Meta } }
        ... on ExecutionStepFailureEvent {
          error { message stack causes { message stack } }
          failureMetadata { metadataEntries { ...Meta } }
        }
        ... on EngineEvent { metadataEntries { ...Meta } error { message stack } }
        ... on MaterializationEvent { metadataEntries { ...Meta } }
        ... on RunFailureEvent { error { message stack } }
      }
    }
  }
}"""


def find_secrets(name: str, data: bytes, secrets: dict[str, str], found: list[str]) -> None:
    for label, value in secrets.items():
        if value.encode() in data:
            found.append(f"{label} in {name}")


def event_logs(platform: LocalPlatform) -> dict[str, bytes]:
    """run id -> everything its event log holds, as JSON."""
    runs = platform.api.query(RUNS)["runsOrError"].get("results") or []
    out = {}
    for run in runs:
        events, cursor = [], None
        while True:
            data = platform.api.query(EVENTS, {"runId": run["runId"], "cursor": cursor})
            page = data["logsForRun"]
            events += page.get("events") or []
            cursor = page.get("cursor")
            if not page.get("hasMore"):
                break
        out[run["runId"]] = json.dumps(events).encode()
    return out


def scan_local(platform: LocalPlatform, row: Row) -> int:
    """Scan everything local mode produces; returns how many artefacts were read."""
    secrets = platform.secrets.values()
    found: list[str] = []
    scanned = 0
    for path in platform.captured_logs():
        name = path.relative_to(platform.workdir) if path.is_relative_to(platform.workdir) else path
        find_secrets(f"log {name}", path.read_bytes(), secrets, found)
        scanned += 1
    for run_id, data in event_logs(platform).items():
        find_secrets(f"event log of run {run_id[:8]}", data, secrets, found)
        scanned += 1
    for alert in platform.receiver.alerts:
        find_secrets(f"alert at {alert.received_at:.0f}", alert.body.encode(), secrets, found)
        scanned += 1
    if platform.lake.is_dir():
        for path in platform.lake.rglob("*"):
            if path.is_file() and path.stat().st_size < 50 * 2**20:
                find_secrets(f"lake file {path.name}", path.read_bytes(), secrets, found)
                scanned += 1
    row.problems += [f"secret found: {f}" for f in sorted(set(found))]
    return scanned


def run(platform: LocalPlatform, baseline: Baseline, rng: random.Random) -> Row:
    row = Row("7. secrets", platform.mode)
    started = time.monotonic()
    scanned = scan_local(platform, row)
    row.trials = scanned
    row.injected = f"{len(platform.secrets.values())} random secret values, {scanned} artefacts"
    extra = getattr(platform, "scan_containers", None)
    if extra is not None:
        extra(row)
    log(f"  {row.injected}: {len(row.problems)} findings")
    row.seconds = time.monotonic() - started
    return row
