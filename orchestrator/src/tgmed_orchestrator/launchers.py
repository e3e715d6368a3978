"""How a stage runs: one resource interface, three implementations chosen by
TGMED_LAUNCH_MODE, each a Dagster Pipes client. The stage (tgmed_common.stage, with
`dagster-pipes`) reports its log lines, its materializations and check results and,
explicitly, its outcome; `launch` returns all of it as a `StageRun`, also when the stage
failed (the clients raise on a non-zero exit: a recording message reader keeps what the
stage said before it ended). outcomes.py turns a StageRun into success, retry or failure.

- local: `PipesSubprocessClient`, the stage CLI as a subprocess;
- docker: `PipesDockerClient` (dagster-docker), one container per invocation with the
  lake volume and ONLY the stage's own variables and volumes. Not `docker_container_op`
  / `execute_docker_container`: those merge the DockerRunLauncher's env (Dagster's
  storage password) and volumes (docker.sock) into every stage container
  (docs/architecture.md, test_launch_modes.py shows both);
- k8s: `PipesK8sClient` (dagster-k8s), one pod per invocation: the lake claim, the
  `tgmed-config` ConfigMap, the stage's own Secrets, an activeDeadlineSeconds; non-root,
  read-only root filesystem, no service account token; GPU stages on the GPU pool.

Every invocation has a timeout (TGMED_STAGE_TIMEOUT_SECONDS, per stage
TGMED_STAGE_TIMEOUTS), enforced the same way in every mode: the command runs under
coreutils `timeout` (TERM, then KILL 15 s later; exit 124), in k8s also bounded by the
pod's activeDeadlineSeconds.

Nothing of a run outlives it (found by the fault suite, docs/reliability.md): a stage
killed by a signal reports 128 + signal in every mode (kill -9: 137, not retried); in
local mode the stage and its `timeout` die with their step process (PR_SET_PDEATHSIG via
util-linux `setpriv`), the step process exits when its run has ended and when its run
worker dies (step_process.py); in docker mode a stage may have a memory limit, an
OOM-killed stage says so, and the stage containers of finished runs are stopped before
the next stage starts.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    Failure,
    OpExecutionContext,
    PipesSubprocessClient,
    PipesTempFileMessageReader,
)

from tgmed_orchestrator.stages import STAGES, TELEGRAM_ENV, StageCommand

DEFAULT_IMAGES = {
    "scrape": "tgmed-scraper:latest",
    "detect": "tgmed-yolo:latest",
    "extract": "tgmed-loader:latest",  # the loader image carries tgmed-extract too
    "load": "tgmed-loader:latest",
    "transform": "tgmed-transform:latest",
}
# the variables a stage cannot run without: always passed, so a missing one fails loudly
REQUIRED_ENV = {
    "scrape": ("TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_SESSION"),
    "detect": (),
    "extract": (),
    "load": ("DATABASE_URL",),
    "transform": ("DATABASE_URL",),
}
STAGE_LABEL = "tgmed.stage"
INVOCATION_LABEL = "tgmed.invocation"
KILL_AFTER_SECONDS = 15
TIMEOUT_EXIT = 124  # coreutils timeout: the command ran past its time and was stopped
TIMEOUT_TAG = "tgmed/stage_timeout_seconds"
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
    "extract": {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
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

Context = OpExecutionContext | AssetExecutionContext


@dataclass
class StageRun:
    """What one stage invocation did, as the stage reported it through Pipes."""

    command: StageCommand
    exit_code: int | None  # None: unknown (the launcher itself failed)
    outcome: str | None = None  # the stage's own word: ok, config_error, ... (stage.py)
    error: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    results: list[Any] = field(default_factory=list)  # MaterializeResult, AssetCheckResult
    seconds: float = 0.0
    timeout_seconds: float = 0.0
    launcher_error: str = ""
    # why the stage ended, when the launcher knows better than the exit code (the
    # container runtime says it was killed for memory)
    reason: str | None = None

    @property
    def timed_out(self) -> bool:
        return self.exit_code == TIMEOUT_EXIT or (
            self.exit_code in {137, None}
            and self.outcome is None
            and self.timeout_seconds > 0
            and self.seconds >= self.timeout_seconds
        )

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and self.outcome in {"ok", None}

    @property
    def partial(self) -> bool:
        """The stage finished and set some input aside; the rest went through."""
        return self.outcome == "set_aside" and self.exit_code == 1 and not self.timed_out


class _Recording:
    """Mixed into a Pipes message reader: keeps the message handler, so what the stage
    reported is still there when the client raises for a non-zero exit."""

    handler: Any = None

    @contextlib.contextmanager
    def read_messages(self, handler: Any) -> Iterator[Any]:
        self.handler = handler
        with super().read_messages(handler) as params:  # type: ignore[misc]
            yield params


class RecordingTempFileReader(_Recording, PipesTempFileMessageReader):
    pass


def _run_tags(context: Context) -> Mapping[str, str]:
    try:
        return context.run.tags
    except Exception:  # a context built for a test, outside any run
        return {}


def _outcome_message(handler: Any) -> dict[str, Any] | None:
    if handler is None:
        return None
    for message in reversed(handler.get_custom_messages()):
        if isinstance(message, dict) and message.get("tgmed") == "outcome":
            return message
    return None


_EXIT_CODE = re.compile(r"(?:code|StatusCode'?:?)\s*:?\s*(-?\d+)")


def _exit_code_from(error: BaseException) -> int | None:
    """The exit code the Pipes clients put in their error text (the only place they
    report it: 'failed with code N', "{'StatusCode': N}")."""
    found = _EXIT_CODE.findall(str(error))
    return int(found[-1]) if found else None


def with_timeout(argv: list[str], seconds: float) -> list[str]:
    return ["timeout", f"--kill-after={KILL_AFTER_SECONDS}", f"{seconds:g}", *argv]


def signal_exit_code(code: int | None) -> int | None:
    """A process killed by a signal, as the shell and Docker report it: 128 + signal
    (Popen says -9 for kill -9; `timeout` re-raises its command's signal)."""
    return 128 - code if code is not None and code < 0 else code


def dying_with_parent(argv: list[str]) -> list[str]:
    """The command under `setpriv --pdeathsig KILL` (util-linux), when there is one: the
    kernel kills it when the process that started it dies, even by kill -9."""
    if shutil.which("setpriv") is None:
        return argv
    return ["setpriv", "--pdeathsig", "KILL", *argv]


RUN_WATCH_SECONDS = 2.0


def end_with_the_run(context: Context) -> Callable[[], None]:
    """While a stage runs, check every few seconds that its run is still going. A run
    whose worker process died (kill -9) is marked failed by the code server or by run
    monitoring, but the worker's step processes live on, and a step process that has
    lost its parent may never exit. When the run has ended, this step process exits (its
    stage, under PR_SET_PDEATHSIG, dies with it): nothing of a dead run runs beside the
    next one. Returns the function that ends the watch (called when the stage ended)."""
    done = threading.Event()
    try:
        instance, run_id = context.instance, context.run.run_id
    except Exception:  # a context built for a test, outside any run
        return done.set

    def watch() -> None:
        while not done.wait(RUN_WATCH_SECONDS):
            try:
                run = instance.get_run_by_id(run_id)
            except Exception as error:  # storage unreachable for a moment: ask again
                logging.getLogger(__name__).debug("run %s not read: %s", run_id, error)
                continue
            if run is not None and run.is_finished and not done.is_set():
                os._exit(1)

    thread = threading.Thread(target=watch, name="tgmed-run-watch", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join(timeout=30)  # not a query after the step has moved on

    return stop


class StageLauncher(ConfigurableResource):
    """Runs one stage invocation and reports how it went. An interface: the launch
    modes below implement `_run`; this class itself cannot be built."""

    timeout_seconds: float = 3600.0
    stage_timeouts: dict[str, float] = {}

    def timeout_for(self, stage: str, tags: Mapping[str, str] | None = None) -> float:
        """The stage's timeout: the run's tag `tgmed/stage_timeout_seconds` (one run
        that needs longer, or a test of the timeout path), else the configured one."""
        if tags and tags.get(TIMEOUT_TAG):
            return float(tags[TIMEOUT_TAG])
        return float(self.stage_timeouts.get(stage, self.timeout_seconds))

    def export_path(self, export_root: str, folder: str) -> str:
        """Where the stage finds an export folder (the root is mounted in containers)."""
        return str(Path(export_root) / folder)

    def prune(self, context: Context) -> int:
        """Remove finished stage containers; returns how many."""
        return 0

    def launch(
        self, context: Context, command: StageCommand, extras: Mapping[str, Any] | None = None
    ) -> StageRun:
        timeout = self.timeout_for(command.stage, _run_tags(context))
        context.log.info(f"launching {command.display} ({self.mode}, timeout {timeout:g} s)")
        started = time.monotonic()
        run = StageRun(command, exit_code=None, timeout_seconds=timeout)
        handler = None
        try:
            handler = self._run(context, command, timeout, dict(extras or {}))
            run.exit_code = 0
        except _StageExit as failed:
            handler, run.launcher_error = failed.handler, failed.text
            run.exit_code, run.reason = signal_exit_code(failed.code), failed.reason
            if failed.code is not None and failed.code < 0:
                run.reason = run.reason or f"killed by {signal.Signals(-failed.code).name}"
        run.seconds = time.monotonic() - started
        message = _outcome_message(handler)
        if message is not None:
            run.outcome = message.get("outcome")
            run.error = message.get("error") or ""
            run.summary = message.get("summary") or {}
        if handler is not None:
            run.results = list(handler.get_reported_results())
        return run

    @property
    def mode(self) -> str:
        return type(self).__name__.removesuffix("StageLauncher").lower()

    @abc.abstractmethod
    def _run(
        self, context: Context, command: StageCommand, timeout: float, extras: dict[str, Any]
    ) -> Any:
        """Run the command through the mode's Pipes client; returns the message handler,
        raises _StageExit when the stage did not exit 0."""


class _StageExit(Exception):
    def __init__(
        self, handler: Any, code: int | None, text: str, reason: str | None = None
    ) -> None:
        super().__init__(text)
        self.handler, self.code, self.text, self.reason = handler, code, text, reason


class LocalStageLauncher(StageLauncher):
    """Stage CLIs as subprocesses (PipesSubprocessClient). A stage's CLI is looked up in
    its bin folder (`bin_dirs`; the yolo stage lives in its own environment,
    TGMED_YOLO_BIN), else beside this Python (the workspace environment), else on PATH."""

    bin_dirs: dict[str, str] = {}
    env: dict[str, str] = {}
    cwd: str | None = None

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

    def stage_env(self, command: StageCommand) -> dict[str, str]:
        """Added to this process's environment (a laptop's settings), which the client
        passes on."""
        return {**self.env, "PYTHONUNBUFFERED": "1"}

    def argv(self, command: StageCommand, timeout: float) -> list[str]:
        """The stage's command under `timeout`; an export import under `env -u` for each
        Telegram variable (PipesSubprocessClient always passes this process's
        environment on, so the variables are removed from the child's alone)."""
        # the stage dies with `timeout`, `timeout` with this step process
        stage = dying_with_parent([self.executable(command), *command.argv[1:]])
        argv = dying_with_parent(with_timeout(stage, timeout))
        if command.exports:
            unset = [part for name in TELEGRAM_ENV for part in ("-u", name)]
            argv = ["env", *unset, *argv]
        return argv

    def _run(
        self, context: Context, command: StageCommand, timeout: float, extras: dict[str, Any]
    ) -> Any:
        if shutil.which("timeout") is None:
            raise Failure(description="coreutils `timeout` is not on PATH", allow_retries=False)
        reader = RecordingTempFileReader()
        client = PipesSubprocessClient(
            message_reader=reader, cwd=self.cwd, termination_timeout_seconds=KILL_AFTER_SECONDS
        )
        stop_watching = end_with_the_run(context)
        try:
            client.run(
                context=context,
                command=self.argv(command, timeout),
                env=self.stage_env(command),
                extras=extras,
            )
        except Exception as error:  # DagsterPipesExecutionError: "failed with code N"
            raise _StageExit(reader.handler, _exit_code_from(error), str(error)) from None
        finally:
            stop_watching()
        return reader.handler


def _labels(context: Context, command: StageCommand, invocation: str) -> dict[str, str]:
    labels = {STAGE_LABEL: command.stage, INVOCATION_LABEL: invocation}
    with contextlib.suppress(Exception):
        labels["dagster/run-id"] = context.run.run_id
    with contextlib.suppress(Exception):
        labels["dagster/job"] = context.job_name
    with contextlib.suppress(Exception):
        labels["dagster/op"] = context.op.name
    return labels


def _invocation_id(command: StageCommand) -> str:
    label = re.sub(r"[^a-z0-9-]", "-", (command.label or command.stage).lower())[:30]
    return f"{command.stage}-{label}-{uuid.uuid4().hex[:8]}".strip("-")


class DockerStageLauncher(StageLauncher):
    """One container per stage invocation (PipesDockerClient), on the platform's network,
    with the lake volume and only the stage's own variables and volumes."""

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
    # stage -> memory limit of its containers ("2g"; no swap beyond it): a stage that
    # exceeds it is killed by the kernel and reported as out of memory
    memory_limits: dict[str, str] = {}

    def export_path(self, export_root: str, folder: str) -> str:
        return str(PurePosixPath(self.exports_mount) / folder)

    def stage_env(self, command: StageCommand) -> dict[str, str]:
        """Only the stage's own variables, values from this process (the run worker),
        optional ones only when set; LAKE_DIR points at the mounted lake."""
        required = set() if command.exports else set(REQUIRED_ENV[command.stage])
        env = {"LAKE_DIR": self.lake_mount}
        for name in command.env_names():
            if name == "LAKE_DIR":
                continue
            if name in os.environ:
                env[name] = os.environ[name]
            elif name in required:
                raise Failure(
                    description=f"{name} is not set for the {command.stage} stage (the run "
                    "worker passes it on: set it where the runs start, e.g. compose's daemon)",
                    allow_retries=False,
                )
        return env

    def container_config(
        self, context: Context, command: StageCommand, timeout: float | None = None
    ) -> dict[str, Any]:
        """The arguments of PipesDockerClient.run for this invocation."""
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
        kwargs: dict[str, Any] = {
            "volumes": volumes,
            "labels": _labels(context, command, _invocation_id(command)),
            "network": self.network,
        }
        if command.stage in self.gpu_stages:
            kwargs["device_requests"] = [
                {"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}
            ]
        if limit := self.memory_limits.get(command.stage):
            kwargs["mem_limit"] = limit
            kwargs["memswap_limit"] = limit
        timeout = timeout if timeout is not None else self.timeout_for(command.stage)
        return {
            "image": self.images[command.stage],
            "command": with_timeout(list(command.argv), timeout),
            "env": self.stage_env(command),
            "container_kwargs": kwargs,
        }

    def _run(
        self, context: Context, command: StageCommand, timeout: float, extras: dict[str, Any]
    ) -> Any:
        import docker
        from dagster_docker import PipesDockerClient, PipesDockerLogsMessageReader

        class RecordingDockerReader(_Recording, PipesDockerLogsMessageReader):
            pass

        class RecordingDockerClient(PipesDockerClient):
            """Keeps the container it created: the client stops it but leaves it (prune
            removes it), so its state (OOMKilled) can be read after a failure."""

            container: Any = None

            def _create_container(self, *args: Any, **kwargs: Any) -> Any:
                self.container = super()._create_container(*args, **kwargs)
                return self.container

        reap_orphans(context, docker.client.from_env())
        config = self.container_config(context, command, timeout)
        reader = RecordingDockerReader()
        # no env, no registry, no volumes of the run launcher: the client passes only what
        # is given here (unlike execute_docker_container)
        client = RecordingDockerClient(message_reader=reader)
        try:
            client.run(context=context, extras=extras, **config)
        except Exception as error:  # "Container exited with non-zero status code: {...}"
            reason = None
            if client.container is not None and _oom_killed(client.container):
                limit = config["container_kwargs"].get("mem_limit", "the host's memory")
                reason = f"out of memory: the {command.stage} stage exceeded {limit}"
                context.log.error(f"{command.display}: {reason}")
            code = _exit_code_from(error)
            raise _StageExit(reader.handler, code, str(error), reason) from None
        return reader.handler

    def prune(self, context: Context) -> int:
        import docker

        client = docker.client.from_env()
        removed = 0
        for container in client.containers.list(
            all=True, filters={"label": STAGE_LABEL, "status": "exited"}
        ):
            container.remove()
            removed += 1
        return removed


def _oom_killed(container: Any) -> bool:
    with contextlib.suppress(Exception):
        container.reload()
        return bool(container.attrs["State"].get("OOMKilled"))
    return False


def reap_orphans(context: Context, client: Any) -> list[str]:
    """Stop the stage containers of runs that have finished. A run whose worker died
    (killed, its host restarted) is marked failed by run monitoring, but its stage
    containers go on writing the lake and the warehouse; the next stage launched stops
    them first, so nothing of a dead run runs beside a new one."""
    stopped = []
    try:
        current = context.run.run_id
    except Exception:  # a context built for a test, outside any run
        current = None
    for container in client.containers.list(filters={"label": STAGE_LABEL}):
        run_id = container.labels.get("dagster/run-id")
        if not run_id or run_id == current:
            continue
        run = context.instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            continue
        context.log.warning(
            f"stopping container {container.name} ({container.labels.get(INVOCATION_LABEL)}) "
            f"of run {run_id[:8]}, which has ended ({run.status.value if run else 'unknown'})"
        )
        with contextlib.suppress(Exception):
            container.kill()
        stopped.append(container.name)
    return stopped


class K8sStageLauncher(StageLauncher):
    """One pod per stage invocation (PipesK8sClient): the stage's image and command, the
    lake claim, non-secret settings from a ConfigMap and each stage's own Secrets (an
    export import gets none of Telegram's), under a service account with no API access
    and no token, non-root with a read-only root filesystem. Dagster retries a failed
    step (outcomes.py decides); the pod has restartPolicy Never and an
    activeDeadlineSeconds of the stage's timeout. The pod stays until its exit code is
    read, then it is deleted; a pod deleted from outside while it ran fails the step as
    stopped (143), not retried."""

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
    # Secrets that hold Telegram credentials: never given to an export import
    telegram_secrets: list[str] = ["tgmed-telegram"]
    # what each Secret holds (the cluster's manifests create them so; the ConfigMap holds
    # every other, non-secret variable)
    secret_env: dict[str, list[str]] = {
        "tgmed-telegram": ["TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_SESSION"],
        "tgmed-database": ["DATABASE_URL", "API_DB_PASSWORD"],
    }
    gpu_stages: list[str] = []
    # where GPU stages run: the GPU pool's node labels and taints
    gpu_node_selector: dict[str, str] = {}
    gpu_tolerations: list[dict[str, Any]] = []
    stage_resources: dict[str, dict[str, dict[str, str]]] = K8S_STAGE_RESOURCES
    load_incluster_config: bool = True
    kubeconfig_file: str | None = None
    poll_interval_seconds: float = 5.0

    def export_path(self, export_root: str, folder: str) -> str:
        return str(PurePosixPath(self.exports_mount) / folder)

    def pod_config(
        self, context: Context, command: StageCommand, timeout: float | None = None
    ) -> dict[str, Any]:
        """The arguments of PipesK8sClient.run for this invocation."""
        timeout = timeout if timeout is not None else self.timeout_for(command.stage)
        volumes: list[dict[str, Any]] = [
            {"name": "lake", "persistent_volume_claim": {"claim_name": self.lake_claim}},
            {"name": "tmp", "empty_dir": {}},
        ]
        mounts: list[dict[str, Any]] = [
            {"name": "lake", "mount_path": self.lake_mount},
            {"name": "tmp", "mount_path": "/tmp"},  # noqa: S108 (an emptyDir of its own)
        ]
        secrets = list(self.secrets.get(command.stage, []))
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
            secrets = [name for name in secrets if name not in self.telegram_secrets]
        if command.stage == "detect" and self.models_claim:
            volumes.append(
                {"name": "models", "persistent_volume_claim": {"claim_name": self.models_claim}}
            )
            mounts.append({"name": "models", "mount_path": self.models_mount, "read_only": True})
        resources = {k: dict(v) for k, v in self.stage_resources.get(command.stage, {}).items()}
        env_from: list[dict[str, Any]] = [{"config_map_ref": {"name": self.config_map}}]
        env_from += [{"secret_ref": {"name": name}} for name in secrets]
        container: dict[str, Any] = {
            "name": "stage",
            "image_pull_policy": self.image_pull_policy,
            "env_from": env_from,
            "env": [{"name": "LAKE_DIR", "value": self.lake_mount}],
            "volume_mounts": mounts,
            "resources": resources,
            "security_context": {
                "allow_privilege_escalation": False,
                "read_only_root_filesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        spec: dict[str, Any] = {
            "restart_policy": "Never",
            # the backstop of the in-container timeout (TERM, KILL 15 s later)
            "active_deadline_seconds": int(timeout) + KILL_AFTER_SECONDS + 30,
            # the stage never talks to the Kubernetes API
            "automount_service_account_token": False,
            "security_context": {
                "run_as_non_root": True,
                "run_as_user": STAGE_UID,
                "run_as_group": STAGE_UID,
                "fs_group": STAGE_UID,
                "seccomp_profile": {"type": "RuntimeDefault"},
            },
            "volumes": volumes,
            "containers": [container],
        }
        if self.service_account_name:
            spec["service_account_name"] = self.service_account_name
        if command.stage in self.gpu_stages:
            resources.setdefault("limits", {})["nvidia.com/gpu"] = "1"
            if self.gpu_node_selector:
                spec["node_selector"] = dict(self.gpu_node_selector)
            if self.gpu_tolerations:
                spec["tolerations"] = [dict(t) for t in self.gpu_tolerations]
        labels = {
            "app.kubernetes.io/part-of": "tgmed",
            "app.kubernetes.io/component": command.stage,
            INVOCATION_LABEL: _invocation_id(command),
        }
        with contextlib.suppress(Exception):  # a context built outside a run (tests)
            labels["dagster/run-id"] = context.run.run_id
        return {
            "image": self.images[command.stage],
            "command": with_timeout(list(command.argv), timeout),
            "namespace": self.namespace,
            "base_pod_meta": {"labels": labels},
            "base_pod_spec": spec,
            "pod_wait_timeout": timeout + KILL_AFTER_SECONDS + 120,
        }

    def _run(
        self, context: Context, command: StageCommand, timeout: float, extras: dict[str, Any]
    ) -> Any:
        from dagster_k8s import PipesK8sClient, PipesK8sPodLogsMessageReader

        class RecordingPodLogsReader(_Recording, PipesK8sPodLogsMessageReader):
            pass

        config = self.pod_config(context, command, timeout)
        context.log.info(
            f"stage pod {config['base_pod_meta']['labels'][INVOCATION_LABEL]}"
            f" ({config['image']}, namespace {config['namespace']})"
        )
        reader = RecordingPodLogsReader()
        client = PipesK8sClient(
            message_reader=reader,
            load_incluster_config=self.load_incluster_config or None,
            kubeconfig_file=None if self.load_incluster_config else self.kubeconfig_file,
            poll_interval=self.poll_interval_seconds,
        )
        try:
            # the pod stays until its exit code is read (the client reports none)
            client.run(context=context, extras=extras, delete_pod_on_completion=False, **config)
        except Exception as error:
            code, how = self.exit_code(config, error)
            context.log.info(how)
            raise _StageExit(reader.handler, code, f"{how}\n{str(error)[-3000:]}") from None
        finally:
            self._delete_pods(config)
        return reader.handler

    def _pods(self, config: dict[str, Any]) -> list[Any]:
        from dagster_k8s.client import DagsterKubernetesClient

        label = config["base_pod_meta"]["labels"][INVOCATION_LABEL]
        client = DagsterKubernetesClient.production_client()
        pods = client.core_api.list_namespaced_pod(
            config["namespace"], label_selector=f"{INVOCATION_LABEL}={label}"
        )
        return list(getattr(pods, "items", None) or [])

    def exit_code(self, config: dict[str, Any], error: BaseException) -> tuple[int | None, str]:
        """The failed stage pod's exit code, and how it was found. A pod deleted while it
        ran (`kubectl delete pod`, a node drain) is stopped from outside like SIGTERM
        (143): not retried, the run fails and alerts."""
        label = config["base_pod_meta"]["labels"][INVOCATION_LABEL]
        try:
            pods = self._pods(config)
        except Exception as failed:
            return None, f"stage pod {label}: unknown exit code ({type(failed).__name__})"
        for pod in pods:
            name = pod.metadata.name
            for status in pod.status.container_statuses or []:
                terminated = status.state.terminated if status.state else None
                if terminated is not None:
                    code = int(terminated.exit_code)
                    return code, f"pod {name} exited with {code} ({terminated.reason or '-'})"
            if pod.status.reason == "DeadlineExceeded":
                return TIMEOUT_EXIT, f"pod {name} ran past its activeDeadlineSeconds"
            if pod.metadata.deletion_timestamp is not None:
                return 143, f"pod {name} was deleted while it ran"
            return None, f"pod {name}: no exit code ({pod.status.phase})"
        if "unexpectedly killed" in str(error):  # the client saw the pod disappear
            return 143, f"stage pod {label} was deleted while it ran"
        return None, f"stage pod {label}: none found (never created?)"

    def _delete_pods(self, config: dict[str, Any]) -> None:
        from dagster_k8s.client import DagsterKubernetesClient

        with contextlib.suppress(Exception):
            client = DagsterKubernetesClient.production_client()
            for pod in self._pods(config):
                client.core_api.delete_namespaced_pod(pod.metadata.name, config["namespace"])


def launcher_from_settings() -> StageLauncher:
    """The launcher of TGMED_LAUNCH_MODE, configured from the TGMED_* settings."""
    from tgmed_orchestrator.settings import orchestrator_settings

    settings = orchestrator_settings()
    gpu_stages = [part.strip() for part in settings.gpu_stages.split(",") if part.strip()]
    images = {
        stage: getattr(settings, f"image_{stage}")
        or DEFAULT_IMAGES[stage].replace(":latest", f":{settings.image_tag}")
        for stage in STAGES
    }
    timeouts = {
        "timeout_seconds": settings.stage_timeout_seconds,
        "stage_timeouts": dict(settings.stage_timeouts),
    }
    if settings.launch_mode == "docker":
        memory = dict(
            part.strip().split("=", 1)
            for part in settings.docker_stage_memory.split(",")
            if "=" in part
        )
        return DockerStageLauncher(
            memory_limits={stage.strip(): limit.strip() for stage, limit in memory.items()},
            network=settings.docker_network,
            lake_volume=settings.docker_lake_volume,
            exports_volume=settings.docker_exports_volume or None,
            models_volume=settings.docker_models_volume or None,
            gpu_stages=gpu_stages,
            images=images,
            **timeouts,
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
            images=images,
            **timeouts,
        )
    return LocalStageLauncher(
        bin_dirs={"detect": settings.yolo_bin} if settings.yolo_bin else {}, **timeouts
    )
