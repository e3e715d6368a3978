"""End to end through containers, as a user runs the platform (.ci/run calls this).

Builds every image offline (deploy/offline/build.sh: engine, base images, wheelhouse),
`docker compose up -d --wait`, checks that the published ports listen on 127.0.0.1 only
and that the proxy refuses the Dagster UI without its login, launches
`telegram_pipeline` through the webserver's GraphQL API exactly as the UI does, through
the proxy (TLS, the login) (the sample's Telegram Desktop exports as the
source, the shared COCO model for detection), waits for SUCCESS, checks that every stage
ran in its own container from its own image, and over GraphQL that the catalog holds the
lake, raw and every dbt model asset materialized by that run with numeric metadata and
every dbt test as a passing check (the stages reported through Dagster Pipes from their
containers); checks that the API refuses a request without a key and asks it, through
the proxy with a key made by `tgmed-loader keys create`, for top products and a
channel's activity, launches the job
again (same marts), runs the same job in local mode on the same sample (the same row
count in every mart), launches a run from Telegram with the compose defaults (it plans
the shipped channel list and fails on the missing credentials, not on a missing file), a
transform with a 1 s stage timeout (stopped, fails without retry), kills a stage
container in the middle of another run (the run fails within 2 minutes and the failure
alert arrives), then `docker compose down -v` and checks that no container is left.

    python deploy/e2e.py [--skip-build] [--keep]

Talks only to this machine: the published ports on 127.0.0.1 and the compose network.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))
import asset_parity  # noqa: E402
from mart_counts import (  # noqa: E402
    MODEL,
    differences,
    local_mode_counts,
    mart_counts,
    sample_and_truth,
)

from tgmed_orchestrator.dagster_client import DagsterClient  # noqa: E402
from tgmed_orchestrator.launchers import DEFAULT_IMAGES  # noqa: E402

PROJECT = "tgmed"
UI_LOGIN = "e2e"
# each stage's image (the loader image carries the extract stage), as the launchers name them
STAGE_IMAGES = {stage: image.split(":")[0] for stage, image in DEFAULT_IMAGES.items()}


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sh(*argv: str, env: dict | None = None, check: bool = True, capture: bool = False) -> str:
    done = subprocess.run(
        argv, env={**os.environ, **(env or {})}, text=True, capture_output=capture, check=False
    )
    if check and done.returncode:
        detail = (done.stderr or "")[-3000:] if capture else ""
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(argv)}\n{detail}")
    return done.stdout if capture else ""


class Platform:
    def __init__(self, env_file: Path, env: dict[str, str]) -> None:
        self.env_file = env_file
        self.env = env
        # the UI and the API through the proxy: TLS (its certificate, read from the
        # proxy, is the only one trusted), the UI's login
        self.ui = f"https://127.0.0.1:{env['PROXY_UI_PORT']}"
        self.api = f"https://127.0.0.1:{env['PROXY_API_PORT']}"
        login = f"{env['PROXY_USER']}:{env['PROXY_PASSWORD']}".encode()
        self.basic = "Basic " + base64.b64encode(login).decode()
        self._tls: ssl.SSLContext | None = None
        self._dagster: DagsterClient | None = None

    def tls(self) -> ssl.SSLContext:
        if self._tls is None:
            certificate = self.compose("exec", "-T", "proxy", "cat", "/certs/tls.crt", capture=True)
            self._tls = ssl.create_default_context(cadata=certificate)
        return self._tls

    def ui_status(self, path: str, login: str | None) -> int:
        """The proxy's answer for a UI path with this Authorization (None: none)."""
        headers = {"Authorization": login} if login else {}
        request = urllib.request.Request(self.ui + path, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.tls()) as response:  # noqa: S310
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def compose(self, *argv: str, capture: bool = False) -> str:
        files = ["-f", "compose.yaml", "-f", "deploy/compose.e2e.yaml"]
        return sh(
            "docker",
            "compose",
            "--env-file",
            str(self.env_file),
            *files,
            *argv,
            env=self.env,
            capture=capture,
        )

    def dagster(self) -> DagsterClient:
        """The webserver through the proxy (its login, its certificate)."""
        if self._dagster is None:
            headers = {"Authorization": self.basic}
            self._dagster = DagsterClient(self.ui, headers=headers, tls=self.tls())
            self._dagster.wait_ready("telegram_pipeline", timeout=300)
        return self._dagster

    def launch(self, job: str, run_config: dict | None = None, tags: dict | None = None) -> str:
        run_id = self.dagster().launch(job, run_config, tags)
        log(f"launched {job}: run {run_id}")
        return run_id

    def wait(self, run_id: str, timeout: float) -> tuple[str, float]:
        """The run's end status and its time from start to end, as Dagster recorded them."""
        run = self.dagster().wait_finished(run_id, timeout, poll=2)
        return run.status, run.seconds

    def check_assets(self, run_id: str) -> str:
        """The lake, raw and dbt assets materialized by the run with numeric metadata,
        every dbt test a passing check of the run (reported through Pipes)."""
        nodes = self.dagster().assets()
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        wanted = [k for k in by_key if k.split("/")[0] in {"lake", "raw", "staging", "marts"}]
        if len(wanted) < 20:
            raise SystemExit(f"the catalog lacks assets: {sorted(by_key)}")
        checks = 0
        for key in wanted:
            [latest] = by_key[key]["assetMaterializations"] or [None]
            if latest is None or latest["runId"] != run_id:
                raise SystemExit(f"{key} was not materialized by run {run_id}")
            kinds = {e["__typename"] for e in latest["metadataEntries"]}
            if not kinds & {"IntMetadataEntry", "FloatMetadataEntry"}:
                raise SystemExit(f"{key}: no numeric metadata")
            for check in by_key[key]["assetChecksOrError"].get("checks", []):
                if check["name"] == "newest_post_per_channel":
                    continue  # freshness of the sample's old posts: a warning, by design
                execution = check["executionForLatestMaterialization"] or {}
                if execution.get("status") != "SUCCEEDED" or execution.get("runId") != run_id:
                    raise SystemExit(f"check {key}:{check['name']}: {execution}")
                checks += 1
        if checks < 120:  # 119 dbt tests and the quarantine checks
            raise SystemExit(f"only {checks} passing checks")
        if changed := asset_parity.differences(
            asset_parity.recorded(), asset_parity.observed(nodes)
        ):
            raise SystemExit("the asset graph is not the recorded one:\n" + "\n".join(changed))
        return (
            f"{len(wanted)} assets with numeric metadata, {checks} passing checks;"
            f" {len(nodes)} assets and their checks as recorded ({asset_parity.RECORDED.name})"
        )

    def failure_messages(self, run_id: str) -> list[str]:
        return self.dagster().events(run_id).failures(retries=True)

    def make_key(self) -> None:
        """An API key (scope all) made by `tgmed-loader keys create` in the loader's image,
        as an operator makes one; the API refuses every route but health without it."""
        out = self.compose(
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "warehouse-init",
            "tgmed-loader",
            "keys",
            "create",
            f"e2e-{int(time.time())}",
            "--scope",
            "all",
            capture=True,
        )
        self.key = out.strip().splitlines()[0]
        if not self.key.startswith("tgmed_"):
            raise SystemExit(f"tgmed-loader keys create printed no key: {out[-500:]}")

    def _open(self, path: str, key: bool = True):
        headers = {"Authorization": f"Bearer {self.key}"} if key else {}
        request = urllib.request.Request(self.api + path, headers=headers)  # noqa: S310
        return urllib.request.urlopen(request, timeout=30, context=self.tls())  # noqa: S310

    def get(self, path: str) -> dict:
        with self._open(path) as response:
            return json.load(response)

    def page(self, path: str) -> str:
        with self._open(path) as response:
            return response.read().decode()

    def refused_without_key(self, path: str) -> int:
        try:
            with self._open(path, key=False) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def published_ports(self) -> list[str]:
        """The listening sockets (`ss -Htln`) of the ports compose publishes."""
        ports = {self.env[name] for name in ("PROXY_UI_PORT", "PROXY_API_PORT", "API_PORT")}
        listening = sh("ss", "-Htln", capture=True).splitlines()
        found = [
            line.split()[3] for line in listening if line.split()[3].rsplit(":", 1)[1] in ports
        ]
        if not found:
            raise SystemExit(f"nothing listens on ports {sorted(ports)}: {listening}")
        exposed = [address for address in found if not address.startswith("127.0.0.1:")]
        if exposed:
            raise SystemExit(f"published beyond 127.0.0.1: {exposed} (PUBLISH_ADDRESS)")
        return found

    def stage_containers(self, run_id: str) -> list[dict]:
        ids = sh(
            "docker",
            "ps",
            "-a",
            "-q",
            "--filter",
            f"label=dagster/run-id={run_id}",
            "--filter",
            "label=tgmed.stage",
            capture=True,
        ).split()
        if not ids:
            return []
        return json.loads(sh("docker", "inspect", *ids, capture=True))

    def mart_counts(self) -> dict:
        query = (
            "select json_object_agg(t, n) from ("
            " select 'fct_messages' t, count(*) n from marts.fct_messages union all"
            " select 'fct_image_detections', count(*) from marts.fct_image_detections union all"
            " select 'fct_product_mentions', count(*) from marts.fct_product_mentions union all"
            " select 'raw_messages', count(*) from raw.telegram_messages) c"
        )
        return json.loads(self.psql(query))

    def check_roles(self) -> str:
        """The warehouse's and Dagster's roles are ordinary roles, each confined to its
        own database (what compose's postgres-roles service made)."""
        query = (
            "select string_agg(format('%s super=%s tgmed=%s dagster=%s', rolname, rolsuper,"
            " has_database_privilege(rolname, 'tgmed', 'connect'),"
            " has_database_privilege(rolname, 'dagster', 'connect')), '; ' order by rolname)"
            " from pg_roles where rolname in ('tgmed', 'dagster', 'tgmed_api')"
        )
        got = self.compose(
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
            query,
            capture=True,
        ).strip()
        expected = (
            "dagster super=f tgmed=f dagster=t; tgmed super=f tgmed=t dagster=f; "
            "tgmed_api super=f tgmed=t dagster=f"
        )
        if got != expected:
            raise SystemExit(f"PostgreSQL roles: {got!r}, expected {expected!r}")
        return f"roles: {got}"

    def marts(self) -> dict[str, int]:
        """Every mart's row count."""
        return mart_counts(self.psql)

    def psql(self, sql: str) -> str:
        """One query's result in the warehouse, as the owner role sees it (unaligned)."""
        argv = ("exec", "-T", "postgres", "psql", "-U", "tgmed", "-d", "tgmed", "-tAc", sql)
        return self.compose(*argv, capture=True).strip()


