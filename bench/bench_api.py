"""The analytical API on 1M generated messages, against /health on the same server.

1. build: 1M messages (bench_load's generator, 10 channels) with reactions on a third,
   two readings of each post's counts (2M observations) and the channels' subscribers
   every 6 hours (the engagement marts' input, as scrapes write it), and detection
   records for 2% of the posts, through the loader, then `dbt build` (models, indexes,
   tests).
2. serve: `tgmed-api serve` (uvicorn, one worker) as its own process, connected with the
   read-only role, exactly as deployed.
3. load: a keep-alive HTTP/1.1 load generator (asyncio streams, N concurrent
   connections, in this process) hits each endpoint for a fixed time (in 5 round-robin
   slices) and records every request's latency; /health on the same server is the
   baseline. Goal: each analytical
   endpoint p99 <= 50 ms and search p99 <= 100 ms, both with API_CACHE_SIZE=0 (every
   request queries the report marts).

The server runs twice: with its cache (the default; reports change only when the
pipeline runs) and with API_CACHE_SIZE=0, so every request queries the marts. The first
request of each endpoint on the cached server is an uncached (cold) answer: its time is
printed too. Each request carries an API key (`Authorization: Bearer`, a key made here
with `tgmed-loader keys`' code and a budget the load cannot spend), the access log on
(INFO); a second server with API_AUTH=false runs beside it on the same database, each
endpoint measured on one then the other in every slice, and the last table compares
each endpoint's p99 with and without authentication (goal: within 10%).

    uv run python bench/bench_api.py [--messages 1000000] [--seconds 5] [--clients 8]
    uv run python bench/bench_api.py --database-url URL   # reuse a built database

Needs a PostgreSQL: DATABASE_URL's server, or the embedded one started here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_load import dbt, make_lake, write_snapshots

from tgmed_common.lake import Lake
from tgmed_common.records import DetectionRecord
from tgmed_devdb.server import create_database, start, stop, with_user
from tgmed_extract.stage import run_extraction
from tgmed_loader.api_keys import create_key
from tgmed_loader.load import load_stream
from tgmed_loader.schema import ensure_api_role, ensure_raw_schema

FILES = 200
ROUNDS = 5  # each endpoint is measured in this many slices, round-robin
CLASSES = [(0, "person"), (39, "bottle"), (41, "cup"), (45, "bowl"), (67, "cell phone")]

# (path, goal): "report" p99 <= 50 ms uncached, "search" (a word in at most ~1% of the
# posts) p99 <= 100 ms, "broad" (a word in 10-40% of the posts: bounded by the page)
# p99 <= 100 ms as well; /health is the baseline
ENDPOINTS = [
    ("/health", "baseline"),
    ("/api/channels", "report"),
    ("/api/channels/bench_channel_03/activity?period=day", "report"),
    (
        "/api/channels/bench_channel_03/activity?period=week&from=2026-07-01&to=2026-09-30",
        "report",
    ),
    ("/api/reports/top-products?limit=10", "report"),
    ("/api/reports/top-products?limit=10&channel=bench_channel_05", "report"),
    ("/api/reports/top-products?limit=10&from=2026-08-01&to=2026-08-31", "report"),
    ("/api/reports/top-products?source=image", "report"),
    ("/api/reports/visual-content", "report"),
    ("/api/reports/visual-content?channel=bench_channel_01&from=2026-07-01", "report"),
    ("/api/reports/prices?product=paracetamol", "report"),
    ("/api/reports/prices?product=paracetamol&from=2026-08-01&to=2026-08-31", "report"),
    ("/api/reports/prices/history?product=paracetamol&period=week", "report"),
    (
        "/api/reports/prices/history?product=paracetamol&period=week&from=2026-07-01&to=2026-09-30",
        "report",
    ),
    ("/api/reports/subscribers?period=week", "report"),
    ("/api/reports/subscribers?period=day&channel=bench_channel_03", "report"),
    ("/api/reports/engagement?period=week", "report"),
    ("/api/reports/engagement?period=day&channel=bench_channel_03&from=2026-07-01", "report"),
    ("/api/reports/reactions?limit=10", "report"),
    ("/api/reports/reactions?limit=10&from=2026-08-01&to=2026-08-31", "report"),
    ("/api/reports/view-growth", "report"),
    ("/api/reports/view-growth?channel=bench_channel_05&from=2026-07-01", "report"),
    ("/api/search/messages?query=zithromax&limit=20", "search"),  # 0.8% of the posts
    ("/api/search/messages?query=blood+pressure&limit=20", "search"),  # 0.9%
    ("/api/search/messages?query=" + quote("ዶቭ") + "&limit=20", "search"),  # 1.3%
    ("/api/search/messages?query=paracetamol&limit=20", "broad"),  # 10%
    ("/api/search/messages?query=" + quote("ፓራሲታሞል") + "&limit=20&offset=20", "broad"),  # 15%
    ("/api/search/messages?query=birr&limit=20", "broad"),  # 41%
]
GOAL_P99_MS = {"report": 50, "search": 100, "broad": 100}


def write_detections(lake: Lake, messages: int, every: int = 50) -> int:
    """Detection records for every `every`-th message, as the yolo stage writes them
    (make_lake puts message ids in order, 1 to N, messages // FILES per file, channel
    cycling over 10)."""
    per_file = messages // FILES
    records: dict[str, list[DetectionRecord]] = {}
    detected = datetime(2026, 11, 2, tzinfo=UTC)
    for message_id in range(1, messages + 1, every):
        channel = f"bench_channel_{((message_id - 1) // per_file) % 10:02d}"
        objects = [
            {"class_id": cid, "class_name": name, "confidence": 0.7, "box": (1.0, 2.0, 3.0, 4.0)}
            for cid, name in CLASSES[message_id % 3 : message_id % 3 + 1 + message_id % 2]
        ]
        records.setdefault(channel, []).append(
            DetectionRecord(
                channel_username=channel,
                message_id=message_id,
                media_path=f"raw/telegram_media/channel={channel}/{message_id}.jpg",
                model_name="bench.onnx",
                model_hash="bench",
                image_width=640,
                image_height=480,
                detections=objects,
                detected_at=detected,
            )
        )
    for channel, rows in records.items():
        lake.write_records(lake.detection_file(date(2026, 11, 2), channel, "bench"), rows)
    return sum(len(rows) for rows in records.values())


def build(url: str, work: Path, messages: int) -> None:
    lake = Lake(work / "lake")
    started = time.perf_counter()
    total = make_lake(lake, messages, FILES, engagement=True)
    write_snapshots(lake)
    images = write_detections(lake, total)
    with psycopg.connect(url) as conn:
        ensure_raw_schema(conn)
        ensure_api_role(conn, "tgmed_api", None)
    extracted = run_extraction(lake)  # products and prices: the extract stage's files
    loaded = load_stream(url, lake, "messages", workers=2)
    load_stream(url, lake, "extractions", workers=2)
    readings = load_stream(url, lake, "observations", workers=2)
    snapshots = load_stream(url, lake, "snapshots", workers=2)
    detections = load_stream(url, lake, "detections", workers=2)
    print(
        f"lake + extract + load: {extracted.messages:,} messages extracted, "
        f"{loaded.rows:,} loaded, {readings.rows:,} readings of their counts, "
        f"{snapshots.rows:,} channel snapshots, {detections.rows:,} detection records "
        f"({time.perf_counter() - started:.0f}s)"
    )
    seconds = dbt(url, work / "dbt-target", "build")
    print(f"dbt build (models, indexes, tests): {seconds:.0f}s")
    assert loaded.rows == total and detections.rows == images


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`tgmed-api serve` as a process, on a free port, until stopped."""

    def __init__(self, api_url: str, **env: str) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the server)
        self.process = subprocess.Popen(
            [shutil.which("tgmed-api") or "tgmed-api", "serve"],
            env={
                **os.environ,
                "API_DATABASE_URL": api_url,
                "API_PORT": str(self.port),
                "API_LOG_LEVEL": "INFO",  # the access log, as served
                **env,
            },
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 30
        while asyncio.run(self._status("/ready")) != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise RuntimeError(f"the API did not start: {self.log.read()[-2000:]!r}")
            time.sleep(0.2)

    async def _status(self, path: str) -> int:
        try:
            status, _ = (await request_once(self.port, path))[0:2]
        except OSError:
            return 0
        return status

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, auth: str = ""
) -> tuple[int, int]:
    """One GET on a kept-alive connection; `auth`: an Authorization header line or ""."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (x.partition(":") for x in lines) if k == "content-length")
    body = await reader.readexactly(length)
    return status, len(body)


async def request_once(port: int, path: str, auth: str = "") -> tuple[int, int, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        started = time.perf_counter()
        status, size = await _request(reader, writer, path, auth)
        return status, size, time.perf_counter() - started
    finally:
        writer.close()


async def hammer(port: int, path: str, clients: int, seconds: float, auth: str = "") -> dict:
    """`clients` keep-alive connections, each sending the next request as soon as the
    last answer is read, for `seconds`; every latency recorded."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (now := time.perf_counter()) < stop_at:
                status, _ = await _request(reader, writer, path, auth)
                latencies.append(time.perf_counter() - now)
                errors += status != 200
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return {"seconds": time.perf_counter() - started, "latencies": latencies, "errors": errors}


