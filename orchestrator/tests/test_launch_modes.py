"""Docker and Kubernetes launch modes: the container and the Job each stage gets are
asserted here (docker client and Kubernetes API patched; the V1Job validated against
the Kubernetes schema); they run for real in the containers and k8s issues."""

from __future__ import annotations

from unittest import mock

import kubernetes_validate
import pytest
from dagster import DagsterInstance, build_op_context
from dagster._config import process_config
from dagster_docker.ops.docker_container_op import DOCKER_CONTAINER_OP_CONFIG
from dagster_k8s.ops.k8s_job_op import K8S_JOB_OP_CONFIG
from kubernetes.client import ApiClient

from tgmed_orchestrator import stages
from tgmed_orchestrator.jobs import enrich
from tgmed_orchestrator.launchers import (
    STAGE_LABEL,
    DockerStageLauncher,
    K8sStageLauncher,
    launcher_from_settings,
)

ENV = {
    "DATABASE_URL": "postgresql://tgmed:s3cret-pass@db:5432/tgmed",
    "TELEGRAM_API_ID": "123",
    "TELEGRAM_API_HASH": "hash-secret",
    "TELEGRAM_SESSION": "session-secret",
    "DETECT_MODEL": "/models/yolov8n.onnx",
    "DETECT_BATCH_SIZE": "8",
}


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
        "scrape": launcher.container_config(context, stages.scrape_telegram("CheMed123")),
        "export": launcher.container_config(
            context, stages.scrape_export(launcher.export_path("/x", "CheMed123"), "CheMed123")
        ),
        "detect": launcher.container_config(context, stages.detect(1, 4)),
        "load": launcher.container_config(context, stages.load("messages")),
        "transform": launcher.container_config(context, stages.transform()),
    }
    for config in configs.values():  # the docker_container_op configuration schema
        assert process_config(DOCKER_CONTAINER_OP_CONFIG, config).success
        assert config["networks"] == ["tgmed"]
        assert config["container_kwargs"]["volumes"]["tgmed-lake"] == {
            "bind": "/lake",
            "mode": "rw",
        }
        assert config["env_vars"][0] == "LAKE_DIR=/lake"
        assert config["container_kwargs"]["labels"][STAGE_LABEL] in stages.STAGES
    scrape, export, detect = configs["scrape"], configs["export"], configs["detect"]
    assert scrape["image"] == "tgmed-scraper:latest"
    assert scrape["command"] == ["tgmed-scraper", "scrape", "--channel", "CheMed123"]
    assert scrape["env_vars"][1:] == ["TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_SESSION"]
    assert export["command"] == [
        "tgmed-scraper",
        "import-export",
        "/exports/CheMed123",
        "--channel",
        "CheMed123",
    ]
    assert export["container_kwargs"]["volumes"]["tgmed-exports"] == {
        "bind": "/exports",
        "mode": "ro",
    }
    assert "TELEGRAM_SESSION" not in export["env_vars"]  # an import needs no credentials
    assert detect["image"] == "tgmed-yolo:latest"
    assert detect["command"] == ["tgmed-yolo", "detect", "--shard", "1/4"]
    assert detect["env_vars"][1:] == ["DETECT_MODEL", "DETECT_BATCH_SIZE"]
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
    assert configs["load"]["env_vars"][1:] == ["DATABASE_URL"]
    assert configs["transform"]["command"] == ["tgmed-transform", "build"]
    assert configs["transform"]["env_vars"][1:] == ["DATABASE_URL"]
    # no stage sees another stage's secret
    assert "DATABASE_URL" not in scrape["env_vars"] + detect["env_vars"]
    assert "TELEGRAM_SESSION" not in configs["load"]["env_vars"]


def test_docker_mode_without_gpu_and_exports(stage_env):
    launcher = docker_launcher(gpu_stages=[])
    context = build_op_context()
    assert (
        "device_requests"
        not in launcher.container_config(context, stages.detect(0, 1))["container_kwargs"]
    )
    with pytest.raises(Exception, match="TGMED_DOCKER_EXPORTS_VOLUME"):
        launcher.container_config(context, stages.scrape_export("/exports/a", "a"))


def fake_container(lines: list[bytes], code: int, oom: bool = False):
    container = mock.MagicMock()
    container.logs.side_effect = lambda **kw: iter(lines) if kw.get("stream") else lines[-1]
    container.wait.return_value = {"StatusCode": code}
    container.attrs = {"State": {"OOMKilled": oom}}
    return container


