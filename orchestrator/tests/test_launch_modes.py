"""Docker and Kubernetes launch modes through their Pipes clients. The docker client
and the Kubernetes API are patched (no engine or cluster in unit tests), but the stage
itself is real: the container or pod the client asks for is run here as a process, with
exactly the environment and command it was given (its mounts mapped to folders), and
its output is what the client reads back, so the Pipes round trip (context in, log
lines, materializations and the outcome out) is the real one. The pod spec is validated
strictly against the Kubernetes 1.33 schema. Docker runs for real in `make e2e`."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import kubernetes_validate
import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Failure,
    build_op_context,
    job,
    op,
)
from kubernetes.client import ApiClient

from tgmed_orchestrator import stages
from tgmed_orchestrator.alerts import Alerter
from tgmed_orchestrator.definitions import defs
from tgmed_orchestrator.launchers import (
    INVOCATION_LABEL,
    STAGE_LABEL,
    DockerStageLauncher,
    K8sStageLauncher,
    LocalStageLauncher,
    launcher_from_settings,
)

from .conftest import make_sample

ENV = {
    "DATABASE_URL": "postgresql://tgmed:s3cret-pass@db:5432/tgmed",
    "TELEGRAM_API_ID": "123",
    "TELEGRAM_API_HASH": "hash-secret",
    "TELEGRAM_SESSION": "session-secret",
    "DETECT_MODEL": "/models/yolov8n.onnx",
    "DETECT_BATCH_SIZE": "8",
}
BIN = Path(sys.executable).parent


@pytest.fixture
def stage_env(monkeypatch):
    # exactly ENV: optional stage variables pass through only when set (make test sets
    # YOLO_OFFLINE, for example), so clear every one the stages may read
    for name in {name for names in stages.STAGE_ENV.values() for name in names}:
        monkeypatch.delenv(name, raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def docker_launcher(**overrides) -> DockerStageLauncher:
    return DockerStageLauncher(
        **{"network": "tgmed", "lake_volume": "tgmed-lake", "gpu_stages": ["detect"], **overrides}
    )


def test_docker_configuration_per_stage(stage_env):
    launcher = docker_launcher(exports_volume="tgmed-exports", models_volume="tgmed-models")
    context = build_op_context()
    configs = {
        "scrape": launcher.container_config(context, stages.scrape_telegram(["CheMed123", "b"])),
        "export": launcher.container_config(
            context, stages.scrape_export(launcher.export_path("/x", "CheMed123"), "chemed123")
        ),
        "detect": launcher.container_config(context, stages.detect(1, 4)),
        "load": launcher.container_config(context, stages.load("messages")),
        "transform": launcher.container_config(context, stages.transform()),
    }
    for config in configs.values():
        kwargs = config["container_kwargs"]
        assert kwargs["network"] == "tgmed"
        assert kwargs["volumes"]["tgmed-lake"] == {"bind": "/lake", "mode": "rw"}
        assert config["env"]["LAKE_DIR"] == "/lake"
        assert kwargs["labels"][STAGE_LABEL] in stages.STAGES
        # every stage runs under its timeout, in the container
        assert config["command"][:3] == ["timeout", "--kill-after=15", "3600"]
        assert "/var/run/docker.sock" not in str(kwargs)
    scrape, export, detect = configs["scrape"], configs["export"], configs["detect"]
    assert scrape["image"] == "tgmed-scraper:latest"
    # all Telegram channels in one process: one session
    assert scrape["command"][3:] == [
        "tgmed-scraper",
        "scrape",
        "--channel",
        "CheMed123",
        "--channel",
        "b",
    ]
    assert sorted(scrape["env"]) == [
        "LAKE_DIR",
        "TELEGRAM_API_HASH",
        "TELEGRAM_API_ID",
        "TELEGRAM_SESSION",
    ]
    assert export["command"][3:] == [
        "tgmed-scraper",
        "import-export",
        "/exports/CheMed123",
        "--channel",
        "chemed123",
    ]
    assert export["container_kwargs"]["volumes"]["tgmed-exports"] == {
        "bind": "/exports",
        "mode": "ro",
    }
    assert detect["image"] == "tgmed-yolo:latest"
    assert detect["command"][3:] == ["tgmed-yolo", "detect", "--shard", "1/4"]
    assert detect["env"] == {
        "LAKE_DIR": "/lake",
        "DETECT_MODEL": "/models/yolov8n.onnx",
        "DETECT_BATCH_SIZE": "8",
    }
    assert detect["container_kwargs"]["device_requests"] == [
        {"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}
    ]
    assert detect["container_kwargs"]["volumes"]["tgmed-models"] == {
        "bind": "/models",
        "mode": "ro",
    }
    for name in ["scrape", "load", "transform"]:
        assert "device_requests" not in configs[name]["container_kwargs"]
        assert "tgmed-models" not in configs[name]["container_kwargs"]["volumes"]
    assert configs["load"]["image"] == "tgmed-loader:latest"
    assert sorted(configs["load"]["env"]) == ["DATABASE_URL", "LAKE_DIR"]
    assert sorted(configs["transform"]["env"]) == ["DATABASE_URL", "LAKE_DIR"]
    # no stage sees another stage's secret
    assert "DATABASE_URL" not in {**scrape["env"], **detect["env"], **export["env"]}
    assert "TELEGRAM_SESSION" not in configs["load"]["env"]


def test_an_export_import_gets_no_telegram_variable_in_any_mode(stage_env, tmp_path):
    """It reads files someone sent: with the Telegram credentials set for the scrape,
    the import still gets none of them (docker env, k8s Secrets, local environment)."""
    command = stages.scrape_export("/exports/a", "a")
    docker_env = docker_launcher(exports_volume="x").container_config(build_op_context(), command)[
        "env"
    ]
    assert not {"TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_SESSION"} & set(docker_env)
    k8s = k8s_launcher(exports_claim="x").pod_config(build_op_context(), command)
    container = k8s["base_pod_spec"]["containers"][0]
    assert {"secret_ref": {"name": "tgmed-telegram"}} not in container["env_from"]
    assert all("TELEGRAM" not in item["name"] for item in container["env"])
    # local: the same command line, the child's environment without them
    local = LocalStageLauncher()
    argv = local.argv(command, 60)
    probe = [
        *argv[: argv.index("timeout")],
        sys.executable,
        "-c",
        "import os; print(sorted(os.environ))",
    ]
    seen = subprocess.run(probe, capture_output=True, text=True, check=True).stdout
    assert "TELEGRAM" not in seen and "DATABASE_URL" in seen
    assert "TELEGRAM_SESSION" in os.environ  # only the child lost them


def test_docker_mode_without_gpu_and_exports(stage_env):
    launcher = docker_launcher(gpu_stages=[])
    context = build_op_context()
    kwargs = launcher.container_config(context, stages.detect(0, 1))["container_kwargs"]
    assert "device_requests" not in kwargs
    with pytest.raises(Exception, match="TGMED_DOCKER_EXPORTS_VOLUME"):
        launcher.container_config(context, stages.scrape_export("/exports/a", "a"))


def fake_container(lines: list[bytes], code: int, oom: bool = False):
    container = mock.MagicMock()
    container.logs.side_effect = lambda **kw: iter(lines)
    container.wait.return_value = {"StatusCode": code}
    container.attrs = {"State": {"Status": "exited", "ExitCode": code, "OOMKilled": oom}}
    return container


def engine(create):
    """A Docker client whose containers.create makes containers with `create`; list finds
    them by their invocation label, as the engine does (and no orphan to reap)."""
    created = []
    client = mock.MagicMock()

    def making(image, **kwargs):
        created.append((kwargs.get("labels") or {}, create(image, **kwargs)))
        return created[-1][1]

    def listing(all=False, filters=None):
        wanted = (filters or {}).get("label", "")
        return [
            c
            for labels, c in created
            if wanted == f"{INVOCATION_LABEL}={labels.get(INVOCATION_LABEL)}"
        ]

    client.containers.create.side_effect = making
    client.containers.list.side_effect = listing
    return client


def test_docker_memory_limit_per_stage(stage_env):
    launcher = docker_launcher(memory_limits={"detect": "64m"})
    context = build_op_context()
    detect = launcher.container_config(context, stages.detect(0, 1))
    load = launcher.container_config(context, stages.load("messages"))
    assert detect["container_kwargs"]["mem_limit"] == "64m"
    assert detect["container_kwargs"]["memswap_limit"] == "64m"  # no swap beyond it
    assert "mem_limit" not in load["container_kwargs"]


def launch_in_a_run(launcher, command):
    """launcher.launch inside a real (in-process) run: Pipes needs a step's context."""
    launched = []

    @op
    def launching(context):
        launched.append(launcher.launch(context, command))

    @job
    def one_stage():
        launching()

    assert one_stage.execute_in_process(instance=DagsterInstance.ephemeral()).success
    return launched[0]


