"""End to end on a real single-node Kubernetes cluster (`make k8s-e2e`), from nothing to
a torn-down cluster, printing each phase's time:

 1. the cluster's binaries (k8s/cluster/local-cluster.sh build; cached in /opt/k8s-1.20)
 2. the images, offline (`make images`), tagged :local for the local overlay
 3. the cluster up (node Ready)
 4. the `local` overlay rendered with a current kubectl and applied; its Secrets from a
    throwaway env file (random passwords); hostPath volumes holding the sample's exports
    and the shared COCO model
 5. every Deployment and the StatefulSet ready, the code location loaded by the webserver;
    the UI reached only through the proxy (TLS, its certificate pinned; 401 without the
    login or with a wrong one), as every GraphQL call below is
 6. `kubectl auth can-i`: the run launcher's account may create jobs and pods in its
    namespace and nothing more; the stage account may do nothing
 7. `telegram_pipeline` launched through the webserver's GraphQL API as the UI does,
    SUCCESS; each stage ran as its own pod from its own image (names, images, exit codes,
    seen through a watch), and each finished stage pod was deleted
 8. the API through the proxy (TLS): 401 without a key, top products and a channel's
    activity with one
 9. the database roles: Dagster's cannot connect to the warehouse, the API's reads only
    the marts
10. a second run: the same marts
11. the same job in local mode on the same sample: the same row count in every mart
12. a stage pod deleted mid-run: the run fails without a retry, the alert arrives
13. the namespace deleted: nothing of the platform left (pods, containers, volumes)
14. the cluster down: nothing of the cluster left

    python k8s/e2e.py [--skip-build] [--keep] [--skip-local]

Talks only to this machine: the cluster's Service addresses (kube-proxy) and its API.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
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

from tgmed_common.api_keys import key_hash, new_key  # noqa: E402
from tgmed_orchestrator.dagster_client import DagsterClient  # noqa: E402
from tgmed_orchestrator.launchers import DEFAULT_IMAGES  # noqa: E402

K8S = ROOT / "k8s"
CLUSTER = K8S / "cluster" / "local-cluster.sh"
K8S_HOME = Path(os.environ.get("K8S_HOME", "/opt/k8s-1.20"))
KUBECONFIG = K8S_HOME / "kubeconfig"
VOLUMES = K8S_HOME / "run" / "volumes" / "tgmed"  # the local overlay's hostPath volumes
NAMESPACE = "tgmed"
TAG = "local"
IMAGES = (
    "scraper",
    "yolo",
    "loader",
    "transform",
    "api",
    "orchestrator",
    "dagster",
    "postgres",
    "proxy",
)
PROXY_USER = "k8s-e2e"
# each stage's image (the loader image carries the extract stage), as the launchers name them
STAGE_IMAGES = {stage: image.split(":")[0] for stage, image in DEFAULT_IMAGES.items()}
LAUNCHER = f"system:serviceaccount:{NAMESPACE}:tgmed-run-launcher"
STAGE = f"system:serviceaccount:{NAMESPACE}:tgmed-stage"
POSTGRES_UID, POSTGRES_GID = 100, 102
# machine-wide locks shared with the other jobs on this machine (HELPERS: every Docker
# build/compose/e2e under the first; one local cluster at a time under the second)
DOCKER_LOCK = "/tmp/tgmed-docker.lock"  # noqa: S108
CLUSTER_LOCK = "/tmp/tgmed-k8s.lock"  # noqa: S108  # the offline image's postgres user


def log(message: str) -> None:
    print(f"[k8s-e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sh(*argv: str, capture: bool = False, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(
        argv,
        text=True,
        input=stdin,
        capture_output=capture,
        check=False,
        env={**os.environ, "KUBECONFIG": str(KUBECONFIG)},
    )
    if check and done.returncode:
        detail = (done.stderr or "")[-3000:] if capture else ""
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(argv[:6])}\n{detail}")
    return done.stdout if capture else ""


def kubectl(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    """The cluster's own kubectl (1.20: the server's version)."""
    return sh(str(K8S_HOME / "bin" / "kubectl"), *argv, capture=True, check=check, stdin=stdin)


def kubectl_json(*argv: str) -> dict:
    return json.loads(kubectl(*argv, "-o", "json"))


class Phases:
    def __init__(self) -> None:
        self.done: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        log(f"--- {name}")
        started = time.monotonic()
        try:
            yield
        finally:
            seconds = time.monotonic() - started
            self.done.append((name, seconds))
            log(f"--- {name}: {seconds:.0f} s")

    def table(self) -> str:
        width = max(len(name) for name, _ in self.done)
        lines = [f"  {name:<{width}}  {seconds:6.0f} s" for name, seconds in self.done]
        total = sum(seconds for _, seconds in self.done)
        return "\n".join([*lines, f"  {'total':<{width}}  {total:6.0f} s"])


@contextlib.contextmanager
def file_lock(path: str, what: str) -> Iterator[None]:
    with Path(path).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for {path} ({what} in use by another job)")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --- images --------------------------------------------------------------------------


def build_images(skip: bool) -> None:
    """`make images` (deploy/offline/build.sh) under the shared Docker lock, then the
    :local tags the local overlay names (never `latest`: that would mean pulling)."""
    if skip:  # only new names for existing images: no build, no need to queue
        sh("bash", "deploy/offline/engine.sh")
    else:
        with file_lock(DOCKER_LOCK, "the Docker engine"):
            sh("bash", "deploy/offline/build.sh")
    for image in IMAGES:
        sh("docker", "tag", f"tgmed-{image}:latest", f"tgmed-{image}:{TAG}")
    log(f"images tagged :{TAG}: {', '.join(f'tgmed-{i}' for i in IMAGES)}")


def untag_images() -> None:
    for image in IMAGES:
        sh("docker", "rmi", f"tgmed-{image}:{TAG}", capture=True, check=False)


# --- the platform ----------------------------------------------------------------------


def prepare_volumes(sample: Path) -> None:
    """The hostPath volumes (k8s/overlays/local/volumes.yaml), owned by the users that
    write them: hostPath volumes ignore fsGroup."""
    shutil.rmtree(VOLUMES, ignore_errors=True)
    for name in ("lake", "postgres", "exports", "models"):
        (VOLUMES / name).mkdir(parents=True)
    os.chown(VOLUMES / "lake", 10001, 10001)
    os.chown(VOLUMES / "postgres", POSTGRES_UID, POSTGRES_GID)
    (VOLUMES / "postgres").chmod(0o700)
    shutil.copytree(sample / "exports", VOLUMES / "exports", dirs_exist_ok=True)
    shutil.copy(MODEL, VOLUMES / "models" / MODEL.name)
    for path in [VOLUMES / "exports", VOLUMES / "models", *(VOLUMES / "exports").rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def write_secrets(env_file: Path) -> dict[str, str]:
    """A throwaway .env with random passwords, through k8s/secrets_from_env.py (as a user does)."""
    values = {
        name: secrets.token_urlsafe(18)
        for name in (
            "POSTGRES_PASSWORD",
            "WAREHOUSE_DB_PASSWORD",
            "DAGSTER_DB_PASSWORD",
            "API_DB_PASSWORD",
        )
    }
    values["ALERT_WEBHOOK_URL"] = "http://alert-receiver:8080/alerts"
    values["PROXY_USER"] = PROXY_USER
    values["PROXY_PASSWORD"] = secrets.token_urlsafe(18)
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env_file.chmod(0o600)
    sh(sys.executable, str(K8S / "secrets_from_env.py"), "local", "--env-file", str(env_file))
    return values


def apply_local_overlay() -> None:
    rendered = sh(
        str(Path(sys.executable).parent / "kubectl"),
        "kustomize",
        str(K8S / "overlays" / "local"),
        capture=True,
    )
    kinds: dict[str, int] = {}
    for line in rendered.splitlines():
        if line.startswith("kind: "):
            kinds[line[6:]] = kinds.get(line[6:], 0) + 1
    log(f"rendered the local overlay: {sum(kinds.values())} objects {kinds}")
    kubectl("apply", "-f", "-", stdin=rendered)
    kubectl("apply", "-f", str(K8S / "e2e" / "alert-receiver.yaml"))
    log("applied (kubectl 1.20, the server's version)")


def wait_ready() -> None:
    for kind, name in [
        ("statefulset", "postgres"),
        ("deployment", "tgmed-code-location"),
        ("deployment", "tgmed-dagster-webserver"),
        ("deployment", "tgmed-dagster-daemon"),
        ("deployment", "tgmed-proxy"),
        ("deployment", "alert-receiver"),
    ]:
        kubectl("-n", NAMESPACE, "rollout", "status", f"{kind}/{name}", "--timeout=900s")
        log(f"{kind}/{name} ready")
    # Dagster's storage migrated by its Job before the webserver and the daemon started
    job = kubectl(
        "-n", NAMESPACE, "get", "jobs", "-l", "app.kubernetes.io/name=dagster-migrate",
        "-o", "jsonpath={.items[*].metadata.name}",
    )  # fmt: skip
    kubectl("-n", NAMESPACE, "wait", "--for=condition=complete", f"job/{job}", "--timeout=60s")
    for service in ("tgmed-dagster-webserver", "tgmed-dagster-daemon"):
        said = kubectl("-n", NAMESPACE, "logs", f"deployment/{service}", "-c", "wait-for-migrate")
        if f"job {job} succeeded" not in said:
            raise SystemExit(f"{service} started without waiting for job {job}: {said[-500:]}")
    log(f"job/{job} (dagster instance migrate) complete; the webserver and daemon waited for it")
    log("deployment/tgmed-api: ready once the first run has built the marts (/ready reads them)")


class Proxy:
    """The local overlay's proxy (proxy.yaml), through its Service: the UI on :3443 behind
    the login, the API on :8443; TLS with the certificate the proxy made, read from its
    pod and pinned (the only one trusted)."""

    def __init__(self, password: str) -> None:
        self.ip = kubectl(
            "-n", NAMESPACE, "get", "svc", "tgmed-proxy", "-o", "jsonpath={.spec.clusterIP}"
        )
        certificate = kubectl(
            "-n", NAMESPACE, "exec", "deployment/tgmed-proxy", "--", "cat", "/certs/tls.crt"
        )
        self.tls = ssl.create_default_context(cadata=certificate)
        self.tls.check_hostname = False  # the Service's address is not in the certificate
        self.login = "Basic " + base64.b64encode(f"{PROXY_USER}:{password}".encode()).decode()

    def request(
        self, port: int, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> tuple[int, bytes]:
        url = f"https://{self.ip}:{port}{path}"
        request = urllib.request.Request(url, body, headers)
        for attempt in range(10):  # right after a rollout the Service may refuse briefly
            try:
                # launchRun goes through the code location: minutes on a busy 2-core machine
                with urllib.request.urlopen(request, timeout=600, context=self.tls) as response:  # noqa: S310
                    return response.status, response.read()
            except urllib.error.HTTPError as error:
                return error.code, error.read()
            except urllib.error.URLError as error:  # refused: not a request that may have run
                refused = isinstance(error.reason, ConnectionRefusedError | ConnectionResetError)
                if attempt == 9 or not refused:
                    raise
                time.sleep(1)
        raise AssertionError

    def check_ui_login(self) -> None:
        """No login or a wrong one: 401 from the proxy; the right one reaches the UI."""
        wrong = "Basic " + base64.b64encode(f"{PROXY_USER}:not-it".encode()).decode()
        answers = {
            name: self.request(3443, "/server_info", headers)[0]
            for name, headers in (
                ("none", {}),
                ("wrong", {"Authorization": wrong}),
                ("login", {"Authorization": self.login}),
            )
        }
        if answers != {"none": 401, "wrong": 401, "login": 200}:
            raise SystemExit(f"the UI through the proxy answered {answers}")
        log(
            f"Dagster UI through the proxy (https://{self.ip}:3443, its certificate pinned):"
            " 401 without the login, 401 with a wrong one, 200 with it"
        )


class Dagster(DagsterClient):
    """The webserver through the proxy's Service: its login, its pinned certificate."""

    def __init__(self, proxy: Proxy) -> None:
        # launchRun goes through the code location: minutes on a busy 2-core machine
        headers = {"Authorization": proxy.login}
        super().__init__(f"https://{proxy.ip}:3443", headers, proxy.tls, timeout=600)
        self.proxy = proxy

    def texts(self, run_id: str) -> list[str]:
        """Each event's message, and every failure's error (the stage's own words)."""
        events = self.events(run_id)
        return events.messages() + events.failures(retries=True)


