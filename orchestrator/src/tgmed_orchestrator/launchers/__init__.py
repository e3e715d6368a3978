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

The package, by concern: base.py (the interface and StageRun), local_mode.py,
docker_mode.py and k8s_mode.py (one module per mode), pipes.py (the Pipes clients'
workarounds), lifetime.py (timeouts; nothing outlives its run), from_settings.py (the
launcher of TGMED_LAUNCH_MODE).
"""

from tgmed_orchestrator.launchers.base import (
    DEFAULT_IMAGES,
    INVOCATION_LABEL,
    REQUIRED_ENV,
    STAGE_LABEL,
    STAGE_UID,
    TIMEOUT_TAG,
    Context,
    StageLauncher,
    StageRun,
)
from tgmed_orchestrator.launchers.docker_mode import DockerStageLauncher, reap_orphans
from tgmed_orchestrator.launchers.from_settings import launcher_from_settings
from tgmed_orchestrator.launchers.k8s_mode import K8S_STAGE_RESOURCES, K8sStageLauncher
from tgmed_orchestrator.launchers.lifetime import (
    KILL_AFTER_SECONDS,
    TIMEOUT_EXIT,
    dying_with_parent,
    end_with_the_run,
    signal_exit_code,
    with_timeout,
)
from tgmed_orchestrator.launchers.local_mode import LocalStageLauncher

__all__ = [
    "DEFAULT_IMAGES",
    "INVOCATION_LABEL",
    "K8S_STAGE_RESOURCES",
    "KILL_AFTER_SECONDS",
    "REQUIRED_ENV",
    "STAGE_LABEL",
    "STAGE_UID",
    "TIMEOUT_EXIT",
    "TIMEOUT_TAG",
    "Context",
    "DockerStageLauncher",
    "K8sStageLauncher",
    "LocalStageLauncher",
    "StageLauncher",
    "StageRun",
    "dying_with_parent",
    "end_with_the_run",
    "launcher_from_settings",
    "reap_orphans",
    "signal_exit_code",
    "with_timeout",
]
