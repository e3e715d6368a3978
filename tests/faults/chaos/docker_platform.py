"""The platform in docker mode, as compose.yaml runs it: PostgreSQL (the warehouse and
Dagster's storage), the Dagster webserver, daemon and code location, the API; each run
in its own container (DockerRunLauncher), each stage in its own container. The images
are the ones already built (`make images`, tag CHAOS_IMAGE_TAG, default latest): the
suite never builds them (about 15 minutes).

The compose project has fixed names (the engine is shared), so the whole docker part of
the suite holds /tmp/tgmed-docker.lock. Alerts go to the suite's receiver on the host's
docker0 address; the warehouse is read at the PostgreSQL container's address; the lake
is the `tgmed-lake` volume's folder on the host."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from chaos.alerts import AlertReceiver
from chaos.leftovers import crash
from chaos.platform import (
    FORKSERVER,
    JOB,
    MODEL,
    ROOT,
    Outcome,
    TestSecrets,
    finished_or_current,
    free_port,
    log,
)
from chaos.progress import stage_command, without_timeout
from chaos.snapshot import Snapshot, snapshot
from tgmed_orchestrator.dagster_client import DagsterClient, EventLog, Run

LOCK = Path("/tmp/tgmed-docker.lock")
PROJECT = "tgmed"
IMAGES = (
    "scraper",
    "yolo",
    "loader",
    "transform",
    "orchestrator",
    "dagster",
    "postgres",
    "api",
    "proxy",
)


def docker(*argv: str, check: bool = True, timeout: float = 600) -> str:
    done = subprocess.run(
        ["docker", *argv], capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and done.returncode:
        raise RuntimeError(f"docker {' '.join(argv[:4])} failed: {done.stderr[-2000:]}")
    return done.stdout


def engine_ready() -> str | None:
    """None when the engine answers and every image is there; else why not."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        return "the Docker engine does not answer (make images starts it)"
    tag = os.environ.get("CHAOS_IMAGE_TAG", "latest")
    missing = [
        f"tgmed-{name}:{tag}"
        for name in IMAGES
        if subprocess.run(
            ["docker", "image", "inspect", f"tgmed-{name}:{tag}"], capture_output=True, check=False
        ).returncode
    ]
    return f"images missing (make images): {', '.join(missing)}" if missing else None