class PodWatch:
    """Every pod of the namespace as last seen, through a watch of the API: a stage pod
    is deleted as soon as its exit code is read (K8sStageLauncher), so a listing after
    the run would miss it. Keeps each pod's spec, labels, exit code and deletion."""

    def __init__(self) -> None:
        self.pods: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> PodWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _follow(self) -> None:
        from kubernetes import client, config, watch

        api = client.CoreV1Api(config.new_client_from_config(str(KUBECONFIG)))
        while not self._stop.is_set():
            try:
                stream = watch.Watch().stream(
                    api.list_namespaced_pod, NAMESPACE, timeout_seconds=30
                )
                for event in stream:
                    pod = api.api_client.sanitize_for_serialization(event["object"])
                    self._record(event["type"], pod)
                    if self._stop.is_set():
                        return
            except Exception:  # no namespace yet, or the API is busy: watch again
                time.sleep(1)

    def _record(self, kind: str, pod: dict) -> None:
        name = pod["metadata"]["name"]
        with self._lock:
            seen = self.pods.setdefault(name, {"exit": None, "deleted": False})
            seen["metadata"], seen["spec"] = pod["metadata"], pod["spec"]
            seen["phase"] = pod.get("status", {}).get("phase")
            code = exit_code(pod)
            if code is not None:
                seen["exit"] = code
            if kind == "DELETED":
                seen["deleted"] = True

    def of_run(self, run_id: str) -> list[dict]:
        with self._lock:
            return [
                dict(p)
                for p in self.pods.values()
                if p["metadata"].get("labels", {}).get("dagster/run-id") == run_id
            ]