def test_docker_memory_limit_per_stage(stage_env):
    launcher = docker_launcher(memory_limits={"detect": "64m"})
    context = build_op_context()
    detect = launcher.container_config(context, stages.detect(0, 1))
    load = launcher.container_config(context, stages.load("messages"))
    assert process_config(DOCKER_CONTAINER_OP_CONFIG, detect).success
    assert detect["container_kwargs"]["mem_limit"] == "64m"
    assert detect["container_kwargs"]["memswap_limit"] == "64m"  # no swap beyond it
    assert "mem_limit" not in load["container_kwargs"]


def test_a_stage_killed_for_memory_says_so_and_is_not_retried(stage_env):
    """Regression (fault suite, scenario 3): an OOM-killed stage container was reported
    as "SIGKILL: docker kill, out of memory", the same words as an operator's kill; the
    container runtime knows which it was, and the step says so."""
    client = mock.MagicMock()
    client.containers.list.return_value = []
    client.containers.create.side_effect = lambda image, **kw: (
        fake_container([b"loading the model\n"], 137, oom=True)
        if kw["command"][0] == "tgmed-yolo"
        else fake_container([b'{"stage": "init-db"}\n'], 0)
    )
    with mock.patch("docker.client.from_env", return_value=client):
        result = enrich.execute_in_process(
            resources={"launcher": docker_launcher(memory_limits={"detect": "64m"})},
            instance=DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert "exited with 137: killed: out of memory: the detect stage exceeded 64m" in message
    assert "(not retried)" in message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


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


def test_enrich_job_in_docker_mode_runs_containers(stage_env):
    """The enrich job, docker mode, two shards: one container per shard with its
    command, and each stage's summary as the step's metadata."""
    client = mock.MagicMock()
    outputs = {
        "tgmed-yolo": b'{"stage": "detect", "images": 3, "objects": 7}\n',
        "init-db": b'{"stage": "init-db"}\n',
        "load": b'{"stream": "detections", "rows": 6, "quarantined": 0}\n',
    }
    client.containers.create.side_effect = lambda image, **kw: fake_container(
        [b"working\n", outputs.get(kw["command"][0]) or outputs[kw["command"][1]]], 0
    )
    with mock.patch("docker.client.from_env", return_value=client):
        result = enrich.execute_in_process(
            resources={"launcher": docker_launcher()},
            run_config={"ops": {"plan_detect_op": {"config": {"shards": 2}}}},
            instance=DagsterInstance.ephemeral(),
        )
    assert result.success
    calls = [c.kwargs for c in client.containers.create.call_args_list]
    images = sorted(c.args[0] for c in client.containers.create.call_args_list)
    assert images == ["tgmed-loader:latest"] * 2 + ["tgmed-yolo:latest"] * 2
    detect_calls = [c for c in calls if c["command"][0] == "tgmed-yolo"]
    assert sorted(c["command"][-1] for c in detect_calls) == ["0/2", "1/2"]
    for call in detect_calls:
        assert call["network"] == "tgmed"
        assert call["environment"] == {
            "LAKE_DIR": "/lake",
            "DETECT_MODEL": "/models/yolov8n.onnx",
            "DETECT_BATCH_SIZE": "8",
        }
        assert call["volumes"] == {"tgmed-lake": {"bind": "/lake", "mode": "rw"}}
        assert call["device_requests"][0]["capabilities"] == [["gpu"]]
        assert call["labels"][STAGE_LABEL] == "detect"
    assert len({c["name"] for c in calls}) == 4  # a container name per invocation
    shard = result.output_for_node("detect_op")
    assert shard == {
        "shard_0": {"stage": "detect", "images": 3, "objects": 7},
        "shard_1": {
            "stage": "detect",
            "images": 3,
            "objects": 7,
        },
    }
    meta = next(
        e.event_specific_data.metadata
        for e in result.all_node_events
        if e.step_key == "load_detections_op" and e.event_type_value == "STEP_OUTPUT"
    )
    assert meta["rows"].value == 6


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


def test_k8s_configuration_per_stage():
    launcher = k8s_launcher(exports_claim="tgmed-exports")
    context = build_op_context()
    detect = launcher.job_config(context, stages.detect(0, 2))
    load = launcher.job_config(context, stages.load("messages"))
    scrape = launcher.job_config(
        context, stages.scrape_export(launcher.export_path("/x", "lobelia"), "lobelia")
    )
    schema_keys = set(K8S_JOB_OP_CONFIG)
    for config in (detect, load, scrape):
        assert set(config) - {"load_incluster_config"} <= schema_keys
        assert config["namespace"] == "tgmed"
        assert config["env_config_maps"] == ["tgmed-config"]
        assert config["env_vars"] == ["LAKE_DIR=/lake"]
        assert config["volumes"][0] == {
            "name": "lake",
            "persistent_volume_claim": {"claim_name": "tgmed-lake"},
        }
        assert config["volume_mounts"][0] == {"name": "lake", "mount_path": "/lake"}
        assert config["job_spec_config"]["backoff_limit"] == 0  # Dagster retries
    assert detect["image"] == "tgmed-yolo:latest"
    assert detect["command"] == ["tgmed-yolo", "detect", "--shard", "0/2"]
    assert detect["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert detect["env_secrets"] == []
    assert load["image"] == "tgmed-loader:latest"
    assert load["env_secrets"] == ["tgmed-database"]
    assert "limits" not in load["resources"]
    assert scrape["command"] == [
        "tgmed-scraper",
        "import-export",
        "/exports/lobelia",
        "--channel",
        "lobelia",
    ]
    assert scrape["volume_mounts"][1] == {
        "name": "exports",
        "mount_path": "/exports",
        "read_only": True,
    }


def test_k8s_mode_creates_a_valid_job_and_reads_the_summary():
    """A stage op in k8s mode: the V1Job it submits passes the Kubernetes 1.33 schema
    strictly, and the pod's last log line becomes the step's summary."""
    client = mock.MagicMock()
    pod = mock.MagicMock()
    pod.metadata.name = "tgmed-detect-pod"
    client.wait_for_job_to_have_pods.return_value = [pod]
    watch = mock.MagicMock()
    watch.return_value.stream.side_effect = lambda *a, **kw: iter(
        ["loading model", '{"stage": "detect", "images": 5, "objects": 9}']
    )
    with (
        mock.patch("kubernetes.config.load_incluster_config") as incluster,
        mock.patch(
            "dagster_k8s.ops.k8s_job_op.DagsterKubernetesClient.production_client",
            return_value=client,
        ),
        mock.patch("kubernetes.watch.Watch", watch),
    ):
        result = enrich.execute_in_process(
            resources={"launcher": k8s_launcher()},
            run_config={"ops": {"plan_detect_op": {"config": {"shards": 3}}}},
            instance=DagsterInstance.ephemeral(),
            op_selection=["plan_detect_op", "detect_op"],
        )
    assert result.success
    output = result.output_for_node("detect_op")["shard_1"]
    assert incluster.call_count == 3
    assert output == {"stage": "detect", "images": 5, "objects": 9}
    jobs = [c.args for c in client.batch_api.create_namespaced_job.call_args_list]
    assert [namespace for namespace, _ in jobs] == ["tgmed"] * 3
    manifests = [ApiClient().sanitize_for_serialization(job) for _, job in jobs]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.33", strict=True)
    names = {m["metadata"]["name"] for m in manifests}
    assert len(names) == 3  # one Job per shard
    manifest = next(
        m
        for m in manifests
        if m["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "1/3"
    )
    kubernetes_validate.validate(manifest, "1.33", strict=True)
    pod_spec = manifest["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    assert container["image"] == "tgmed-yolo:latest"
    assert container["command"] == ["tgmed-yolo", "detect", "--shard", "1/3"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert {"name": "LAKE_DIR", "value": "/lake"} in container["env"]
    assert container["envFrom"] == [{"configMapRef": {"name": "tgmed-config"}}]
    assert container["volumeMounts"] == [{"mountPath": "/lake", "name": "lake"}]
    assert pod_spec["volumes"] == [
        {"name": "lake", "persistentVolumeClaim": {"claimName": "tgmed-lake"}}
    ]
    assert pod_spec["restartPolicy"] == "Never"
    assert manifest["spec"]["backoffLimit"] == 0
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 3600


def test_launch_mode_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TGMED_LAUNCH_MODE", "docker")
    monkeypatch.setenv("TGMED_GPU_STAGES", "detect")
    monkeypatch.setenv("TGMED_IMAGE_TAG", "0.1.0")
    launcher = launcher_from_settings()
    assert isinstance(launcher, DockerStageLauncher)
    assert launcher.gpu_stages == ["detect"]
    assert launcher.images["load"] == "tgmed-loader:0.1.0"
    monkeypatch.setenv("TGMED_LAUNCH_MODE", "k8s")
    assert isinstance(launcher_from_settings(), K8sStageLauncher)
    monkeypatch.setenv("TGMED_LAUNCH_MODE", "podman")
    with pytest.raises(Exception, match="TGMED_LAUNCH_MODE"):
        launcher_from_settings()
