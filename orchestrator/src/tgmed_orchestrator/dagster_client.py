"""Dagster as a user drives it: its webserver's GraphQL API, the one client of it.

`tgmed-orchestrator check-ui`, both e2e scripts (through the proxy: its login, its pinned
certificate), the fault suite and the tests talk to Dagster through `DagsterClient`.
Launching, a run's status and terminating are dagster-graphql's `DagsterGraphQLClient`;
the few queries it lacks (the workspace, a run's times and events, the asset catalog, a
job's runs) go through the same transport. Every wait is one `wait_until`.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from gql.transport import Transport
from graphql import ExecutionResult, OperationDefinitionNode, OperationType

from tgmed_orchestrator.dagster_queries import ASSETS, EVENTS, JOB_RUNS, RUN, RUNS, WORKSPACE

FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
T = TypeVar("T")


class DagsterApiError(RuntimeError):
    """Dagster refused or could not answer a request (its words in the message)."""


def _reason(error: DagsterGraphQLClientError) -> str:
    """Dagster's reason (RunConfigValidationInvalid and its errors, ...), or, for a request
    that failed underneath dagster-graphql, that failure (not its text around the query)."""
    return str(error.__cause__ or error)[:3000]


def wait_until(
    ready: Callable[[], T], timeout: float, what: str | Callable[[], str], poll: float = 1.0
) -> T:
    """`ready()` until it returns something true (returned), for at most `timeout`
    seconds; then TimeoutError naming `what` (a text, or a function giving the last state)."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        if time.monotonic() > deadline:
            state = what() if callable(what) else what
            raise TimeoutError(f"{state} after {timeout:.0f} s")
        time.sleep(poll)


class HttpTransport(Transport):
    """GraphQL over HTTP(S) with urllib: the headers (a proxy's login), a TLS context (a
    pinned certificate), and patience: for up to `patience` seconds a request is sent again
    while the webserver refuses connections or answers 5xx (its storage restarting); a
    mutation only while connections are refused, so a launch never happens twice."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        tls: ssl.SSLContext | None,
        patience: float,
        timeout: float,
    ) -> None:
        self.url, self.headers, self.tls = url, headers, tls
        self.patience, self.timeout = patience, timeout

    def post(self, query: str, variables: dict[str, Any] | None, mutation: bool = False) -> dict:
        """The answer's JSON ({"data": ..., "errors": ...})."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        headers = {"Content-Type": "application/json", **self.headers}
        deadline = time.monotonic() + self.patience
        while True:
            request = urllib.request.Request(self.url, body, headers)  # noqa: S310 (our URL)
            try:
                answer = urllib.request.urlopen(request, timeout=self.timeout, context=self.tls)  # noqa: S310
                with answer:
                    return json.load(answer)
            except urllib.error.HTTPError as error:
                if mutation or error.code < 500 or time.monotonic() > deadline:
                    raise DagsterApiError(
                        f"{self.url}: HTTP {error.code} {error.read()[:300]!r}"
                    ) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                reason = getattr(error, "reason", error)
                refused = isinstance(reason, ConnectionRefusedError | ConnectionResetError)
                if (mutation and not refused) or time.monotonic() > deadline:
                    raise DagsterApiError(f"{self.url}: {reason}") from None
            time.sleep(2)

    def execute(self, request, *args: Any, **kwargs: Any) -> ExecutionResult:
        mutation = any(
            isinstance(d, OperationDefinitionNode) and d.operation == OperationType.MUTATION
            for d in request.document.definitions
        )
        payload = request.payload
        answer = self.post(payload["query"], payload.get("variables"), mutation)
        return ExecutionResult(data=answer.get("data"), errors=answer.get("errors"))


@dataclass
class Run:
    run_id: str
    status: str
    start_time: float | None
    end_time: float | None

    @property
    def seconds(self) -> float:
        """From the run's start to its end, as Dagster recorded them (0: it never started)."""
        return (self.end_time or 0) - (self.start_time or 0) if self.start_time else 0.0


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

    def _errors(self, wanted: Callable[[str], bool]) -> list[str]:
        found = []
        for event in (e for e in self.events if wanted(e["__typename"])):
            found.append(event.get("message") or "")
            error = event.get("error") or {}
            found.append(error.get("message") or "")
            found.extend(c.get("message") or "" for c in error.get("causes") or [])
        return [f for f in found if f]

    def retries(self) -> list[str]:
        """The texts of every step set up for a retry (its error and that error's causes)."""
        return self._errors(lambda kind: kind == "ExecutionStepUpForRetryEvent")

    def failures(self, retries: bool = False) -> list[str]:
        """Every failure text: step failures (with their causes) and the run's; with
        `retries`, the texts of steps set up for a retry too."""
        return self._errors(lambda kind: "Failure" in kind or (retries and "Retry" in kind))