def exit_code(pod: dict) -> int | None:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return terminated["exitCode"]
    return None


def unretried_failures(rows: list[tuple]) -> tuple[list[str], list[tuple]]:
    """(pods that failed and whose step ran again in a later pod that exited 0, pods that
    failed with no such retry), from rows (name, component, image, exit, deleted) in the
    order the pods were created. A step's pods share their name up to a random suffix."""
    step = [row[0].rsplit("-", 1)[0] for row in rows]
    retried, failed = [], []
    for i, row in enumerate(rows):
        if row[3] == 0:
            continue
        if any(step[j] == step[i] and rows[j][3] == 0 for j in range(i + 1, len(rows))):
            retried.append(row[0])
        else:
            failed.append(row)
    return retried, failed


def check_stage_pods(pods: PodWatch, run_id: str) -> None:
    """Each stage ran as its own pod from its own image and the PodTemplate tgmed-stage
    (the local overlay's), non-root, without a token, and its pod was deleted once it
    finished."""
    rows = []
    seen: dict[str, set[str]] = {}
    deadline = time.monotonic() + 60  # the last stage pod's deletion reaching the watch
    while True:
        stage_pods = [
            p
            for p in pods.of_run(run_id)
            if p["metadata"]["labels"].get("app.kubernetes.io/component") in STAGE_IMAGES
        ]
        if all(p["deleted"] for p in stage_pods) or time.monotonic() > deadline:
            break
        time.sleep(1)
    for pod in sorted(pods.of_run(run_id), key=lambda p: p["metadata"]["creationTimestamp"]):
        labels = pod["metadata"]["labels"]
        component = labels.get("app.kubernetes.io/component", "?")
        spec = pod["spec"]
        image = spec["containers"][0]["image"]
        rows.append((pod["metadata"]["name"], component, image, pod["exit"], pod["deleted"]))
        if component in STAGE_IMAGES:
            seen.setdefault(component, set()).add(image)
            if spec.get("automountServiceAccountToken") is not False:
                raise SystemExit(f"{pod['metadata']['name']}: a token is mounted")
            if spec.get("serviceAccountName") != "tgmed-stage":
                raise SystemExit(f"{pod['metadata']['name']}: not the stage account")
            if not spec.get("securityContext", {}).get("runAsNonRoot"):
                raise SystemExit(f"{pod['metadata']['name']}: may run as root")
            security = spec["containers"][0].get("securityContext", {})
            if not security.get("readOnlyRootFilesystem"):
                raise SystemExit(f"{pod['metadata']['name']}: writable root filesystem")
            # built from the cluster's PodTemplate, as the local overlay patched it
            annotations = pod["metadata"].get("annotations") or {}
            if annotations.get("tgmed.io/overlay") != "local":
                raise SystemExit(
                    f"{pod['metadata']['name']}: not from the overlay's PodTemplate tgmed-stage"
                    f" (annotations {annotations})"
                )
    width = max(len(r[0]) for r in rows)
    print(f"  {'pod':<{width}}  {'component':<10} {'image':<28} exit deleted", flush=True)
    for name, component, image, code, deleted in rows:
        print(f"  {name:<{width}}  {component:<10} {image:<28} {code!s:<4} {deleted}", flush=True)
    for stage, image in STAGE_IMAGES.items():
        if seen.get(stage) != {f"{image}:{TAG}"}:
            raise SystemExit(f"stage {stage} did not run from its own image {image}: {seen}")
    stage_rows = [r for r in rows if r[1] in STAGE_IMAGES]
    retried, failed = unretried_failures(stage_rows)
    if retried:  # a transient failure the step's retry policy retried (outcomes.py)
        log(f"stage pods retried, then a later pod of the same step exited 0: {retried}")
    if failed:
        raise SystemExit(f"stage pods that did not exit 0: {failed}")
    kept = [r[0] for r in stage_rows if not r[4]]
    if kept:
        raise SystemExit(f"finished stage pods not cleaned up: {kept}")
    ended = "each exited 0 or was retried by a pod that did" if retried else "all exited 0"
    log(f"{len(stage_rows)} stage pods, each from its stage's image, {ended}, all deleted")


