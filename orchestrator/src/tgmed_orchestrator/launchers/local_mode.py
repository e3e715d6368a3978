"""Local mode: the stage CLIs as subprocesses (PipesSubprocessClient)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from dagster import Failure, PipesSubprocessClient

from tgmed_orchestrator.launchers.base import Context, StageExit, StageLauncher
from tgmed_orchestrator.launchers.lifetime import (
    KILL_AFTER_SECONDS,
    dying_with_parent,
    end_with_the_run,
    with_timeout,
)
from tgmed_orchestrator.launchers.pipes import WholeLineFileReader, exit_code_from
from tgmed_orchestrator.stages import TELEGRAM_ENV, StageCommand


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

    def _run(self, context: Context, command: StageCommand, timeout: float) -> Any:
        if shutil.which("timeout") is None:
            raise Failure(description="coreutils `timeout` is not on PATH", allow_retries=False)
        reader = WholeLineFileReader()
        client = PipesSubprocessClient(
            message_reader=reader, cwd=self.cwd, termination_timeout_seconds=KILL_AFTER_SECONDS
        )
        stop_watching = end_with_the_run(context)
        try:
            client.run(
                context=context,
                command=self.argv(command, timeout),
                env=self.stage_env(command),
            )
        except Exception as error:  # DagsterPipesExecutionError: "failed with code N"
            raise StageExit(reader.handler, exit_code_from(error), str(error)) from None
        finally:
            stop_watching()
        return reader.handler