def test_a_stage_killed_for_memory_says_so_and_is_not_retried(stage_env):
    """Regression (fault suite, scenario 3): an OOM-killed stage container was reported
    as "SIGKILL: docker kill, out of memory", the same words as an operator's kill; the
    container runtime knows which it was (its state's OOMKilled), and the step says so."""
    from tgmed_orchestrator.outcomes import failure

    client = engine(lambda image, **kw: fake_container([b"loading the model\n"], 137, oom=True))
    launcher = docker_launcher(memory_limits={"detect": "64m"})
    with mock.patch("docker.client.from_env", return_value=client):
        run = launch_in_a_run(launcher, stages.detect(0, 1))
    [call] = client.containers.create.call_args_list
    assert call.kwargs["mem_limit"] == "64m"
    assert run.exit_code == 137 and run.reason == "out of memory: the detect stage exceeded 64m"
    made = failure(run)
    assert "exited with 137: killed: out of memory: the detect stage exceeded 64m" in (
        made.description
    )
    assert "(not retried)" in made.description
    assert made.allow_retries is False
    # the same exit without OOMKilled: an operator's kill, in the usual words
    client = engine(lambda image, **kw: fake_container([b"x\n"], 137))
    with mock.patch("docker.client.from_env", return_value=client):
        run = launch_in_a_run(launcher, stages.detect(0, 1))
    assert run.reason is None
    assert "killed from outside (SIGKILL" in failure(run).description