def merge(slices: list[dict]) -> dict:
    ordered = sorted(x for one in slices for x in one["latencies"])
    return {
        "rps": len(ordered) / sum(one["seconds"] for one in slices),
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "errors": sum(one["errors"] for one in slices),
        "requests": len(ordered),
    }


def run_phase(
    name: str, servers: dict[str, tuple[Server, str]], clients: int, seconds: float
) -> dict[str, dict]:
    """Every endpoint on each server (label -> the server and the Authorization line its
    requests carry), in round-robin slices: endpoint after endpoint, and for each one
    server after the other, so that a noisy neighbour on the shared cores hits every
    endpoint and every server alike instead of whichever was being measured then."""
    paths = [path for path, _ in ENDPOINTS]
    cold = {
        label: {path: asyncio.run(request_once(server.port, path, auth)) for path in paths}
        for label, (server, auth) in servers.items()
    }
    for label, answers in cold.items():
        for path, (status, _, _) in answers.items():
            assert status == 200, (label, path, status)
    # which server goes first alternates from round to round (A B, then B A): the
    # first one measured after a change of endpoint must not always be the same
    order = list(servers.items())
    slices = [
        {
            (label, path): asyncio.run(hammer(server.port, path, clients, seconds / ROUNDS, auth))
            for path in paths
            for label, (server, auth) in (order if round_ % 2 == 0 else order[::-1])
        }
        for round_ in range(ROUNDS)
    ]
    results = {}
    for label in servers:
        print(f"\n{name}, {label}: {clients} concurrent clients, {seconds:g}s per endpoint")
        merged = {path: merge([one[label, path] for one in slices]) for path in paths}
        print_table(merged, {path: cold[label][path][2] for path in paths})
        results[label] = merged
    return results