def psql(database: str, sql: str, user: str = "postgres", password: str | None = None) -> str:
    """psql inside the PostgreSQL pod: as the superuser over the local socket, or as a
    role over TCP with its password (from the environment, not the command line)."""
    argv = ["-n", NAMESPACE, "exec", "-i", "postgres-0", "--", "sh", "-c"]
    if password is None:
        return kubectl(
            *argv, f'psql -v ON_ERROR_STOP=1 -qtA -U postgres -d {database} -c "$(cat)"', stdin=sql
        ).strip()
    script = (
        "read -r PGPASSWORD; export PGPASSWORD;"
        f' exec psql -qtA -h 127.0.0.1 -U {user} -d {database} -c "{sql}" 2>&1'
    )
    return kubectl(*argv, script, stdin=password + "\n", check=False).strip()


def marts() -> dict[str, int]:
    return mart_counts(lambda sql: psql("tgmed", sql))


def error_line(text: str) -> str:
    return next((line for line in text.splitlines() if "ERROR" in line), text[:200])


def check_roles(passwords: dict[str, str]) -> None:
    dagster = psql("tgmed", "select 1", "dagster", passwords["DAGSTER_DB_PASSWORD"])
    if "permission denied for database" not in dagster:
        raise SystemExit(f"Dagster's role reached the warehouse: {dagster}")
    log(f"dagster -> database tgmed: {error_line(dagster)}")
    api = passwords["API_DB_PASSWORD"]
    raw = psql("tgmed", "select count(*) from raw.telegram_messages", "tgmed_api", api)
    if "permission denied" not in raw:
        raise SystemExit(f"the API's role read raw: {raw}")
    log(f"tgmed_api -> raw.telegram_messages: {error_line(raw)}")
    other = psql("dagster", "select 1", "tgmed_api", api)
    if "permission denied for database" not in other:
        raise SystemExit(f"the API's role reached Dagster's storage: {other}")
    rows = psql("tgmed", "select count(*) from marts.fct_messages", "tgmed_api", api)
    if not rows.isdigit():
        raise SystemExit(f"the API's role cannot read the marts: {rows}")
    log(f"tgmed_api -> marts.fct_messages: {rows} rows")