def platform_secrets_in(container: dict, passwords: dict[str, str]) -> list[str]:
    """What a stage container must not have: the Docker socket (root on the host),
    Dagster's storage credentials (its run and event history, the daemon's state) or
    the PostgreSQL superuser's, by variable name or by value (`passwords`: what each
    is called -> its value), whatever variable holds it."""
    found = []
    for mount in container.get("Mounts") or []:
        if "docker.sock" in (mount.get("Source") or "") + (mount.get("Destination") or ""):
            found.append(f"the Docker socket ({mount.get('Source')})")
    for entry in container["Config"].get("Env") or []:
        name, _, value = entry.partition("=")
        if name in ("DAGSTER_PG_URL", "POSTGRES_PASSWORD", "DAGSTER_DB_PASSWORD", "DAGSTER_HOME"):
            found.append(f"the variable {name}")
        found += [f"{what} (in {name})" for what, secret in passwords.items() if secret in value]
    return found


def fill_volume(volume: str, source: Path, image: str) -> None:
    """Copy a host folder into a named volume (through a throwaway container)."""
    sh("docker", "volume", "create", volume, capture=True)
    sh(
        "docker",
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
        image,
        "-c",
        "cp -r /source/. /target/ && chmod -R a+rX /target",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-build", action="store_true", help="images already built")
    parser.add_argument("--keep", action="store_true", help="leave the platform running")
    parser.add_argument("--skip-local", action="store_true", help="no local-mode comparison")
    args = parser.parse_args()
    started = time.monotonic()
    os.chdir(ROOT)
    if not args.skip_build:
        sh("bash", "deploy/offline/build.sh")
    else:
        sh("bash", "deploy/offline/engine.sh")
    sample, truth = sample_and_truth()

    socket_gid = str(Path("/var/run/docker.sock").stat().st_gid)
    env = {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(18),
        "WAREHOUSE_DB_PASSWORD": secrets.token_urlsafe(18),
        "DAGSTER_DB_PASSWORD": secrets.token_urlsafe(18),
        "API_DB_PASSWORD": secrets.token_urlsafe(18),
        "POSTGRES_IMAGE": "tgmed-postgres:latest",
        "PYTHON_IMAGE": "tgmed/python-base:bookworm",
        "PIP_ARGS": "--no-index --find-links /wheelhouse",
        "DOCKER_GID": socket_gid,
        "API_PORT": os.environ.get("E2E_API_PORT", "18000"),
        "PROXY_UI_PORT": os.environ.get("E2E_PROXY_UI_PORT", "13443"),
        "PROXY_API_PORT": os.environ.get("E2E_PROXY_API_PORT", "18443"),
        "PROXY_USER": UI_LOGIN,
        "PROXY_PASSWORD": secrets.token_urlsafe(18),
        "TGMED_SCRAPE_SOURCE": "export",
        "TGMED_EXPORT_ROOT": "/exports",
        "TGMED_DOCKER_EXPORTS_VOLUME": "tgmed-exports",
        "TGMED_DOCKER_MODELS_VOLUME": "tgmed-models",
        "DETECT_MODEL": f"/models/{MODEL.name}",
        "ALERT_WEBHOOK_URL": "http://alert-receiver:8080/alerts",
        "ALERT_DAGSTER_UI_URL": "https://127.0.0.1:13443",
    }
    env_file = Path(tempfile.mkdtemp(prefix="tgmed-e2e-")) / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    env_file.chmod(0o600)
    platform = Platform(env_file, env)
    try:
        # a fresh platform: whatever an earlier `--keep` or interrupted run left (its
        # database volume may predate the roles postgres-roles makes)
        sh("bash", "deploy/prune-containers.sh", "--all")
        platform.compose("down", "-v", "--remove-orphans")
        fill_volume("tgmed-exports", sample / "exports", "tgmed-scraper:latest")
        fill_volume("tgmed-models", MODEL.parent, "tgmed-scraper:latest")
        log("docker compose up -d --wait")
        platform.compose("up", "-d", "--wait", "--no-build")
        log(f"platform healthy after {time.monotonic() - started:.0f} s")
        wrong = "Basic " + base64.b64encode(f"{UI_LOGIN}:wrong".encode()).decode()
        refused = {
            who: platform.ui_status("/server_info", login)
            for who, login in (("no login", None), ("a wrong password", wrong))
        }
        if (
            set(refused.values()) != {401}
            or platform.ui_status("/server_info", platform.basic) != 200
        ):
            raise SystemExit(f"the proxy in front of the Dagster UI let through: {refused}")
        log(
            "Dagster UI through the proxy (TLS, its certificate pinned): 401 without the login"
            " or with a wrong password, 200 with it; every run below goes through it"
        )

        run_id = platform.launch("telegram_pipeline")
        status, seconds = platform.wait(run_id, timeout=1500)
        if status != "SUCCESS":
            failures = "\n".join(platform.failure_messages(run_id))
            raise SystemExit(f"run {run_id}: {status}\n{failures[-4000:]}")
        log(f"telegram_pipeline SUCCESS in {seconds:.0f} s")
        containers = platform.stage_containers(run_id)
        stages = {c["Config"]["Labels"]["tgmed.stage"]: c["Config"]["Image"] for c in containers}
        for stage, image in STAGE_IMAGES.items():
            got = stages.get(stage, "")
            if not got.startswith(image):
                raise SystemExit(f"stage {stage} did not run in its own image {image}: {stages}")
        log(f"{len(containers)} stage containers, images: {sorted(set(stages.values()))}")
        platform_passwords = {
            "Dagster's storage password": env["DAGSTER_DB_PASSWORD"],
            "the PostgreSQL superuser's password": env["POSTGRES_PASSWORD"],
        }
        for container in containers:
            if leaked := platform_secrets_in(container, platform_passwords):
                raise SystemExit(f"stage container {container['Name']} has {', '.join(leaked)}")
        log("no stage container has the Docker socket or Dagster's storage credentials")
        log(platform.check_roles())
        log(platform.check_assets(run_id))

        first = platform.mart_counts()
        expected_messages = sum(c["messages"] for c in truth["channels"].values())
        if first["raw_messages"] != expected_messages:
            raise SystemExit(f"raw messages {first['raw_messages']} != {expected_messages}")
        log(f"published ports listen on 127.0.0.1 only: {platform.published_ports()}")
        for path in ("/api/reports/top-products?limit=10", "/dashboard/"):
            if (status := platform.refused_without_key(path)) != 401:
                raise SystemExit(f"{path} answered {status} without an API key (401 expected)")
        platform.make_key()
        log("without a key: 401; a key made with `tgmed-loader keys create` (scope all)")
        top = platform.get("/api/reports/top-products?limit=10")
        channel = next(iter(truth["channels"]))
        activity = platform.get(f"/api/channels/{channel}/activity?period=week")
        if not top["data"] or not activity["data"]:
            raise SystemExit(f"empty API answers: {top} {activity}")
        log(f"API: top product {top['data'][0]}, {len(activity['data'])} weeks for {channel}")
        # the dashboard and the dbt docs the transform stage published, from the API service
        dashboard, docs = platform.page("/dashboard/"), platform.page("/dbt-docs/")
        if "plotly.min.js" not in dashboard or "rpt_channel_daily" not in docs:
            raise SystemExit("the API service does not serve the dashboard and the dbt docs")
        log(f"dashboard and dbt docs served ({len(docs):,} bytes of docs)")

        again = platform.launch("telegram_pipeline")
        status, seconds = platform.wait(again, timeout=1500)
        second = platform.mart_counts()
        if status != "SUCCESS" or second != first:
            raise SystemExit(f"second run {status}: marts {second} != {first}")
        log(f"second run SUCCESS in {seconds:.0f} s, same marts: {second}")
        if not args.skip_local:
            # the same job in local mode on the same sample: the same row count in every mart
            compose_marts = platform.marts()
            local = local_mode_counts(sample)
            if differences(local, compose_marts):
                raise SystemExit(f"local mode != compose: {differences(local, compose_marts)}")
            log(f"local mode and compose: the same {len(local)} marts, row for row")

        # compose's default source (telegram, no credentials here): the run plans the
        # shipped channel list (no channels file in the run container) and the scrape
        # fails once as a configuration error
        default = platform.launch(
            "scrape_and_load", {"ops": {"telegram_lake": {"config": {"source": "telegram"}}}}
        )
        status, _ = platform.wait(default, timeout=600)
        messages = "\n".join(platform.failure_messages(default))
        planned = "tgmed-scraper scrape --channel chemed123 --channel lobelia4cosmetics"
        if status != "FAILURE" or planned not in messages:
            raise SystemExit(f"default launch: {status}\n{messages[-3000:]}")
        if "configuration error (not retried)" not in messages or "FileNotFound" in messages:
            raise SystemExit(f"default launch failed otherwise:\n{messages[-3000:]}")
        log("default launch planned the shipped channels, failed on the missing credentials")

        # a stage past its timeout (1 s for this run): stopped, fails without retry
        timed = platform.launch("transform", tags={"tgmed/stage_timeout_seconds": "1"})
        status, seconds = platform.wait(timed, timeout=600)
        messages = "\n".join(platform.failure_messages(timed))
        if status != "FAILURE" or "timed out: stopped after 1 s" not in messages:
            raise SystemExit(f"timeout run: {status}\n{messages[-3000:]}")
        if "UpForRetry" in messages or "requested a retry" in messages:
            raise SystemExit(f"timeout run was retried:\n{messages[-3000:]}")
        log(f"a stage past its timeout: stopped, run FAILURE in {seconds:.0f} s")

        # a stage container killed mid-run: the run fails, the alert arrives
        killed = platform.launch("transform")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            running = [c for c in platform.stage_containers(killed) if c["State"]["Running"]]
            if running:
                break
            time.sleep(1)
        else:
            raise SystemExit("the transform stage container never started")
        sh("docker", "kill", running[0]["Id"], capture=True)
        kill_time = time.monotonic()
        status, _ = platform.wait(killed, timeout=180)
        failed_after = time.monotonic() - kill_time
        if status != "FAILURE" or failed_after > 120:
            raise SystemExit(f"killed run: {status} after {failed_after:.0f} s")
        log(f"killed stage container: run FAILURE {failed_after:.0f} s later")
        alerts = ""
        for _ in range(60):
            alerts = platform.compose("logs", "alert-receiver", capture=True)
            if killed in alerts:
                break
            time.sleep(2)
        else:
            raise SystemExit(f"no failure alert for run {killed}: {alerts[-2000:]}")
        log("failure alert received by the webhook")
    finally:
        if not args.keep:
            # run and stage containers are not compose's (and hold the volumes): first
            sh("bash", "deploy/prune-containers.sh", "--all")
            platform.compose("down", "-v", "--remove-orphans")
            sh("docker", "volume", "rm", "-f", "tgmed-exports", "tgmed-models", capture=True)
    left = sh(
        "docker",
        "ps",
        "-a",
        "-q",
        "--filter",
        f"label=com.docker.compose.project={PROJECT}",
        capture=True,
    ).split()
    if left:
        raise SystemExit(f"containers left behind: {left}")
    log(f"e2e passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
