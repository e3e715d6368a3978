"""How a stage runs: one resource interface, three implementations chosen by
TGMED_LAUNCH_MODE. Every op launches its stage through `StageLauncher.launch`, which
returns the stage's exit code, its JSON summary (the last stdout line) and the tail of
its output; ops.py turns that into Dagster metadata, retries or a failure.

- local: the stage CLI as a subprocess; its lines go to the Dagster log as they come.
- docker: one container per stage invocation (the docker_container_op configuration,
  run with docker-py so the summary and the output tail come back to the op), labelled
  `tgmed.stage` so finished containers can be pruned (auto-remove races with log
  streaming: see ../../../docs/architecture.md).
- k8s: one Kubernetes Job per invocation through dagster-k8s's `execute_k8s_job`.
"""

from __future__ import annotations

import abc
import contextlib
import io
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from dagster import ConfigurableResource, Failure, OpExecutionContext
from dagster._core.errors import DagsterInvalidPropertyError

from tgmed_orchestrator.stages import STAGE_ENV, STAGES, StageCommand

TAIL_LINES = 40
DEFAULT_IMAGES = {
    "scrape": "tgmed-scraper:latest",
    "detect": "tgmed-yolo:latest",
    "load": "tgmed-loader:latest",
    "transform": "tgmed-transform:latest",
}
# the variables a stage cannot run without: always passed, so a missing one fails loudly
REQUIRED_ENV = {
    "scrape": ("TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_SESSION"),
    "detect": (),
    "load": ("DATABASE_URL",),
    "transform": ("DATABASE_URL",),
}
STAGE_LABEL = "tgmed.stage"
# the user every stage image runs as (useradd --uid 10001 in each Dockerfile)
STAGE_UID = 10001
# requests and limits of each stage's pod (k8s mode; TGMED_K8S_STAGE_RESOURCES overrides)
K8S_STAGE_RESOURCES: dict[str, dict[str, dict[str, str]]] = {
    "scrape": {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    },
    "detect": {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "4", "memory": "6Gi"},
    },
    "load": {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    },
    "transform": {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    },
}


@dataclass
class StageResult:
    exit_code: int | None
    summary: dict[str, Any] | None
    tail: list[str] = field(default_factory=list)

    @property
    def tail_text(self) -> str:
        return "\n".join(self.tail)


def parse_summary(lines: list[str]) -> dict[str, Any] | None:
    """The stage's JSON summary: the last non-empty line that is a JSON object."""
    for line in reversed(lines):
        text = line.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


def _step_label(context: OpExecutionContext, command: StageCommand) -> dict[str, str]:
    labels = {STAGE_LABEL: command.stage, "tgmed.invocation": command.label or command.stage}
    for key, read in [
        ("dagster/run-id", lambda: context.run_id),
        ("dagster/job", lambda: context.job_name),
        ("dagster/op", lambda: context.op.name),
    ]:
        with contextlib.suppress(DagsterInvalidPropertyError):
            labels[key] = read()
    return labels


class StageLauncher(ConfigurableResource):
    """Runs one stage invocation and reports how it went. An interface: the launch
    modes below implement `launch`; this class itself cannot be built."""

    @abc.abstractmethod
    def launch(self, context: OpExecutionContext, command: StageCommand) -> StageResult:
        """Run the stage's command; its exit code, JSON summary and output tail."""

    def export_path(self, export_root: str, folder: str) -> str:
        """Where the stage finds an export folder (the root is mounted in containers)."""
        return str(Path(export_root) / folder)

    def prune(self, context: OpExecutionContext) -> int:
        """Remove finished stage containers; returns how many."""
        return 0