def test_stage_containers_of_finished_runs_are_stopped_before_a_stage_starts():
    """Regression (fault suite, kill -9 of a run worker container): run monitoring marks
    the run failed, but its stage containers went on writing the lake and the warehouse
    beside the next run."""
    from dagster import DagsterRun, DagsterRunStatus

    from tgmed_orchestrator.launchers import reap_orphans

    instance = DagsterInstance.ephemeral()
    for run_id, status in [("dead", DagsterRunStatus.FAILURE), ("alive", DagsterRunStatus.STARTED)]:
        instance.add_run(DagsterRun(job_name="telegram_pipeline", run_id=run_id, status=status))
    containers = {}
    for run_id in ["dead", "alive", "gone"]:
        container = mock.MagicMock()
        container.name = f"stage-of-{run_id}"
        container.labels = {"dagster/run-id": run_id, "tgmed.invocation": "build"}
        containers[run_id] = container
    client = mock.MagicMock()
    client.containers.list.return_value = list(containers.values())
    stopped = reap_orphans(build_op_context(instance=instance), client)
    assert stopped == ["stage-of-dead", "stage-of-gone"]  # "gone": no such run any more
    containers["dead"].kill.assert_called_once_with()
    containers["alive"].kill.assert_not_called()
    client.containers.list.assert_called_once_with(filters={"label": STAGE_LABEL})