def print_table(results: dict[str, dict], cold: dict[str, float]) -> None:
    goals = dict(ENDPOINTS)
    base = results["/health"]["rps"]
    print(
        "| endpoint | kind | first request ms | req/s | p50 ms | p99 ms | ratio vs /health | goal |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for path, r in results.items():
        ratio = r["rps"] / base
        kind = goals[path]
        goal = "" if kind == "baseline" else f"p99 <= {GOAL_P99_MS[kind]} ms: "
        if kind != "baseline":
            goal += "met" if r["p99"] <= GOAL_P99_MS[kind] else "MISSED"
        print(
            f"| `{path}` | {kind} | {cold[path] * 1000:.1f} | {r['rps']:,.0f} | "
            f"{r['p50']:.1f} | {r['p99']:.1f} | {ratio:.2f} | {goal} |"
            + (f" errors: {r['errors']}" if r["errors"] else "")
        )


def compare(with_keys: dict, without: dict, phase: str) -> None:
    """p99 with authentication against the same server without, endpoint by endpoint."""
    print(f"\n{phase}: p99 with a key against API_AUTH=false (goal: at most 1.10)")
    print("| endpoint | p99 ms, key | p99 ms, open | ratio | goal |")
    print("|---|---|---|---|---|")
    ratios = []
    for path, r in with_keys.items():
        if path == "/health":  # open either way
            continue
        ratio = r["p99"] / without[path]["p99"]
        ratios.append(ratio)
        verdict = "met" if ratio <= 1.10 else "MISSED"
        print(
            f"| `{path}` | {r['p99']:.1f} | {without[path]['p99']:.1f} | {ratio:.2f} | {verdict} |"
        )
    ratios.sort()
    print(
        f"{phase}: p99 ratio over {len(ratios)} endpoints: median {statistics.median(ratios):.2f},"
        f" min {ratios[0]:.2f}, max {ratios[-1]:.2f}; within 1.10: "
        f"{sum(r <= 1.10 for r in ratios)} of {len(ratios)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients, cached phase")
    parser.add_argument(
        "--uncached-clients",
        type=int,
        default=1,
        help="concurrent clients with API_CACHE_SIZE=0: 1 measures the latency of a cold "
        "answer; more measures queueing on the machine's cores as well",
    )
    parser.add_argument("--database-url", help="a database built by an earlier run: reuse it")
    parser.add_argument("--keep", type=Path, help="keep the embedded server's data here")
    parser.add_argument("--phases", default="cached,uncached")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    server_dir = None
    try:
        url = args.database_url
        if not url:
            url = os.environ.get("DATABASE_URL")
            if not url:
                server_dir = args.keep or work / "pgdata"
                url = start(server_dir)
            url = create_database(url, "bench_api", replace=True)
            build(url, work, args.messages)
        # the read-only role (a server with password authentication: set API_DATABASE_URL)
        api_url = os.environ.get("API_DATABASE_URL") or with_user(url, "tgmed_api")
        with psycopg.connect(api_url) as conn:
            count = conn.execute("select count(*) from marts.fct_messages").fetchone()[0]
        print(f"serving {count:,} messages through the read-only role tgmed_api")
        with psycopg.connect(url) as conn:
            ensure_raw_schema(conn)  # a database built before API keys existed gets their table
            ensure_api_role(conn, "tgmed_api", None)
            conn.execute("delete from auth.api_keys where name = 'bench'")
            _, key = create_key(conn, "bench", "all", rate_limit=1_000_000_000)
        phases = {
            "cached": ({}, args.clients),
            "uncached": ({"API_CACHE_SIZE": "0"}, args.uncached_clients),
        }
        for name in args.phases.split(","):
            env, clients = phases[name]
            # both servers up at once, measured in alternation (run_phase)
            servers: dict[str, tuple[Server, str]] = {}
            try:
                servers["with a key"] = (
                    Server(api_url, API_AUTH="true", **env),
                    f"Authorization: Bearer {key}\r\n",
                )
                servers["API_AUTH=false"] = (Server(api_url, API_AUTH="false", **env), "")
                results = run_phase(f"{name} server", servers, clients, args.seconds)
            finally:
                for server, _ in servers.values():
                    server.stop()
            compare(results["with a key"], results["API_AUTH=false"], f"{name} server")
    finally:
        if server_dir is not None and args.keep is None:
            stop(server_dir)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