class LocalStageLauncher(StageLauncher):
    """Stage CLIs as subprocesses of the op. A stage's CLI is looked up in its bin folder
    (`bin_dirs`; the yolo stage lives in its own environment, TGMED_YOLO_BIN), else
    beside this Python (the workspace environment), else on PATH."""

    bin_dirs: dict[str, str] = {}
    env: dict[str, str] = {}
    cwd: str | None = None
    timeout_seconds: float | None = None

    def executable(self, command: StageCommand) -> str:
        name = command.argv[0]
        folders = [self.bin_dirs.get(command.stage), str(Path(sys.executable).parent)]
        for folder in folders:
            if folder and (found := shutil.which(name, path=folder)):
                return found
        if not self.bin_dirs.get(command.stage) and (found := shutil.which(name)):
            return found
        hint = " (make yolo-setup; TGMED_YOLO_BIN names its bin folder)"
        raise Failure(
            description=f"stage CLI {name!r} not found in {[f for f in folders if f]}"
            + (hint if command.stage == "detect" else ""),
            allow_retries=False,
        )

    def launch(self, context: OpExecutionContext, command: StageCommand) -> StageResult:
        argv = [self.executable(command), *command.argv[1:]]
        context.log.info(f"launching {command.display} (local)")
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
            cwd=self.cwd,
        )
        lines: queue.Queue[tuple[str, str | None]] = queue.Queue()

        def pump(name: str, stream: io.TextIOBase) -> None:
            for line in stream:
                lines.put((name, line.rstrip("\n")))
            lines.put((name, None))

        for name, stream in (("stdout", process.stdout), ("stderr", process.stderr)):
            threading.Thread(target=pump, args=(name, stream), daemon=True).start()
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        stdout: deque[str] = deque(maxlen=5)
        open_streams = 2
        prefix = f"[{command.stage}:{command.label}] " if command.label else f"[{command.stage}] "
        # lines reach the Dagster log from this thread only, as the stage writes them
        while open_streams:
            name, line = lines.get()
            if line is None:
                open_streams -= 1
                continue
            if name == "stdout":
                stdout.append(line)
            tail.append(line)
            context.log.info(prefix + line)
        try:
            code = process.wait(timeout=self.timeout_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
            tail.append(f"killed after {self.timeout_seconds} s (timeout)")
        return StageResult(code, parse_summary(list(stdout)), list(tail))


class DockerStageLauncher(StageLauncher):
    """One container per stage invocation, on the platform's network, with the lake
    volume and only the stage's own variables (CONTAINERS.md: dagster-docker merges the
    run launcher's env and volumes into every container; this launcher does not)."""

    images: dict[str, str] = DEFAULT_IMAGES
    network: str = "tgmed"
    lake_volume: str = "tgmed-lake"
    lake_mount: str = "/lake"
    # a named volume or host folder holding Telegram Desktop exports (read-only)
    exports_volume: str | None = None
    exports_mount: str = "/exports"
    # a named volume or host folder holding model weights, mounted read-only for detect
    # (DETECT_MODEL then names a file under models_mount); None: the image's own
    models_volume: str | None = None
    models_mount: str = "/models"
    # stages given every GPU of the host (the yolo image uses one when it sees one)
    gpu_stages: list[str] = []

    def export_path(self, export_root: str, folder: str) -> str:
        return str(PurePosixPath(self.exports_mount) / folder)

    def env_vars(self, command: StageCommand) -> list[str]:
        """Variable names for docker (values read from the launching process), only the
        stage's own, optional ones only when set; LAKE_DIR points at the mounted lake."""
        required = set(REQUIRED_ENV[command.stage])
        skip = {"LAKE_DIR"}
        if command.exports:  # an import reads files: no Telegram credentials
            skip |= required
            required = set()
        names = [
            name
            for name in STAGE_ENV[command.stage]
            if name not in skip and (name in required or name in os.environ)
        ]
        return [f"LAKE_DIR={self.lake_mount}", *names]

    def container_config(self, context: OpExecutionContext, command: StageCommand) -> dict:
        """The docker_container_op configuration of this invocation (its config schema)."""
        volumes = {self.lake_volume: {"bind": self.lake_mount, "mode": "rw"}}
        if command.exports:
            if not self.exports_volume:
                raise Failure(
                    description="export scrape in docker mode needs TGMED_DOCKER_EXPORTS_VOLUME"
                    " (a volume or host folder holding the export folders)",
                    allow_retries=False,
                )
            volumes[self.exports_volume] = {"bind": self.exports_mount, "mode": "ro"}
        if command.stage == "detect" and self.models_volume:
            volumes[self.models_volume] = {"bind": self.models_mount, "mode": "ro"}
        kwargs: dict[str, Any] = {"volumes": volumes, "labels": _step_label(context, command)}
        if command.stage in self.gpu_stages:
            kwargs["device_requests"] = [
                {"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}
            ]
        return {
            "image": self.images[command.stage],
            "command": list(command.argv),
            "networks": [self.network],
            "env_vars": self.env_vars(command),
            "container_kwargs": kwargs,
        }

    def launch(self, context: OpExecutionContext, command: StageCommand) -> StageResult:
        import docker
        from dagster._core.utils import parse_env_var
        from dagster_shared.serdes.utils import hash_str

        config = self.container_config(context, command)
        # Only this stage's own variables, volumes and network: unlike dagster-docker's
        # execute_docker_container, nothing is merged from the DockerRunLauncher (whose
        # env_vars hold Dagster's storage password and whose volumes hold docker.sock).
        step = context.get_step_execution_context().step.key
        name = hash_str(context.run_id + step + command.label)
        if context.retry_number:
            name = f"{name}-{context.retry_number}"
        client = docker.client.from_env()
        context.log.info(f"launching {command.display} in {config['image']} (container {name})")
        container = client.containers.create(
            config["image"],
            name=name,
            detach=True,
            network=config["networks"][0],
            command=config["command"],
            environment=dict(parse_env_var(item) for item in config["env_vars"]),
            **config["container_kwargs"],
        )
        container.start()
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        pending = ""
        for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=True):
            pending += chunk.decode("utf-8", "replace")
            *complete, pending = pending.split("\n")
            for line in complete:
                tail.append(line)
                context.log.info(f"[{command.stage}:{command.label}] {line}")
        if pending:
            tail.append(pending)
        code = container.wait()["StatusCode"]
        stdout = container.logs(stdout=True, stderr=False, tail=5).decode("utf-8", "replace")
        return StageResult(code, parse_summary(stdout.splitlines()), list(tail))

    def prune(self, context: OpExecutionContext) -> int:
        import docker

        client = docker.client.from_env()
        removed = 0
        for container in client.containers.list(
            all=True, filters={"label": STAGE_LABEL, "status": "exited"}
        ):
            container.remove()
            removed += 1
        return removed


class K8sStageLauncher(StageLauncher):
    """One Kubernetes Job per stage invocation (dagster-k8s `execute_k8s_job`): the
    stage's image and command, the lake claim, non-secret settings from a ConfigMap and
    each stage's own Secrets, under a service account with no API access, non-root with
    a read-only root filesystem. Dagster retries a failed step, so the Job itself does
    not; the pod's exit code decides whether Dagster does (ops.finish)."""

    images: dict[str, str] = DEFAULT_IMAGES
    namespace: str = "tgmed"
    service_account_name: str | None = None
    image_pull_policy: str = "IfNotPresent"
    lake_claim: str = "tgmed-lake"
    lake_mount: str = "/lake"
    exports_claim: str | None = None
    exports_mount: str = "/exports"
    # model weights for detect, mounted read-only (DETECT_MODEL names a file under it)
    models_claim: str | None = None
    models_mount: str = "/models"
    config_map: str = "tgmed-config"
    # Secrets (envFrom) per stage: only the stage that needs a secret sees it
    secrets: dict[str, list[str]] = {
        "scrape": ["tgmed-telegram"],
        "load": ["tgmed-database"],
        "transform": ["tgmed-database"],
    }
    gpu_stages: list[str] = []
    # where GPU stages run: the GPU pool's node labels and taints
    gpu_node_selector: dict[str, str] = {}
    gpu_tolerations: list[dict[str, Any]] = []
    stage_resources: dict[str, dict[str, dict[str, str]]] = K8S_STAGE_RESOURCES
    load_incluster_config: bool = True
    kubeconfig_file: str | None = None
    ttl_seconds_after_finished: int = 3600
    timeout_seconds: int = 0
    # how often the pods of a running stage's Job are listed (see _JobPods)
    pod_poll_seconds: float = 2.0

    def export_path(self, export_root: str, folder: str) -> str:
        return str(PurePosixPath(self.exports_mount) / folder)

    def job_name(self, context: OpExecutionContext, command: StageCommand) -> str:
        """tgmed-<stage>-<label>-<run id>-<step hash>: readable in `kubectl get pods`,
        unique per step, at most 55 characters (execute_k8s_job appends `-<retry>` on a
        retry; a Job name is a label value: 63 at most)."""
        from dagster_shared.serdes.utils import hash_str

        try:
            step = context.get_step_execution_context().step.key
        except Exception:  # a context built outside a run (tests): the invocation names it
            step = command.label or command.stage
        prefix = re.sub(r"[^a-z0-9]+", "-", f"{command.stage}-{command.label}".lower())
        return f"tgmed-{prefix.strip('-')[:30]}-{context.run_id[:8]}-{hash_str(step)[:6]}"

    def job_config(self, context: OpExecutionContext, command: StageCommand) -> dict[str, Any]:
        """The keyword arguments of `execute_k8s_job` (k8s_job_op's config schema)."""
        volumes: list[dict[str, Any]] = [
            {"name": "lake", "persistent_volume_claim": {"claim_name": self.lake_claim}},
            {"name": "tmp", "empty_dir": {}},
        ]
        mounts: list[dict[str, Any]] = [
            {"name": "lake", "mount_path": self.lake_mount},
            {"name": "tmp", "mount_path": "/tmp"},  # noqa: S108 (an emptyDir of its own)
        ]
        if command.exports:
            if not self.exports_claim:
                raise Failure(
                    description="export scrape in k8s mode needs TGMED_K8S_EXPORTS_CLAIM",
                    allow_retries=False,
                )
            volumes.append(
                {"name": "exports", "persistent_volume_claim": {"claim_name": self.exports_claim}}
            )
            mounts.append({"name": "exports", "mount_path": self.exports_mount, "read_only": True})
        if command.stage == "detect" and self.models_claim:
            volumes.append(
                {"name": "models", "persistent_volume_claim": {"claim_name": self.models_claim}}
            )
            mounts.append({"name": "models", "mount_path": self.models_mount, "read_only": True})
        resources = {k: dict(v) for k, v in self.stage_resources.get(command.stage, {}).items()}
        pod_spec: dict[str, Any] = {
            # the stage never talks to the Kubernetes API
            "automount_service_account_token": False,
            "security_context": {
                "run_as_non_root": True,
                "run_as_user": STAGE_UID,
                "run_as_group": STAGE_UID,
                "fs_group": STAGE_UID,
                "seccomp_profile": {"type": "RuntimeDefault"},
            },
        }
        if command.stage in self.gpu_stages:
            resources.setdefault("limits", {})["nvidia.com/gpu"] = "1"
            if self.gpu_node_selector:
                pod_spec["node_selector"] = dict(self.gpu_node_selector)
            if self.gpu_tolerations:
                pod_spec["tolerations"] = [dict(t) for t in self.gpu_tolerations]
        labels = {
            "app.kubernetes.io/part-of": "tgmed",
            "app.kubernetes.io/component": command.stage,
        }
        return {
            "image": self.images[command.stage],
            "command": list(command.argv),
            "namespace": self.namespace,
            "image_pull_policy": self.image_pull_policy,
            "service_account_name": self.service_account_name,
            "env_config_maps": [self.config_map],
            # an import reads files: no Telegram credentials (as in docker mode)
            "env_secrets": [] if command.exports else list(self.secrets.get(command.stage, [])),
            "env_vars": [f"LAKE_DIR={self.lake_mount}"],
            "volumes": volumes,
            "volume_mounts": mounts,
            "labels": labels,
            "resources": resources,
            "container_config": {
                "security_context": {
                    "allow_privilege_escalation": False,
                    "read_only_root_filesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                }
            },
            "pod_spec_config": pod_spec,
            "job_spec_config": {
                "backoff_limit": 0,
                "ttl_seconds_after_finished": self.ttl_seconds_after_finished,
            },
            "timeout": self.timeout_seconds or None,
            "load_incluster_config": self.load_incluster_config,
            "kubeconfig_file": self.kubeconfig_file,
            "k8s_job_name": self.job_name(context, command),
            # a failed Job stays (until its TTL) so its pod's exit code and log can be read
            "delete_failed_k8s_jobs": False,
        }

    def launch(self, context: OpExecutionContext, command: StageCommand) -> StageResult:
        from dagster_k8s import execute_k8s_job

        config = self.job_config(context, command)
        context.log.info(
            f"launching {command.display} as Kubernetes Job {config['k8s_job_name']}"
            f" ({config['image']})"
        )
        # execute_k8s_job prints the pod's log lines: each goes to the Dagster log (the UI)
        # as it comes, and the last ones are kept to read the summary and the tail
        prefix = f"[{command.stage}:{command.label}] " if command.label else f"[{command.stage}] "
        tee = _Tee(sys.stdout, on_line=lambda line: context.log.info(prefix + line))
        name = config["k8s_job_name"]
        if context.retry_number:  # as execute_k8s_job names a retry's Job
            name = f"{name}-{context.retry_number}"
        code: int | None = 0
        with _JobPods(self.namespace, name, self.pod_poll_seconds) as pods:
            try:
                with contextlib.redirect_stdout(tee):
                    execute_k8s_job(context, **config)
            except Exception as error:
                tee.lines.append(f"{type(error).__name__}: {error}")
                if not pods.replaced_by:
                    code, how = self.pod_exit_code(name)
                    tee.lines.append(how)
                    context.log.info(how)
        if pods.replaced_by:
            code = 143
            how = (
                f"pod {pods.seen[0]} was deleted while it ran; its Job {name} was deleted"
                f" too (it would have run the stage again in {pods.replaced_by})"
            )
            tee.lines.append(how)
            context.log.warning(how)
        summary = parse_summary(tee.stdout_lines())
        if code is None and summary is not None and "error" not in summary:
            code = 1  # the stage finished with a partial result
        return StageResult(code, summary, list(tee.lines)[-TAIL_LINES:])

    def pod_exit_code(self, job_name: str) -> tuple[int | None, str]:
        """The exit code of the failed Job's pod, and how it was found. A pod deleted
        while it ran (`kubectl delete pod`, a node drain) is gone by now: it was stopped
        from outside, like SIGTERM (143)."""
        import kubernetes

        try:
            pods = (
                kubernetes.client.CoreV1Api()
                .list_namespaced_pod(self.namespace, label_selector=f"job-name={job_name}")
                .items
            )
        except Exception as error:
            return None, f"pod of Job {job_name}: unknown exit code ({type(error).__name__})"
        for pod in pods:
            for status in pod.status.container_statuses or []:
                terminated = status.state.terminated if status.state else None
                if terminated is not None and terminated.exit_code:
                    return terminated.exit_code, (
                        f"pod {pod.metadata.name} exited with {terminated.exit_code}"
                        f" ({terminated.reason or 'no reason given'})"
                    )
        if not pods:
            return 143, f"the pod of Job {job_name} was deleted while it ran"
        return None, f"pod of Job {job_name}: no exit code (it never ran to the end)"


class _JobPods:
    """Follows the pods of a running stage's Job (a thread lists them every few seconds).
    A Job replaces a pod deleted while it runs (Kubernetes before 1.22 never counts it as
    failed): the stage would run again and the deletion would go unnoticed. When a second
    pod appears, the Job is deleted instead, and the stage counts as stopped from outside
    (ops.finish: not retried, the run fails and alerts)."""

    def __init__(self, namespace: str, job_name: str, interval: float) -> None:
        self.namespace = namespace
        self.job_name = job_name
        self.interval = interval
        self.seen: list[str] = []
        self.replaced_by: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> _JobPods:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _follow(self) -> None:
        import kubernetes

        selector = f"job-name={self.job_name}"
        # the client configuration is loaded by execute_k8s_job: until then calls fail
        while not self._stop.wait(self.interval):
            try:
                pods = (
                    kubernetes.client.CoreV1Api()
                    .list_namespaced_pod(self.namespace, label_selector=selector)
                    .items
                )
            except Exception:  # noqa: S112 (no configuration yet, or the API is busy)
                continue
            for pod in pods:
                if pod.metadata.name not in self.seen:
                    self.seen.append(pod.metadata.name)
            if len(self.seen) > 1:
                self.replaced_by = self.seen[-1]
                with contextlib.suppress(Exception):
                    kubernetes.client.BatchV1Api().delete_namespaced_job(
                        self.job_name, self.namespace, propagation_policy="Background"
                    )
                return


class _Tee(io.TextIOBase):
    def __init__(self, target: Any, on_line: Callable[[str], None] | None = None) -> None:
        self.target = target
        self.on_line = on_line
        self.lines: deque[str] = deque(maxlen=TAIL_LINES * 4)
        self._pending = ""

    def write(self, text: str) -> int:
        self.target.write(text)
        self._pending += text
        *complete, self._pending = self._pending.split("\n")
        self.lines.extend(complete)
        if self.on_line:
            for line in complete:
                self.on_line(line)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def stdout_lines(self) -> list[str]:
        return [*self.lines, self._pending]


def launcher_from_settings() -> StageLauncher:
    """The launcher of TGMED_LAUNCH_MODE, configured from the TGMED_* settings."""
    from tgmed_orchestrator.settings import orchestrator_settings

    settings = orchestrator_settings()
    gpu_stages = [part.strip() for part in settings.gpu_stages.split(",") if part.strip()]
    images = {
        stage: os.environ.get(f"TGMED_IMAGE_{stage.upper()}")
        or DEFAULT_IMAGES[stage].replace(":latest", f":{settings.image_tag}")
        for stage in STAGES
    }
    if settings.launch_mode == "docker":
        return DockerStageLauncher(
            network=settings.docker_network,
            lake_volume=settings.docker_lake_volume,
            exports_volume=settings.docker_exports_volume or None,
            models_volume=settings.docker_models_volume or None,
            gpu_stages=gpu_stages,
            images=images,
        )
    if settings.launch_mode == "k8s":
        return K8sStageLauncher(
            namespace=settings.k8s_namespace,
            lake_claim=settings.k8s_lake_claim,
            exports_claim=settings.k8s_exports_claim or None,
            models_claim=settings.k8s_models_claim or None,
            service_account_name=settings.k8s_service_account or None,
            image_pull_policy=settings.k8s_image_pull_policy,
            gpu_stages=gpu_stages,
            gpu_node_selector=settings.k8s_gpu_node_selector,
            gpu_tolerations=settings.k8s_gpu_tolerations,
            stage_resources={**K8S_STAGE_RESOURCES, **settings.k8s_stage_resources},
            ttl_seconds_after_finished=settings.k8s_job_ttl_seconds,
            images=images,
        )
    return LocalStageLauncher(
        bin_dirs={"detect": settings.yolo_bin} if settings.yolo_bin else {},
    )