def run_as_container(
    command: list[str], env: dict[str, str], mounts: dict[str, Path]
) -> list[bytes]:
    """What the container (or pod) would print: the stage run here with exactly the
    given environment (mount points mapped to folders) and command."""
    mapped = {}
    for name, value in env.items():
        for mount, folder in mounts.items():
            if value.startswith(mount):
                value = str(folder) + value[len(mount) :]
        mapped[name] = value
    argv = []
    for part in command:
        for mount, folder in mounts.items():
            if part.startswith(mount):
                part = str(folder) + part[len(mount) :]
        argv.append(part)
    argv[argv.index("tgmed-scraper")] = str(BIN / "tgmed-scraper")
    done = subprocess.run(
        argv,
        env={**mapped, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    return done.stdout.splitlines(keepends=True)


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    return make_sample(tmp_path_factory.mktemp("exports"), posts=4)


def test_docker_mode_runs_each_import_in_its_own_container_through_pipes(
    stage_env, tmp_path, exports
):
    """scrape_and_load's lake step, docker mode, export source: one container per
    channel, created with only the stage's variables and volumes; the stage (run here
    as that container) reports through Pipes, and its counts become the per-channel
    partitions' metadata."""
    lake = tmp_path / "lake"
    created = []

    def create(image, command, detach, environment, **kwargs):
        created.append({"image": image, "command": command, "environment": environment, **kwargs})
        lines = run_as_container(command, environment, {"/lake": lake, "/exports": exports})
        container = mock.MagicMock()
        container.logs.side_effect = lambda **kw: iter(lines)
        container.wait.return_value = {"StatusCode": 0}
        return container

    client = mock.MagicMock()
    client.containers.create.side_effect = create
    launcher = docker_launcher(exports_volume="tgmed-exports")
    job_def = defs.resolve_job_def("scrape_and_load")
    with mock.patch("docker.client.from_env", return_value=client):
        result = job_def.execute_in_process(
            resources={"launcher": launcher, "alerter": Alerter()},
            run_config={
                "ops": {
                    "telegram_lake": {"config": {"source": "export", "export_root": str(exports)}}
                }
            },
            instance=DagsterInstance.ephemeral(),
            op_selection=["telegram_lake"],
        )
    assert result.success
    assert len(created) == 3  # one container per channel's export
    for call in created:
        assert call["image"] == "tgmed-scraper:latest"
        assert call["network"] == "tgmed"
        assert set(call["volumes"]) == {"tgmed-lake", "tgmed-exports"}
        names = set(call["environment"])
        assert names - {"LAKE_DIR"} == {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}
    materialized = {
        (
            e.asset_key.to_user_string(),
            e.event_specific_data.materialization.partition,
        ): e.event_specific_data.materialization.metadata
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    channels = {"chemed123", "lobelia4cosmetics", "tikvahpharma"}
    per_channel = {
        c: materialized[("lake/telegram_messages", c)]["messages"].value for c in channels
    }
    assert all(count > 0 for count in per_channel.values())
    assert materialized[("lake/telegram_messages", None)]["messages_written"].value == sum(
        per_channel.values()
    )
    assert len(list((lake / "raw" / "telegram_messages").rglob("*.jsonl"))) > 0


def test_execute_docker_container_merges_the_run_launcher_and_pipes_docker_does_not(
    stage_env, monkeypatch
):
    """Why the design's docker_container_op is not used: execute_docker_container, under
    a DockerRunLauncher whose env holds Dagster's storage URL (with its password) and
    whose volumes hold docker.sock, gives both to the stage container; the stage
    launcher (PipesDockerClient) under the same instance gives neither."""
    from dagster import instance_for_test
    from dagster_docker import execute_docker_container

    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql://dagster:storage-password@pg/dagster")
    captured = []

    def create(image, **kwargs):
        captured.append(kwargs)
        container = mock.MagicMock()
        container.logs.side_effect = lambda **kw: iter([b'{"stage": "load"}\n'])
        container.wait.return_value = {"StatusCode": 0}
        return container

    client = mock.MagicMock()
    client.containers.create.side_effect = create

    @op
    def design_op(context):
        execute_docker_container(
            context, image="tgmed-loader:latest", command=["tgmed-loader", "init-db"]
        )

    @op
    def our_op(context):
        docker_launcher().launch(context, stages.init_db())

    @job
    def both():
        design_op()
        our_op()

    launcher_config = {
        "module": "dagster_docker",
        "class": "DockerRunLauncher",
        "config": {
            "network": "tgmed",
            "env_vars": ["DAGSTER_PG_URL"],
            "container_kwargs": {"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]},
        },
    }
    with (
        instance_for_test(overrides={"run_launcher": launcher_config}) as instance,
        mock.patch("docker.client.from_env", return_value=client),
    ):
        assert both.execute_in_process(instance=instance).success
    design, ours = captured
    design_env = design["environment"]
    design_env = (
        design_env if isinstance(design_env, dict) else dict(e.split("=", 1) for e in design_env)
    )
    assert "storage-password" in design_env.get("DAGSTER_PG_URL", "")
    assert "/var/run/docker.sock" in str(design.get("volumes"))
    assert "DAGSTER_PG_URL" not in ours["environment"]
    assert "storage-password" not in str(ours)
    assert "/var/run/docker.sock" not in str(ours.get("volumes"))


def test_docker_prune_removes_only_exited_stage_containers():
    client = mock.MagicMock()
    finished = [mock.MagicMock(), mock.MagicMock()]
    client.containers.list.return_value = finished
    with mock.patch("docker.client.from_env", return_value=client):
        assert docker_launcher().prune(build_op_context()) == 2
    client.containers.list.assert_called_once_with(
        all=True, filters={"label": STAGE_LABEL, "status": "exited"}
    )
    for container in finished:
        container.remove.assert_called_once_with()


def k8s_launcher(**overrides) -> K8sStageLauncher:
    return K8sStageLauncher(**{"namespace": "tgmed", "gpu_stages": ["detect"], **overrides})


def test_k8s_pod_configuration_per_stage():
    launcher = k8s_launcher(exports_claim="tgmed-exports", models_claim="tgmed-models")
    context = build_op_context()
    detect = launcher.pod_config(context, stages.detect(0, 2))
    load = launcher.pod_config(context, stages.load("messages"))
    scrape = launcher.pod_config(context, stages.scrape_telegram(["a", "b"]))
    for config in (detect, load, scrape):
        spec = config["base_pod_spec"]
        container = spec["containers"][0]
        assert config["namespace"] == "tgmed"
        assert container["env_from"][0] == {"config_map_ref": {"name": "tgmed-config"}}
        assert container["env"] == [{"name": "LAKE_DIR", "value": "/lake"}]
        assert spec["volumes"][:2] == [
            {"name": "lake", "persistent_volume_claim": {"claim_name": "tgmed-lake"}},
            {"name": "tmp", "empty_dir": {}},
        ]
        assert container["volume_mounts"][:2] == [
            {"name": "lake", "mount_path": "/lake"},
            {"name": "tmp", "mount_path": "/tmp"},
        ]
        assert spec["restart_policy"] == "Never"
        assert spec["service_account_name"] == "tgmed-stage"
        assert spec["active_deadline_seconds"] > 3600  # the in-container timeout's backstop
        assert config["command"][:3] == ["timeout", "--kill-after=15", "3600"]
        # secure by default: no API token, non-root, read-only root filesystem
        assert spec["automount_service_account_token"] is False
        assert spec["security_context"]["run_as_non_root"] is True
        assert spec["security_context"]["seccomp_profile"] == {"type": "RuntimeDefault"}
        security = container["security_context"]
        assert security["read_only_root_filesystem"] is True
        assert security["allow_privilege_escalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert detect["image"] == "tgmed-yolo:latest"
    assert detect["base_pod_spec"]["containers"][0]["resources"]["limits"] == {
        "cpu": "4",
        "memory": "6Gi",
        "nvidia.com/gpu": "1",
    }
    assert detect["base_pod_spec"]["volumes"][2] == {
        "name": "models",
        "persistent_volume_claim": {"claim_name": "tgmed-models"},
    }
    assert detect["base_pod_spec"]["containers"][0]["volume_mounts"][2] == {
        "name": "models",
        "mount_path": "/models",
        "read_only": True,
    }
    assert [v["name"] for v in load["base_pod_spec"]["volumes"]] == ["lake", "tmp"]
    assert "nvidia.com/gpu" not in load["base_pod_spec"]["containers"][0]["resources"]["limits"]
    assert load["base_pod_spec"]["containers"][0]["env_from"][1:] == [
        {"secret_ref": {"name": "tgmed-database"}}
    ]
    assert scrape["base_pod_spec"]["containers"][0]["env_from"][1:] == [
        {"secret_ref": {"name": "tgmed-telegram"}}
    ]
    assert scrape["command"][3:] == ["tgmed-scraper", "scrape", "--channel", "a", "--channel", "b"]


def test_k8s_pods_carry_the_templates_labels_and_annotations_under_their_own():
    """What an overlay adds to the PodTemplate's metadata reaches every stage pod; the
    launcher's own labels (component, invocation) win over the template's."""
    template = {
        "metadata": {
            "labels": {"team": "data", "app.kubernetes.io/component": "template"},
            "annotations": {"tgmed.io/overlay": "local"},
        },
        "spec": {"containers": [{"name": "stage", "image": "placeholder"}]},
    }
    config = k8s_launcher().pod_config(build_op_context(), stages.load("messages"), 60, template)
    meta = config["base_pod_meta"]
    assert meta["annotations"] == {"tgmed.io/overlay": "local"}
    assert meta["labels"]["team"] == "data"
    assert meta["labels"]["app.kubernetes.io/component"] == "load"
    [container] = config["base_pod_spec"]["containers"]
    assert container["image"] == config["image"] == "tgmed-loader:latest"
    # a template without the stage container is refused, not guessed at
    broken = {"spec": {"containers": [{"name": "other", "image": "x"}]}}
    with pytest.raises(Failure, match="no container named stage"):
        k8s_launcher().pod_config(build_op_context(), stages.load("messages"), 60, broken)


def test_k8s_mode_through_pipes_against_a_captured_pod_spec(tmp_path, exports):
    """The lake step in k8s mode (export source, one channel): PipesK8sClient's pod
    passes the Kubernetes 1.33 schema strictly; the stage, run here with the pod's
    environment and command, reports through the pod log, and the pod is removed."""
    lake = tmp_path / "lake"
    client = mock.MagicMock()
    pods = []

    def create_pod(namespace, body):
        pods.append((namespace, body))

    def pod_log(name, namespace, **kwargs):
        _, body = pods[-1]
        container = body.spec.containers[0]
        env = {item.name: item.value for item in container.env}
        lines = run_as_container(list(container.command), env, {"/lake": lake, "/exports": exports})
        start = datetime.now(UTC)
        stamps = [
            (start + timedelta(microseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            for i in range(len(lines))
        ]
        return iter(
            [f"{stamp} ".encode() + line for stamp, line in zip(stamps, lines, strict=True)]
        )

    client.core_api.create_namespaced_pod.side_effect = create_pod
    client.core_api.read_namespaced_pod_log.side_effect = pod_log
    launcher = k8s_launcher(exports_claim="tgmed-exports", poll_interval_seconds=0.1)
    with (
        mock.patch("kubernetes.config.load_incluster_config") as incluster,
        mock.patch(
            "dagster_k8s.client.DagsterKubernetesClient.production_client", return_value=client
        ),
    ):
        result = defs.resolve_job_def("scrape_and_load").execute_in_process(
            resources={"launcher": launcher, "alerter": Alerter()},
            run_config={
                "ops": {
                    "telegram_lake": {
                        "config": {
                            "source": "export",
                            "export_root": str(exports),
                            "channels": ["tikvahpharma"],
                        }
                    }
                }
            },
            instance=DagsterInstance.ephemeral(),
            op_selection=["telegram_lake"],
        )
    assert result.success
    assert incluster.called
    [(namespace, body)] = pods
    assert namespace == "tgmed"
    # POSTed to /api/v1/namespaces/tgmed/pods: the server knows what it is
    manifest = {"apiVersion": "v1", "kind": "Pod", **ApiClient().sanitize_for_serialization(body)}
    for version in ("1.25", "1.29", "1.33"):
        kubernetes_validate.validate(manifest, version, strict=True)
    spec = manifest["spec"]
    container = spec["containers"][0]
    assert container["image"] == "tgmed-scraper:latest"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    assert spec["securityContext"] == {
        "fsGroup": 10001,
        "runAsGroup": 10001,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["serviceAccountName"] == "tgmed-stage"
    assert spec["automountServiceAccountToken"] is False
    assert container["command"][3:] == [
        "tgmed-scraper",
        "import-export",
        "/exports/tikvahpharma",
        "--channel",
        "tikvahpharma",
    ]
    assert {"mountPath": "/exports", "name": "exports", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert container["envFrom"] == [
        {"configMapRef": {"name": "tgmed-config"}}
    ]  # no Telegram Secret
    assert {e["name"] for e in container["env"]} == {
        "LAKE_DIR",
        "DAGSTER_PIPES_CONTEXT",
        "DAGSTER_PIPES_MESSAGES",
    }
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 3600 + 15 + 30
    assert manifest["metadata"]["labels"]["app.kubernetes.io/component"] == "scrape"
    [materialization] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
        and e.asset_key == AssetKey(["lake", "telegram_messages"])
        and e.event_specific_data.materialization.partition == "tikvahpharma"
    ]
    assert materialization.metadata["messages"].value > 0
    client.core_api.delete_namespaced_pod.assert_not_called()  # listed by label, then deleted
    assert client.core_api.list_namespaced_pod.called


def stage_pod(exit_code: int | None, reason: str = "Error", deleting: bool = False):
    pod = mock.MagicMock()
    pod.metadata.name = "dagster-run-transform-pod"
    pod.metadata.deletion_timestamp = datetime.now(UTC) if deleting else None
    pod.status.reason = None
    status = mock.MagicMock()
    if exit_code is None:
        status.state.terminated = None
    else:
        status.state.terminated.exit_code = exit_code
        status.state.terminated.reason = reason
    pod.status.container_statuses = [status]
    return pod


def run_failing_pod(pods: list, error: str, created: bool = True):
    """A stage op (with the jobs' retry policy) whose pod fails: the mocked API waits for
    it, then raises `error`; listing the invocation's pods gives `pods`. Not `created`:
    the API refuses to create the pod (403)."""
    from dagster import RetryPolicy
    from dagster_k8s.client import DagsterK8sError
    from kubernetes.client.exceptions import ApiException

    from tgmed_orchestrator import outcomes

    client = mock.MagicMock()
    if not created:
        client.core_api.create_namespaced_pod.side_effect = ApiException(403, error)
    client.core_api.read_namespaced_pod_log.side_effect = lambda *a, **kw: iter([])

    def wait_for_pod(name, namespace, wait_for_state, **kwargs):
        if wait_for_state.name == "Terminated":
            raise DagsterK8sError(error)

    client.wait_for_pod.side_effect = wait_for_pod
    client.core_api.list_namespaced_pod.return_value.items = pods

    @op(retry_policy=RetryPolicy(max_retries=2), required_resource_keys={"launcher"})
    def transform_op(context):
        launcher = context.resources.launcher
        outcomes.check(launcher.launch(context, stages.transform()))

    @job(resource_defs={"launcher": k8s_launcher(poll_interval_seconds=0.1)})
    def transform_only():
        transform_op()

    with (
        mock.patch("kubernetes.config.load_incluster_config"),
        mock.patch(
            "dagster_k8s.client.DagsterKubernetesClient.production_client", return_value=client
        ),
    ):
        result = transform_only.execute_in_process(
            instance=DagsterInstance.ephemeral(), raise_on_error=False
        )
    return result, client


@pytest.mark.parametrize(
    ("pods", "created", "attempts", "expected"),
    [
        # a usage/configuration error: the same pod would fail the same way
        ([stage_pod(2)], True, 1, "exited with 2: usage or configuration error"),
        # killed from outside (kubectl delete, OOM): a person is alerted instead
        ([stage_pod(137, "OOMKilled")], True, 1, "exited with 137: killed from outside"),
        # deleted while it ran, still terminating: stopped from outside
        ([stage_pod(None, deleting=True)], True, 1, "exited with 143: killed from outside"),
        # deleted while it ran and gone: the client saw it run, it is not there
        ([], True, 1, "exited with 143: killed from outside"),
        # a crash before it said anything: retried (the policy's 2 retries)
        ([stage_pod(1)], True, 3, "exited with 1: the stage ended without reporting"),
        # never created (the API refused it): unknown, retried
        ([], False, 3, "exited with None: the stage ended without reporting"),
    ],
    ids=["exit-2", "exit-137", "pod-deleting", "pod-deleted", "exit-1", "no-pod"],
)
def test_k8s_pod_exit_code_decides_the_retry(pods, created, attempts, expected):
    result, client = run_failing_pod(pods, "failed", created)
    assert not result.success
    created = client.core_api.create_namespaced_pod.call_args_list
    assert len(created) == attempts
    failures = [
        str(e.event_specific_data)
        for e in result.all_events
        if e.event_type_value in {"STEP_FAILURE", "STEP_UP_FOR_RETRY"}
    ]
    assert expected in failures[0], failures[0]
    # every invocation's pods were listed by its label, then deleted
    for _, body in (c.args for c in created):
        label = body.metadata.labels["tgmed.invocation"]
        client.core_api.list_namespaced_pod.assert_any_call(
            "tgmed", label_selector=f"tgmed.invocation={label}"
        )
    assert client.core_api.delete_namespaced_pod.call_count == attempts * len(pods)


def test_k8s_gpu_stage_goes_to_the_gpu_pool(monkeypatch):
    monkeypatch.setenv("TGMED_LAUNCH_MODE", "k8s")
    monkeypatch.setenv("TGMED_GPU_STAGES", "detect")
    monkeypatch.setenv("TGMED_K8S_GPU_NODE_SELECTOR", '{"nvidia.com/gpu.present": "true"}')
    monkeypatch.setenv(
        "TGMED_K8S_GPU_TOLERATIONS",
        '[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]',
    )
    monkeypatch.setenv(
        "TGMED_K8S_STAGE_RESOURCES",
        '{"load": {"requests": {"cpu": "100m", "memory": "64Mi"},'
        ' "limits": {"cpu": "1", "memory": "1Gi"}}}',
    )
    monkeypatch.setenv("TGMED_K8S_IMAGE_PULL_POLICY", "Never")
    monkeypatch.setenv("TGMED_K8S_MODELS_CLAIM", "tgmed-models")
    launcher = launcher_from_settings()
    context = build_op_context()
    detect = launcher.pod_config(context, stages.detect(0, 4))["base_pod_spec"]
    assert detect["node_selector"] == {"nvidia.com/gpu.present": "true"}
    assert detect["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert detect["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert detect["containers"][0]["image_pull_policy"] == "Never"
    assert detect["volumes"][-1]["persistent_volume_claim"] == {"claim_name": "tgmed-models"}
    load = launcher.pod_config(context, stages.load("messages"))["base_pod_spec"]
    assert "node_selector" not in load and "tolerations" not in load
    assert load["containers"][0]["resources"] == {
        "requests": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    # the other stages keep their defaults
    transform = launcher.pod_config(context, stages.transform())["base_pod_spec"]
    assert transform["containers"][0]["resources"]["limits"]["memory"] == "2Gi"


def test_launch_mode_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TGMED_LAUNCH_MODE", "docker")
    monkeypatch.setenv("TGMED_GPU_STAGES", "detect")
    monkeypatch.setenv("TGMED_IMAGE_TAG", "0.1.0")
    monkeypatch.setenv("TGMED_IMAGE_TRANSFORM", "registry.example/transform:7")
    monkeypatch.setenv("TGMED_STAGE_TIMEOUTS", '{"detect": 7200}')
    launcher = launcher_from_settings()
    assert isinstance(launcher, DockerStageLauncher)
    assert launcher.gpu_stages == ["detect"]
    assert launcher.images["load"] == "tgmed-loader:0.1.0"
    assert launcher.images["transform"] == "registry.example/transform:7"
    assert launcher.timeout_for("detect") == 7200 and launcher.timeout_for("load") == 3600
    monkeypatch.setenv("TGMED_LAUNCH_MODE", "k8s")
    assert isinstance(launcher_from_settings(), K8sStageLauncher)
    monkeypatch.setenv("TGMED_LAUNCH_MODE", "podman")
    with pytest.raises(Exception, match="TGMED_LAUNCH_MODE"):
        launcher_from_settings()
