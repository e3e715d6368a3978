"""Docker mode: one container per stage invocation (PipesDockerClient, dagster-docker)."""

from __future__ import annotations

import contextlib
import os
from pathlib import PurePosixPath
from typing import Any

from dagster import Failure

from tgmed_orchestrator.launchers.base import (
    DEFAULT_IMAGES,
    INVOCATION_LABEL,
    REQUIRED_ENV,
    STAGE_LABEL,
    Context,
    StageExit,
    StageLauncher,
    invocation_id,
    labels,
)
from tgmed_orchestrator.launchers.lifetime import with_timeout
from tgmed_orchestrator.launchers.pipes import recording_docker_client
from tgmed_orchestrator.stages import StageCommand


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
            "labels": labels(context, command, invocation_id(command)),
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

    def _run(self, context: Context, command: StageCommand, timeout: float) -> Any:
        import docker

        engine = docker.client.from_env()
        reap_orphans(context, engine)
        config = self.container_config(context, command, timeout)
        reader, client = recording_docker_client()
        try:
            client.run(context=context, **config)
        except Exception as error:  # the client's text: "Container exited with non-zero ..."
            # how it ended, from the engine: the container stays (prune removes it)
            state = invocation_state(engine, config)
            code = state.get("ExitCode") if state.get("Status") == "exited" else None
            reason = None
            if state.get("OOMKilled"):
                limit = config["container_kwargs"].get("mem_limit", "the host's memory")
                reason = f"out of memory: the {command.stage} stage exceeded {limit}"
                context.log.error(f"{command.display}: {reason}")
            raise StageExit(reader.handler, code or None, str(error), reason) from None
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


def invocation_state(engine: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The engine's State of the container this invocation created, found by its label
    (ExitCode, OOMKilled, Status); {} when there is none (never created)."""
    label = config["container_kwargs"]["labels"][INVOCATION_LABEL]
    with contextlib.suppress(Exception):
        for container in engine.containers.list(
            all=True, filters={"label": f"{INVOCATION_LABEL}={label}"}
        ):
            return dict(container.attrs.get("State") or {})
    return {}


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