def check_rbac() -> None:
    def can(who: str, *what: str) -> bool:
        answer = kubectl("auth", "can-i", *what, "--as", who, check=False).strip()
        return answer == "yes"

    allowed = [
        ("create", "jobs.batch", "-n", NAMESPACE),
        ("create", "pods", "-n", NAMESPACE),
        ("delete", "pods", "-n", NAMESPACE),
        ("list", "pods", "-n", NAMESPACE),
        ("delete", "jobs.batch", "-n", NAMESPACE),
        ("watch", "pods", "-n", NAMESPACE),
        ("get", "pods/log", "-n", NAMESPACE),
        ("get", "jobs.batch/status", "-n", NAMESPACE),
        ("get", "podtemplates/tgmed-stage", "-n", NAMESPACE),
    ]
    denied = [
        # it reads the stage pods' template, it does not change it
        ("update", "podtemplates", "-n", NAMESPACE),
        ("get", "secrets", "-n", NAMESPACE),
        ("list", "secrets", "-n", NAMESPACE),
        ("get", "configmaps", "-n", NAMESPACE),
        ("create", "deployments.apps", "-n", NAMESPACE),
        ("create", "jobs.batch", "-n", "default"),
        ("create", "pods", "-n", "kube-system"),
        ("list", "pods", "--all-namespaces"),
        ("create", "rolebindings.rbac.authorization.k8s.io", "-n", NAMESPACE),
    ]
    for what in allowed:
        if not can(LAUNCHER, *what):
            raise SystemExit(f"the run launcher's account may not {' '.join(what)}")
        log(f"launcher: can {' '.join(what)}: yes")
    for what in denied:
        if can(LAUNCHER, *what):
            raise SystemExit(f"the run launcher's account may {' '.join(what)}")
        log(f"launcher: can {' '.join(what)}: no")
    nothing = [*allowed, *denied, ("get", "pods", "-n", NAMESPACE), ("list", "namespaces")]
    for what in nothing:
        if can(STAGE, *what):
            raise SystemExit(f"the stage account may {' '.join(what)}")
    log(f"stage: can do nothing ({len(nothing)} checks, all no)")