class DagsterClient:
    """One Dagster webserver at `url` (http or https; `headers`: a proxy's login; `tls`:
    the context that trusts its certificate)."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        patience: float = 180,
        timeout: float = 120,
    ) -> None:
        self.url = url.rstrip("/")
        self.transport = HttpTransport(f"{self.url}/graphql", headers or {}, tls, patience, timeout)
        where = urllib.parse.urlsplit(self.url)
        self.client = DagsterGraphQLClient(
            where.hostname or "127.0.0.1",
            where.port,
            transport=self.transport,
            use_https=where.scheme == "https",
        )
        self.location: str | None = None
        self.repository = "__repository__"

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.transport.post(query, variables)
        if answer.get("errors"):
            raise DagsterApiError(f"GraphQL errors: {json.dumps(answer['errors'])[:2000]}")
        return answer["data"]

    def wait_ready(self, job: str, timeout: float) -> None:
        """Until the webserver answers and a loaded code location offers `job`."""
        last = "no answer"

        def offered() -> bool:
            nonlocal last
            try:
                entries = self.query(WORKSPACE)["workspaceOrError"].get("locationEntries") or []
            except DagsterApiError as error:
                last = str(error)
                return False
            for entry in entries:
                location = entry.get("locationOrLoadError") or {}
                last = location.get("message", location.get("__typename", "loading"))[:1000]
                for repo in location.get("repositories") or []:
                    if any(j["name"] == job for j in repo["jobs"]):
                        self.location, self.repository = entry["name"], repo["name"]
                        return True
            return False

        wait_until(offered, timeout, lambda: f"Dagster at {self.url} offers no {job}: {last}")

    def launch(
        self,
        job: str,
        run_config: dict | None = None,
        tags: dict | None = None,
        assets: list[str] | None = None,
    ) -> str:
        """The run's id; DagsterApiError with Dagster's reason when it refuses. `assets`:
        only these of the job's assets (`marts/dim_dates`), with their checks, as the UI's
        "Materialize selected"."""
        try:
            return self.client.submit_job_execution(
                job,
                self.location,
                self.repository,
                run_config=run_config or {},
                tags=tags,
                asset_selection=[a.split("/") for a in assets] if assets else None,
            )
        except DagsterGraphQLClientError as error:
            raise DagsterApiError(f"launching {job} refused: {_reason(error)}") from None

    def status(self, run_id: str) -> str:
        try:
            return self.client.get_run_status(run_id).value
        except DagsterGraphQLClientError as error:
            raise DagsterApiError(f"the status of run {run_id}: {_reason(error)}") from None

    def terminate(self, run_id: str) -> None:
        try:
            self.client.terminate_run(run_id)
        except DagsterGraphQLClientError as error:
            raise DagsterApiError(f"terminating run {run_id}: {_reason(error)}") from None

    def run(self, run_id: str) -> Run:
        data = self.query(RUN, {"runId": run_id})["runOrError"]
        if data["__typename"] != "Run":
            raise DagsterApiError(f"no run {run_id}: {data['__typename']}")
        return Run(run_id, data["status"], data.get("startTime"), data.get("endTime"))

    def wait_finished(self, run_id: str, timeout: float, poll: float = 1.0) -> Run:
        """The run once finished; TimeoutError (its last status) when it is not in time."""
        status = "unknown"

        def finished() -> Run | None:
            nonlocal status
            run = self.run(run_id)
            status = run.status
            return run if status in FINISHED else None

        return wait_until(finished, timeout, lambda: f"run {run_id} still {status}", poll)

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

    def assets(self) -> list[dict[str, Any]]:
        """The catalog: each asset's latest materialization and its checks' executions."""
        return self.query(ASSETS)["assetNodes"]

    def job_runs(self, job: str, location: str | None = None) -> list[dict[str, Any]]:
        """The job's latest runs as the UI lists them: on the job's page (within the code
        location `location`), or on the Runs page (any run of that name) without one."""
        if location is None:
            return self.query(RUNS, {"job": job})["runsOrError"].get("results") or []
        variables = {"job": job, "location": location, "repository": self.repository}
        found = self.query(JOB_RUNS, variables)["pipelineOrError"]
        if found["__typename"] != "Pipeline":
            raise DagsterApiError(f"the UI at {self.url} has no job {job} in {location}: {found}")
        return found["runs"]