class DockerPlatform:
    mode = "docker"

    def __init__(self, workdir: Path, local: Any) -> None:
        import docker as docker_sdk

        self.workdir = workdir
        self.local = local  # the local platform: its sample and fake Telegram config
        self.session = local.session
        self.secrets = TestSecrets()
        self.tag = os.environ.get("CHAOS_IMAGE_TAG", "latest")
        self.logs = workdir / "logs"
        self.exports = local.exports
        self.telegram_config = local.telegram_config
        self.telegram_calls = local.telegram_calls
        self.port = free_port()  # the proxy's UI port: the webserver is not published
        self.api_port = free_port()
        self.proxy_api_port = free_port()
        self.ui_password = secrets.token_urlsafe(18)
        login = base64.b64encode(f"chaos:{self.ui_password}".encode()).decode()
        # the proxy's self-signed certificate is made on first start: not pinned here
        # (deploy/e2e.py pins it); the login is what is tested through it
        self.api = DagsterClient(
            f"https://127.0.0.1:{self.port}",
            headers={"Authorization": f"Basic {login}"},
            tls=ssl._create_unverified_context(),  # noqa: S323
        )
        gateway = self._docker0()
        self.receiver = AlertReceiver(
            host=gateway, url_path=f"/alerts/{self.secrets.webhook_token}"
        )
        self.client = docker_sdk.from_env(timeout=120)
        self.run_config: dict[str, Any] = FORKSERVER
        self.env_file = workdir / "docker.env"
        self._lock_file: Any = None
        self._image_findings: dict[str, list[str]] | None = None
        self._scan_lock = threading.Lock()
        self.lake = Path()
        self.url = ""
        self.dagster = None  # no local process tree

    @staticmethod
    def _docker0() -> str:
        out = docker("network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}")
        return out.strip() or "172.17.0.1"

    # --- set-up ---------------------------------------------------------------------
    def lock(self, timeout: float) -> bool:
        """Hold the shared engine's lock (other engineers' e2e runs use the same names)."""
        self._lock_file = LOCK.open("a")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(2)

    def compose_env(self) -> dict[str, str]:
        socket_gid = str(Path("/var/run/docker.sock").stat().st_gid)
        return {
            "POSTGRES_PASSWORD": self.secrets.superuser_password,
            "WAREHOUSE_DB_PASSWORD": self.secrets.database_password,
            "DAGSTER_DB_PASSWORD": self.secrets.storage_password,
            "API_DB_PASSWORD": self.secrets.api_db_password,
            "TELEGRAM_API_ID": "12345",
            "TELEGRAM_API_HASH": self.secrets.telegram_api_hash,
            "TELEGRAM_SESSION": self.secrets.telegram_session,
            "POSTGRES_IMAGE": f"tgmed-postgres:{self.tag}",
            "TGMED_TAG": self.tag,
            "DOCKER_GID": socket_gid,
            "PROXY_UI_PORT": str(self.port),
            "PROXY_API_PORT": str(self.proxy_api_port),
            "PROXY_USER": "chaos",
            "PROXY_PASSWORD": self.ui_password,
            "API_PORT": str(self.api_port),
            "TGMED_SCRAPE_SOURCE": "export",
            "TGMED_EXPORT_ROOT": "/exports",
            "TGMED_DOCKER_EXPORTS_VOLUME": "tgmed-exports",
            "TGMED_DOCKER_MODELS_VOLUME": "tgmed-models",
            "DETECT_MODEL": f"/models/{MODEL.name}",
            "ALERT_WEBHOOK_URL": self.receiver.url,
            "ALERT_DAGSTER_UI_URL": f"https://127.0.0.1:{self.port}",
            **getattr(self, "extra_env", {}),
        }

    def compose(self, *argv: str, check: bool = True, timeout: float = 900) -> str:
        env = {**os.environ, **self.compose_env()}
        done = subprocess.run(
            ["docker", "compose", "--env-file", str(self.env_file), "-f", "compose.yaml", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and done.returncode:
            raise RuntimeError(f"docker compose {' '.join(argv)} failed: {done.stderr[-3000:]}")
        return done.stdout

    def _fill_volume(self, volume: str, source: Path) -> None:
        docker("volume", "create", volume)
        docker(
            "run",
            "--rm",
            "--user",
            "0",
            "--entrypoint",
            "sh",
            "-v",
            f"{volume}:/target",
            "-v",
            f"{source}:/source:ro",
            f"tgmed-scraper:{self.tag}",
            "-c",
            "rm -rf /target/* && cp -r /source/. /target/ && chmod -R a+rX /target",
        )

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.compose_env().items()))
        self.env_file.chmod(0o600)
        self.down()  # whatever an earlier, interrupted session left
        self._fill_volume("tgmed-exports", self.exports)
        self._fill_volume("tgmed-models", MODEL.parent)
        log(f"docker compose up (images :{self.tag}), Dagster on :{self.port}")
        self.compose("up", "-d", "--wait", "--no-build")
        self.lake = Path(docker("volume", "inspect", "tgmed-lake", "-f", "{{.Mountpoint}}").strip())
        self.url = self._warehouse_url()
        self.api.wait_ready(JOB, timeout=300)

    def _postgres(self):
        [container] = self.client.containers.list(
            filters={
                "label": [
                    f"com.docker.compose.project={PROJECT}",
                    "com.docker.compose.service=postgres",
                ]
            }
        )
        return container

    def _warehouse_url(self, superuser: bool = False) -> str:
        """The warehouse role's URL (what the stages get), or the superuser's on the
        `postgres` database (resetting the warehouse between trials)."""
        container = self._postgres()
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"]["tgmed"]["IPAddress"]
        if superuser:
            return (
                f"postgresql://postgres:{self.secrets.superuser_password}@{address}:5432/postgres"
            )
        return f"postgresql://tgmed:{self.secrets.database_password}@{address}:5432/tgmed"

    def down(self) -> None:
        subprocess.run(
            ["bash", "deploy/prune-containers.sh", "--all"],
            cwd=ROOT,
            check=False,
            capture_output=True,
        )
        self.compose("down", "-v", "--remove-orphans", check=False)
        docker("volume", "rm", "-f", "tgmed-exports", "tgmed-models", check=False)

    def close(self) -> None:
        try:
            self.save_logs()
            self.down()
        finally:
            self.receiver.close()
            if self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._lock_file.close()

    # --- data -----------------------------------------------------------------------
    def reset_data(self) -> None:
        for entry in self.lake.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        # the warehouse role may not drop its database from under the API's sessions:
        # the superuser does, as compose's postgres-roles made it (tgmed owns it; the
        # init-db stage of the next run grants the API's role again)
        with psycopg.connect(self._warehouse_url(superuser=True), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists tgmed with (force)"))
            conn.execute(sql.SQL("create database tgmed owner tgmed"))
            conn.execute(sql.SQL("revoke all on database tgmed from public"))

    def snapshot(self) -> Snapshot:
        return snapshot(self.lake, self.url, ROOT / "dbt")

    def restart_database(self) -> float:
        """`docker compose restart postgres`: a fast shutdown (sessions terminated), then
        the same container starts again; returns how long that took."""
        started = time.monotonic()
        self.compose("restart", "postgres")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.url, connect_timeout=3):
                    break
            except psycopg.OperationalError:
                time.sleep(0.5)
        return time.monotonic() - started

    def crash(self, run_id: str) -> list[int]:
        """Scenario 8: the main processes of the run worker's container, the stages'
        containers, the daemon's and PostgreSQL's, SIGKILLed together from the host (as
        the OOM killer or a crash would: compose's restart policy applies, which it does
        not after `docker kill`)."""
        containers = [
            *self.client.containers.list(filters={"label": [f"dagster/run_id={run_id}"]}),
            *self.stage_containers(run_id),
            *self.client.containers.list(
                filters={
                    "label": [
                        f"com.docker.compose.project={PROJECT}",
                        "com.docker.compose.service=dagster-daemon",
                    ]
                }
            ),
            self._postgres(),
        ]
        pids = {c.attrs["State"]["Pid"] for c in containers if c.attrs["State"].get("Pid")}
        return crash(pids)

    def start_after_crash(self) -> None:
        """What a user does after it: `docker compose up` (the killed services may have
        been restarted by their policy already)."""
        self.compose("up", "-d", "--wait", "--no-build")
        self.url = self._warehouse_url()
        self.api.wait_ready(JOB, timeout=300)

    # --- processes and containers ---------------------------------------------------
    def stage_containers(self, run_id: str | None = None, *, running: bool = True) -> list:
        labels = ["tgmed.stage"] + ([f"dagster/run-id={run_id}"] if run_id else [])
        return self.client.containers.list(all=not running, filters={"label": labels})

    def stage_processes(self) -> dict[int, str]:
        """Host pid -> command of every running stage container's main process."""
        found = {}
        for container in self.stage_containers():
            with contextlib.suppress(Exception):
                pid = container.attrs["State"]["Pid"]
                command = stage_command(without_timeout(container.attrs["Config"]["Cmd"] or []))
                if pid and command:
                    found[pid] = command
        return found

    def run_worker_pid(self, run_id: str, events: EventLog) -> int | None:
        for container in self.client.containers.list(
            filters={"label": [f"dagster/run_id={run_id}"]}
        ):
            return container.attrs["State"]["Pid"] or None
        return None

    def wait_no_leftovers(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            left = self.leftover_containers()
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(1)

    def clear_leftovers(self) -> None:
        for label in ("tgmed.run", "tgmed.stage"):
            for container in self.client.containers.list(filters={"label": [label]}):
                with contextlib.suppress(Exception):
                    container.remove(force=True)

    def leftover_containers(self) -> list[str]:
        """Run or stage containers still running when no run is in flight."""
        left = []
        for label in ("tgmed.run", "tgmed.stage"):
            for container in self.client.containers.list(filters={"label": [label]}):
                left.append(f"container {container.name} ({label}, {container.status})")
        return left

    # --- runs -----------------------------------------------------------------------
    def launch(self, run_config: dict[str, Any] | None = None, job: str | None = None) -> str:
        config = self.run_config if run_config is None else run_config
        return self.api.launch(job or JOB, config)

    def wait(self, run_id: str, timeout: float = 1200) -> Outcome:
        started = time.monotonic()
        run = self.wait_status(run_id, timeout)
        return Outcome(run, self.api.events(run_id), time.monotonic() - started)

    def run(self, timeout: float = 1200, **launch: Any) -> Outcome:
        return self.wait(self.launch(**launch), timeout)

    def wait_status(self, run_id: str, timeout: float) -> Run:
        return finished_or_current(self.api, run_id, timeout, poll=1.0)

    def save_logs(self) -> None:
        """Every container's output into the work folder (scenario 7 reads it)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        for container in (
            self.client.containers.list(
                all=True, filters={"label": [f"com.docker.compose.project={PROJECT}"]}
            )
            + self.client.containers.list(all=True, filters={"label": ["tgmed.stage"]})
            + (self.client.containers.list(all=True, filters={"label": ["tgmed.run"]}))
        ):
            with contextlib.suppress(Exception):
                (self.logs / f"{container.name}.log").write_bytes(container.logs())

    def captured_logs(self) -> list[Path]:
        self.save_logs()
        files = [p for p in self.logs.rglob("*") if p.is_file()]
        compute = docker(
            "volume", "inspect", "tgmed-dagster-logs", "-f", "{{.Mountpoint}}", check=False
        ).strip()
        if compute:
            files += [p for p in Path(compute).rglob("*") if p.is_file()]
        return files

    def set_stage_memory(self, limits: str) -> None:
        """TGMED_DOCKER_STAGE_MEMORY for the runs from now on: the daemon, which hands it
        to each run container, is recreated with it."""
        self.extra_env = {"TGMED_DOCKER_STAGE_MEMORY": limits} if limits else {}
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in self.compose_env().items()))
        self.compose("up", "-d", "--wait", "--no-build", "dagster-daemon")
        self.api.wait_ready(JOB, timeout=300)

    # --- scenario 7 -----------------------------------------------------------------
    def scan_containers(self, row: Any) -> None:
        """No stage container may have the Docker socket, Dagster's storage credentials
        or the PostgreSQL superuser's password; no image may carry a secret or a
        secrets file."""
        daemon = self.client.containers.list(
            filters={
                "label": [
                    f"com.docker.compose.project={PROJECT}",
                    "com.docker.compose.service=dagster-daemon",
                ]
            }
        )
        storage_url = next(
            (
                e.split("=", 1)[1]
                for c in daemon
                for e in c.attrs["Config"]["Env"] or []
                if e.startswith("DAGSTER_PG_URL=")
            ),
            "",
        )
        storage_password = storage_url.split("://", 1)[-1].split("@", 1)[0].partition(":")[2]
        inspected = self.stage_containers(running=False)
        for container in inspected:
            attrs = container.attrs
            name = (
                f"{attrs['Config']['Labels'].get('tgmed.invocation', '?')} ({container.name[:12]})"
            )
            for mount in attrs.get("Mounts") or []:
                if "docker.sock" in (mount.get("Source") or "") + (mount.get("Destination") or ""):
                    row.problems.append(f"stage container {name} mounts the Docker socket")
            env = attrs["Config"]["Env"] or []
            if any(e.startswith(("DAGSTER_PG_URL=", "POSTGRES_PASSWORD=")) for e in env):
                row.problems.append(f"stage container {name} has Dagster's storage URL")
            elif storage_password and any(storage_password in e for e in env):
                row.problems.append(
                    f"stage container {name} holds the password of Dagster's storage role "
                    "(its DATABASE_URL uses the same role as DAGSTER_PG_URL)"
                )
            if any(self.secrets.superuser_password in e for e in env):
                row.problems.append(f"stage container {name} holds the superuser's password")
        row.trials += len(inspected)
        images = self.scan_images()
        for image, findings in images.items():
            row.problems += [f"image {image}: {finding}" for finding in findings]
        row.trials += len(images)
        row.injected += f"; {len(inspected)} stage containers inspected, {len(images)} images saved"

    def scan_images(self) -> dict[str, list[str]]:
        """Every image of the platform, scanned once (`scan_image`): image -> findings.
        The suite never builds or changes an image, so run_chaos.py scans them while
        the local scenarios run (about a minute of `docker save`) and scenario 7 reads
        the result."""
        with self._scan_lock:  # scenario 7 waits for a scan under way, then reads it
            if self._image_findings is None:
                values = self.secrets.values()
                images = [f"tgmed-{name}:{self.tag}" for name in IMAGES]
                self._image_findings = {image: scan_image(image, values) for image in images}
            return self._image_findings


def scan_image(image: str, secrets: dict[str, str]) -> list[str]:
    """`docker save IMAGE`, read as it streams: secret values anywhere in its bytes,
    and files that hold secrets by their name (.env, *.session) in any layer."""
    import tarfile

    findings: set[str] = set()
    needles = {label: value.encode() for label, value in secrets.items()}
    keep = max(len(v) for v in needles.values())
    process = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    assert process.stdout is not None
    tail = b""

    class Scanning:
        """The saved stream, scanned for secret values as tarfile reads it."""

        def read(self, size: int = -1) -> bytes:
            nonlocal tail
            data = process.stdout.read(size if size > 0 else 1 << 20)
            window = tail + data
            for label, needle in needles.items():
                if needle in window:
                    findings.add(f"holds the value of {label}")
            tail = window[-keep:]
            return data

    with tarfile.open(fileobj=Scanning(), mode="r|") as outer:
        for member in outer:
            # layers: <id>/layer.tar (docker save) or blobs/sha256/<digest> (OCI layout)
            if not member.isfile() or not (
                member.name.endswith(".tar") or member.name.startswith("blobs/")
            ):
                continue
            layer = outer.extractfile(member)
            if layer is None:
                continue
            with (
                contextlib.suppress(tarfile.TarError),
                tarfile.open(fileobj=layer, mode="r|") as inner,
            ):
                for item in inner:
                    base = item.name.rsplit("/", 1)[-1]
                    if base == ".env" or base.endswith(".session"):
                        findings.add(f"has a secrets file {item.name}")
    process.wait()
    return sorted(findings)


__all__ = ["DockerPlatform", "engine_ready", "json"]