def api_key() -> str:
    """A new API key of scope `all`: its id and hash inserted as `tgmed-loader keys
    create` does (tgmed_common.api_keys), by the warehouse's owner inside the
    PostgreSQL pod; the key itself never leaves this process."""
    key_id, key = new_key()
    psql(
        "tgmed",
        "insert into auth.api_keys (key_id, name, scope, secret_hash)"  # noqa: S608 (hex from new_key)
        f" values ('{key_id}', 'k8s-e2e-{key_id}', 'all', '{key_hash(key)}')",
    )
    return key


def api_answers(channel: str, proxy: Proxy) -> None:
    kubectl("-n", NAMESPACE, "rollout", "status", "deployment/tgmed-api", "--timeout=300s")
    base = f"https://{proxy.ip}:8443"

    def status(path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        return proxy.request(8443, path, headers)

    refused, _ = status("/api/channels", {})
    if refused != 401:
        raise SystemExit(f"the API answered {refused} without a key (401 expected)")
    key = api_key()
    log("API: 401 without a key; a key of scope all made (its hash in auth.api_keys)")

    def get(path: str) -> dict:
        code, body = status(path, {"Authorization": f"Bearer {key}"})
        if code != 200:
            raise SystemExit(f"{path}: {code} {body[:300]!r}")
        return json.loads(body)

    top = get("/api/reports/top-products?limit=5")
    activity = get(f"/api/channels/{channel}/activity?period=week")
    if not top["data"] or not activity["data"]:
        raise SystemExit(f"empty API answers: {top} {activity}")
    log(f"API through the proxy ({base}): top products:")
    for row in top["data"]:
        print(f"    {json.dumps(row, ensure_ascii=False)[:160]}", flush=True)
    log(f"API: {channel}'s weekly activity ({activity['count']} weeks), first weeks:")
    for row in activity["data"][:3]:
        print(f"    {json.dumps(row, ensure_ascii=False)[:160]}", flush=True)


def delete_stage_pod_mid_run(dagster: Dagster, pods: PodWatch) -> None:
    run_id = dagster.launch("transform")
    deadline = time.monotonic() + 600
    pod = None
    while time.monotonic() < deadline and pod is None:
        for candidate in pods.of_run(run_id):
            labels = candidate["metadata"]["labels"]
            running = candidate["phase"] == "Running" and not candidate["deleted"]
            if labels.get("app.kubernetes.io/component") == "transform" and running:
                pod = candidate["metadata"]["name"]
        time.sleep(1)
    if pod is None:
        raise SystemExit("the transform stage pod never ran")
    kubectl("-n", NAMESPACE, "delete", "pod", pod, "--wait=false")
    deleted = time.monotonic()
    log(f"deleted stage pod {pod} while it ran")
    status = dagster.wait_finished(run_id, timeout=600, poll=3).status
    failed_after = time.monotonic() - deleted
    if status != "FAILURE":
        raise SystemExit(f"run {run_id} ended {status} after its stage pod was deleted")
    text = "\n".join(dagster.texts(run_id))
    if "killed from outside" not in text:
        raise SystemExit(f"the failure does not say the stage was stopped: {text[-2000:]}")
    reason = next(line for line in text.splitlines() if "killed from outside" in line)
    log(f"the step's failure: {reason[:200]}")
    transform_pods = [
        p["metadata"]["name"]
        for p in pods.of_run(run_id)
        if p["metadata"]["labels"].get("app.kubernetes.io/component") == "transform"
    ]
    if len(transform_pods) != 1:
        raise SystemExit(f"the stopped stage was retried: {transform_pods}")
    log(f"run {run_id}: FAILURE {failed_after:.0f} s after the deletion, not retried")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        alerts = kubectl("-n", NAMESPACE, "logs", "deployment/alert-receiver", check=False)
        line = next((a for a in alerts.splitlines() if run_id in a), None)
        if line:
            log(f"alert received by the webhook: {line[:200]}")
            return
        time.sleep(3)
    raise SystemExit(f"no failure alert for run {run_id}")


def delete_namespace() -> None:
    kubectl("delete", "namespace", NAMESPACE, "--timeout=600s")
    if kubectl("get", "namespace", NAMESPACE, check=False).strip():
        raise SystemExit(f"namespace {NAMESPACE} still there")
    volumes = kubectl("get", "pv", "-l", "app.kubernetes.io/part-of=tgmed", "-o", "name")
    log(f"released volumes: {' '.join(volumes.split())}")
    kubectl("delete", "pv", "-l", "app.kubernetes.io/part-of=tgmed", "--timeout=120s")
    deadline = time.monotonic() + 120
    containers: list[str] = []
    while time.monotonic() < deadline:
        containers = sh(
            "docker",
            "ps",
            "-aq",
            "--filter",
            f"label=io.kubernetes.pod.namespace={NAMESPACE}",
            capture=True,
        ).split()
        if not containers:
            break
        time.sleep(2)
    left = {
        "objects": kubectl(
            "get", "all,pvc,secrets,configmaps", "-n", NAMESPACE, "-o", "name", check=False
        ).split(),
        "volumes": kubectl(
            "get", "pv", "-l", "app.kubernetes.io/part-of=tgmed", "-o", "name"
        ).split(),
        "containers": containers,
    }
    if any(left.values()):
        raise SystemExit(f"left behind: {left}")
    shutil.rmtree(VOLUMES)
    shutil.rmtree(K8S / "overlays" / "local" / "secrets", ignore_errors=True)
    log("nothing left: no namespace, objects, volumes or pod containers; volume folders removed")


def bring_up(phase: Phases, args: argparse.Namespace, sample: Path) -> tuple[Dagster, dict]:
    with phase("cluster binaries (local-cluster.sh build; cached)"):
        sh("bash", str(CLUSTER), "build")
    with phase("images (make images) and :local tags"):
        build_images(args.skip_build)
    with phase("cluster up"):
        sh("bash", str(CLUSTER), "up")
    with phase("volumes, secrets, local overlay applied"):
        prepare_volumes(sample)
        with tempfile.TemporaryDirectory(prefix="tgmed-k8s-e2e-") as scratch:
            passwords = write_secrets(Path(scratch) / ".env")
        apply_local_overlay()
    with phase("Deployments and StatefulSet ready"):
        wait_ready()
        proxy = Proxy(passwords["PROXY_PASSWORD"])
        proxy.check_ui_login()
        dagster = Dagster(proxy)
        dagster.wait_ready("telegram_pipeline", timeout=600)
        log(f"the webserver has loaded the code location {dagster.location}")
    return dagster, passwords


def tear_down(phase: Phases) -> None:
    """Whatever is left of the platform and the cluster goes; the cluster always stops,
    even when the namespace check fails."""
    try:
        if kubectl("get", "namespace", NAMESPACE, "-o", "name", check=False).strip():
            with phase("namespace deleted, nothing left"):
                delete_namespace()
    finally:
        with phase("cluster down, nothing left"):
            # the kubelet shares the Docker engine: it must never have removed an image
            kubelet_log = K8S_HOME / "run" / "logs" / "kubelet.log"
            lines = kubelet_log.read_text().splitlines() if kubelet_log.is_file() else []
            removed = [line for line in lines if "Removing image" in line]
            sh("bash", str(CLUSTER), "down")
            sh("bash", str(CLUSTER), "leftovers")
            untag_images()
            shutil.rmtree(VOLUMES, ignore_errors=True)
            shutil.rmtree(K8S / "overlays" / "local" / "secrets", ignore_errors=True)
            if removed:
                raise SystemExit(f"the kubelet removed images: {removed[:5]}")
            log("the kubelet removed no image")


def end_to_end(phase: Phases, args: argparse.Namespace, sample: Path, truth: dict) -> None:
    dagster, passwords = bring_up(phase, args, sample)
    with PodWatch() as pods:
        checks(phase, args, sample, truth, dagster, passwords, pods)


def checks(
    phase: Phases,
    args: argparse.Namespace,
    sample: Path,
    truth: dict,
    dagster: Dagster,
    passwords: dict,
    pods: PodWatch,
) -> None:
    with phase("RBAC (kubectl auth can-i)"):
        check_rbac()
    with phase("run 1: telegram_pipeline"):
        run_id = dagster.launch("telegram_pipeline")
        run = dagster.wait_finished(run_id, timeout=2400, poll=3)
        if run.status != "SUCCESS":
            raise SystemExit(f"run {run_id}: {run.status}\n{dagster.texts(run_id)[-50:]}")
        log(f"telegram_pipeline SUCCESS in {run.seconds:.0f} s; its pods:")
        check_stage_pods(pods, run_id)
        first = marts()
        expected = sum(c["messages"] for c in truth["channels"].values())
        raw = int(psql("tgmed", "select count(*) from raw.telegram_messages"))
        if raw != expected:
            raise SystemExit(f"raw messages {raw} != {expected} in the sample")
        log(f"{raw} messages loaded; marts: {json.dumps(first)}")
        graph = asset_parity.observed(dagster.assets())
        if changed := asset_parity.differences(asset_parity.recorded(), graph):
            raise SystemExit("the asset graph is not the recorded one:\n" + "\n".join(changed))
        log(f"{len(graph)} assets and their checks as recorded ({asset_parity.RECORDED.name})")
    with phase("API through the proxy"):
        api_answers(next(iter(truth["channels"])), dagster.proxy)
    with phase("database roles"):
        check_roles(passwords)
    with phase("run 2: the same marts"):
        again = dagster.wait_finished(dagster.launch("telegram_pipeline"), 2400, poll=3)
        second = marts()
        if again.status != "SUCCESS" or differences(first, second):
            failed = dagster.texts(again.run_id)[-30:]
            raise SystemExit(f"second run {again.status}: {differences(first, second)}\n{failed}")
        log(f"second run SUCCESS in {again.seconds:.0f} s, every mart's row count unchanged")
    if not args.skip_local:
        with phase("local mode: the same marts"):
            local = local_mode_counts(sample)
            if differences(local, first):
                raise SystemExit(f"local mode != Kubernetes: {differences(local, first)}")
            log(f"local mode and Kubernetes: the same {len(local)} marts, row for row")
    with phase("a stage pod deleted mid-run"):
        delete_stage_pod_mid_run(dagster, pods)
    print(
        "NetworkPolicies: validated by make test (k8s/validate.py), not enforced on this"
        " cluster (no network plugin)",
        flush=True,
    )


def main() -> int:
    # a stopped e2e (SIGTERM) still tears the cluster down (finally blocks run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-build", action="store_true", help="images already built")
    parser.add_argument("--keep", action="store_true", help="leave the platform and cluster up")
    parser.add_argument("--skip-local", action="store_true", help="no local-mode comparison")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--up", action="store_true", help="only bring the platform up, and leave it")
    mode.add_argument("--down", action="store_true", help="only tear the platform and cluster down")
    args = parser.parse_args()
    os.chdir(ROOT)
    sample, truth = sample_and_truth()
    phase = Phases()
    started = time.monotonic()
    with file_lock(CLUSTER_LOCK, "the local cluster"):
        if args.down:
            tear_down(phase)
        elif args.up:
            dagster, _ = bring_up(phase, args, sample)
            login = K8S / "overlays" / "local" / "secrets" / "proxy.env"
            log(f"the platform is up: Dagster UI https://{dagster.proxy.ip}:3443 (from this")
            log(f"  machine; the login: PROXY_USER, PROXY_PASSWORD in {login}), the API")
            log(f"  https://{dagster.proxy.ip}:8443; the certificate is self-signed, or")
            forward = f"kubectl -n {NAMESPACE} port-forward svc/tgmed-proxy 3443 8443"
            log(f"  eval $({CLUSTER} env); {forward}   (then https://localhost:3443)")
            log("make k8s-down stops it")
        else:
            try:
                end_to_end(phase, args, sample, truth)
            finally:
                if not args.keep:
                    tear_down(phase)
    print("\nphase times:\n" + phase.table(), flush=True)
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
