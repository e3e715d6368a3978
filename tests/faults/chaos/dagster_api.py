"""Dagster as a user drives it: the webserver's GraphQL API (what the UI sends). Launch
a job, read a run's status and its event log; nothing else of Dagster is imported."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

WORKSPACE = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name jobs { name } } }
          ... on PythonError { message }
        }
      }
    }
  }
}"""
LAUNCH = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}"""
RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status startTime endTime jobName }
  }
}"""
EVENTS = """
query Events($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 5000) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message timestamp level stepKey }
        ... on ExecutionStepFailureEvent { error { message causes { message } } }
        ... on ExecutionStepUpForRetryEvent { error { message causes { message } } }
        ... on RunFailureEvent { pipelineName }
      }
    }
    ... on PythonError { message }
  }
}"""


class DagsterApiError(RuntimeError):
    pass


@dataclass
class Run:
    run_id: str
    status: str
    start_time: float | None
    end_time: float | None


@dataclass
class EventLog:
    """A run's events, read incrementally (the cursor remembers what was read)."""

    run_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    cursor: str | None = None

    def messages(self) -> list[str]:
        return [e.get("message") or "" for e in self.events]

    def step_events(self, step_key: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("stepKey") == step_key]

    def first_failure_at(self) -> float | None:
        """When the first step failed (or failed and was set up for a retry): epoch s."""
        for event in self.events:
            if event["__typename"] in ("ExecutionStepFailureEvent", "ExecutionStepUpForRetryEvent"):
                return int(event["timestamp"]) / 1000
        return None

    def retries(self) -> list[str]:
        """The error texts of every step set up for a retry."""
        found = []
        for event in self.events:
            if event["__typename"] != "ExecutionStepUpForRetryEvent":
                continue
            error = event.get("error") or {}
            found.append(error.get("message") or "")
            found.extend(c.get("message") or "" for c in error.get("causes") or [])
        return [f for f in found if f]

    def failures(self) -> list[str]:
        """Every failure text in the log: step failures (with their causes), the run's."""
        found = []
        for event in self.events:
            if "Failure" not in event["__typename"]:
                continue
            found.append(event.get("message") or "")
            error = event.get("error") or {}
            found.append(error.get("message") or "")
            found.extend(c.get("message") or "" for c in error.get("causes") or [])
        return [f for f in found if f]


class DagsterApi:
    def __init__(
        self,
        url: str,
        job: str = "telegram_pipeline",
        headers: dict[str, str] | None = None,
        context: Any = None,
    ) -> None:
        """`headers`, `context`: the proxy's login and TLS context (docker mode)."""
        self.url = url.rstrip("/")
        self.job = job
        self.headers = headers or {}
        self.context = context
        self.location: str | None = None
        self.repository = "__repository__"

    def query(
        self, query: str, variables: dict[str, Any] | None = None, patience: float = 180
    ) -> dict[str, Any]:
        """One GraphQL request. The webserver may answer 5xx or not at all for a while
        when its storage goes away (PostgreSQL restarted under it, in docker mode): asked
        again for up to `patience` seconds."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        deadline = time.monotonic() + patience
        while True:
            request = urllib.request.Request(  # noqa: S310 (a local URL)
                f"{self.url}/graphql", body, {"Content-Type": "application/json", **self.headers}
            )
            try:
                with urllib.request.urlopen(request, timeout=60, context=self.context) as response:  # noqa: S310
                    answer = json.load(response)
                break
            except urllib.error.HTTPError as error:
                if error.code < 500 or time.monotonic() > deadline:
                    raise
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
            time.sleep(2)
        if answer.get("errors"):
            raise DagsterApiError(f"GraphQL errors: {json.dumps(answer['errors'])[:2000]}")
        return answer["data"]

    def wait_ready(self, timeout: float) -> None:
        """Until the webserver answers and a code location offering the job is loaded."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                data = self.query(WORKSPACE)["workspaceOrError"]
            except (OSError, urllib.error.URLError, DagsterApiError) as error:
                last = str(error)
                time.sleep(1)
                continue
            for entry in data.get("locationEntries") or []:
                location = entry.get("locationOrLoadError") or {}
                if location.get("__typename") == "PythonError":
                    last = location["message"][:1000]
                for repo in location.get("repositories") or []:
                    if any(job["name"] == self.job for job in repo["jobs"]):
                        self.location, self.repository = entry["name"], repo["name"]
                        return
            time.sleep(1)
        raise DagsterApiError(f"Dagster at {self.url} not ready after {timeout:.0f} s: {last}")

    def launch(self, run_config: dict[str, Any] | None = None, job: str | None = None) -> str:
        if self.location is None:
            raise DagsterApiError("call wait_ready() first")
        params = {
            "selector": {
                "repositoryLocationName": self.location,
                "repositoryName": self.repository,
                "jobName": job or self.job,
            },
            "runConfigData": run_config or {},
        }
        result = self.query(LAUNCH, {"executionParams": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise DagsterApiError(f"launchRun refused: {json.dumps(result)[:2000]}")
        return result["run"]["runId"]

    def run(self, run_id: str) -> Run:
        data = self.query(RUN, {"runId": run_id})["runOrError"]
        if data["__typename"] != "Run":
            raise DagsterApiError(f"no run {run_id}: {data['__typename']}")
        return Run(run_id, data["status"], data.get("startTime"), data.get("endTime"))

    def read_events(self, log: EventLog) -> EventLog:
        """Append the events written since the last read."""
        while True:
            data = self.query(EVENTS, {"runId": log.run_id, "cursor": log.cursor})["logsForRun"]
            if data["__typename"] != "EventConnection":
                raise DagsterApiError(f"events of {log.run_id}: {json.dumps(data)[:1000]}")
            log.events.extend(data["events"])
            log.cursor = data["cursor"] or log.cursor
            if not data.get("hasMore"):
                return log

    def events(self, run_id: str) -> EventLog:
        return self.read_events(EventLog(run_id))

    def wait_finished(self, run_id: str, timeout: float, poll: float = 1.0) -> Run:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run.status in FINISHED:
                return run
            if time.monotonic() > deadline:
                return run  # the caller reports a run left unfinished
            time.sleep(poll)
