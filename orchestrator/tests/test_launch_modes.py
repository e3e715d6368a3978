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
from tgmed_orchestrator.jobs import transform as transform_job
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


def fake_container(lines: list[bytes], code: int):
    container = mock.MagicMock()
    container.logs.side_effect = lambda **kw: iter(lines) if kw.get("stream") else lines[-1]
    container.wait.return_value = {"StatusCode": code}
    return container


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
    launcher = k8s_launcher(exports_claim="tgmed-exports", models_claim="tgmed-models")
    context = build_op_context()
    detect = launcher.job_config(context, stages.detect(0, 2))
    load = launcher.job_config(context, stages.load("messages"))
    scrape = launcher.job_config(
        context, stages.scrape_export(launcher.export_path("/x", "lobelia"), "lobelia")
    )
    schema_keys = set(K8S_JOB_OP_CONFIG)
    local_keys = {"load_incluster_config", "kubeconfig_file", "k8s_job_name"}
    local_keys.add("delete_failed_k8s_jobs")
    for config in (detect, load, scrape):
        assert set(config) - local_keys <= schema_keys
        assert config["namespace"] == "tgmed"
        assert config["env_config_maps"] == ["tgmed-config"]
        assert config["env_vars"] == ["LAKE_DIR=/lake"]
        assert config["volumes"][:2] == [
            {"name": "lake", "persistent_volume_claim": {"claim_name": "tgmed-lake"}},
            {"name": "tmp", "empty_dir": {}},
        ]
        assert config["volume_mounts"][:2] == [
            {"name": "lake", "mount_path": "/lake"},
            {"name": "tmp", "mount_path": "/tmp"},
        ]
        assert config["job_spec_config"]["backoff_limit"] == 0  # Dagster retries
        assert config["pod_spec_config"]["automount_service_account_token"] is False
        assert config["pod_spec_config"]["security_context"]["run_as_non_root"] is True
        security = config["container_config"]["security_context"]
        assert security["read_only_root_filesystem"] is True
        assert security["allow_privilege_escalation"] is False
        assert {"cpu", "memory"} <= set(config["resources"]["limits"])
        assert {"cpu", "memory"} <= set(config["resources"]["requests"])
        assert config["delete_failed_k8s_jobs"] is False  # the exit code is read first
    assert detect["image"] == "tgmed-yolo:latest"
    assert detect["command"] == ["tgmed-yolo", "detect", "--shard", "0/2"]
    assert detect["resources"]["limits"] == {"cpu": "4", "memory": "6Gi", "nvidia.com/gpu": "1"}
    assert detect["env_secrets"] == []
    assert detect["volumes"][2] == {
        "name": "models",
        "persistent_volume_claim": {"claim_name": "tgmed-models"},
    }
    assert detect["volume_mounts"][2] == {
        "name": "models",
        "mount_path": "/models",
        "read_only": True,
    }
    assert load["image"] == "tgmed-loader:latest"
    assert load["env_secrets"] == ["tgmed-database"]
    assert "nvidia.com/gpu" not in load["resources"]["limits"]
    assert [v["name"] for v in load["volumes"]] == ["lake", "tmp"]
    assert load["k8s_job_name"].startswith("tgmed-load-messages-")
    assert scrape["command"] == [
        "tgmed-scraper",
        "import-export",
        "/exports/lobelia",
        "--channel",
        "lobelia",
    ]
    assert scrape["env_secrets"] == []  # an import needs no Telegram credentials
    assert scrape["volume_mounts"][2] == {
        "name": "exports",
        "mount_path": "/exports",
        "read_only": True,
    }


def job_client(log_lines: list[str]):
    """A mocked dagster-k8s client whose Job has one pod that printed `log_lines`."""
    client = mock.MagicMock()
    pod = mock.MagicMock()
    pod.metadata.name = "tgmed-detect-pod"
    client.wait_for_job_to_have_pods.return_value = [pod]
    watch = mock.MagicMock()
    watch.return_value.stream.side_effect = lambda *a, **kw: iter(list(log_lines))
    return client, watch


def test_k8s_mode_creates_a_valid_job_and_reads_the_summary():
    """A stage op in k8s mode: the V1Job it submits passes the Kubernetes 1.25-1.33
    schemas strictly, the pod's log lines reach the Dagster log, and its last line
    becomes the step's summary."""
    client, watch = job_client(["loading model", '{"stage": "detect", "images": 5, "objects": 9}'])
    instance = DagsterInstance.ephemeral()
    with (
        mock.patch("kubernetes.config.load_incluster_config") as incluster,
        mock.patch(
            "dagster_k8s.ops.k8s_job_op.DagsterKubernetesClient.production_client",
            return_value=client,
        ),
        mock.patch("kubernetes.watch.Watch", watch),
    ):
        result = enrich.execute_in_process(
            resources={"launcher": k8s_launcher(service_account_name="tgmed-stage")},
            run_config={"ops": {"plan_detect_op": {"config": {"shards": 3}}}},
            instance=instance,
            op_selection=["plan_detect_op", "detect_op"],
        )
    assert result.success
    output = result.output_for_node("detect_op")["shard_1"]
    assert incluster.call_count == 3
    assert output == {"stage": "detect", "images": 5, "objects": 9}
    messages = [
        event.message
        for event in instance.all_logs(result.run_id)
        if event.step_key == "detect_op[shard_1]"
    ]
    assert "[detect:1-of-3] loading model" in messages  # the UI shows the stage's lines
    jobs = [c.args for c in client.batch_api.create_namespaced_job.call_args_list]
    assert [namespace for namespace, _ in jobs] == ["tgmed"] * 3
    manifests = [ApiClient().sanitize_for_serialization(job) for _, job in jobs]
    for manifest in manifests:
        for version in ("1.25", "1.29", "1.33"):
            kubernetes_validate.validate(manifest, version, strict=True)
    names = {m["metadata"]["name"] for m in manifests}
    assert len(names) == 3  # one Job per shard
    assert all(name.startswith("tgmed-detect-") and len(name) <= 63 for name in names)
    manifest = next(
        m
        for m in manifests
        if m["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "1/3"
    )
    pod_spec = manifest["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    assert container["image"] == "tgmed-yolo:latest"
    assert container["command"] == ["tgmed-yolo", "detect", "--shard", "1/3"]
    assert container["resources"]["limits"] == {
        "cpu": "4",
        "memory": "6Gi",
        "nvidia.com/gpu": "1",
    }
    assert {"name": "LAKE_DIR", "value": "/lake"} in container["env"]
    assert container["envFrom"] == [{"configMapRef": {"name": "tgmed-config"}}]
    assert container["volumeMounts"] == [
        {"mountPath": "/lake", "name": "lake"},
        {"mountPath": "/tmp", "name": "tmp"},
    ]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    assert pod_spec["securityContext"] == {
        "fsGroup": 10001,
        "runAsGroup": 10001,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod_spec["serviceAccountName"] == "tgmed-stage"
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["volumes"] == [
        {"name": "lake", "persistentVolumeClaim": {"claimName": "tgmed-lake"}},
        {"emptyDir": {}, "name": "tmp"},
    ]
    assert pod_spec["restartPolicy"] == "Never"
    assert manifest["spec"]["backoffLimit"] == 0
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 3600


def terminated_pod(exit_code: int | None, reason: str = "Error"):
    pod = mock.MagicMock()
    pod.metadata.name = "tgmed-transform-build-pod"
    status = mock.MagicMock()
    if exit_code is None:
        status.state.terminated = None
    else:
        status.state.terminated.exit_code = exit_code
        status.state.terminated.reason = reason
    pod.status.container_statuses = [status]
    return pod


@pytest.mark.parametrize(
    ("pods", "attempts", "expected"),
    [
        # a configuration error: the same pod would fail the same way
        ([terminated_pod(2)], 1, "exited with 2: configuration error (not retried)"),
        # killed from outside (kubectl delete, OOM): a person is alerted instead
        ([terminated_pod(137, "OOMKilled")], 1, "exited with 137: killed from outside"),
        # the pod was deleted while it ran: gone by the time the Job failed
        ([], 1, "exited with 143: killed from outside (SIGTERM: stopped; not retried)"),
        # the stage failed by itself: retried (TGMED_STAGE_RETRIES=2 in these tests)
        ([terminated_pod(1)], 3, "exited with 1: stage failed"),
    ],
    ids=["exit-2", "exit-137", "pod-deleted", "exit-1"],
)
def test_k8s_pod_exit_code_decides_the_retry(pods, attempts, expected):
    client, watch = job_client(['{"stage": "transform", "error": "boom"}'])
    client.wait_for_running_job_to_succeed.side_effect = RuntimeError("Job failed")
    core = mock.MagicMock()
    core.return_value.list_namespaced_pod.return_value.items = pods
    instance = DagsterInstance.ephemeral()
    with (
        mock.patch("kubernetes.config.load_incluster_config"),
        mock.patch(
            "dagster_k8s.ops.k8s_job_op.DagsterKubernetesClient.production_client",
            return_value=client,
        ),
        mock.patch("kubernetes.watch.Watch", watch),
        mock.patch("kubernetes.client.CoreV1Api", core),
    ):
        result = transform_job.execute_in_process(
            resources={"launcher": k8s_launcher()},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    created = client.batch_api.create_namespaced_job.call_args_list
    assert len(created) == attempts
    names = [job.metadata.name for _, job in (c.args for c in created)]
    for name in names:
        core.return_value.list_namespaced_pod.assert_any_call(
            "tgmed", label_selector=f"job-name={name}"
        )
    failures = [
        str(e.event_specific_data)
        for e in result.all_events
        if e.event_type_value in {"STEP_FAILURE", "STEP_UP_FOR_RETRY"}
    ]
    assert expected in failures[0], failures[0]
    # the failed Job stays until its TTL (its pod's exit code and log stay readable)
    client.delete_job.assert_not_called()


def test_k8s_a_deleted_pod_is_not_replaced():
    """`kubectl delete pod` while a stage runs: the Job would start a replacement pod
    (Kubernetes < 1.22 does not count the deleted one as failed) and the stage would run
    again unnoticed. The launcher deletes the Job instead; the step fails as stopped from
    outside (143), without a retry."""
    import threading

    client, watch = job_client(["dbt: building"])
    job_deleted = threading.Event()
    client.wait_for_running_job_to_succeed.side_effect = lambda **kw: (
        job_deleted.wait(10),
        (_ for _ in ()).throw(RuntimeError("Job not found")),
    )
    first, replacement = terminated_pod(None), terminated_pod(None)
    first.metadata.name, replacement.metadata.name = "pod-a", "pod-b"
    listings = iter([[first], [replacement]])
    core = mock.MagicMock()
    core.return_value.list_namespaced_pod.side_effect = lambda *a, **kw: mock.MagicMock(
        items=next(listings, [replacement])
    )
    batch = mock.MagicMock()
    batch.return_value.delete_namespaced_job.side_effect = lambda *a, **kw: job_deleted.set()
    instance = DagsterInstance.ephemeral()
    with (
        mock.patch("kubernetes.config.load_incluster_config"),
        mock.patch(
            "dagster_k8s.ops.k8s_job_op.DagsterKubernetesClient.production_client",
            return_value=client,
        ),
        mock.patch("kubernetes.watch.Watch", watch),
        mock.patch("kubernetes.client.CoreV1Api", core),
        mock.patch("kubernetes.client.BatchV1Api", batch),
    ):
        result = transform_job.execute_in_process(
            resources={"launcher": k8s_launcher(pod_poll_seconds=0.05)},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    assert len(client.batch_api.create_namespaced_job.call_args_list) == 1  # no retry
    name = client.batch_api.create_namespaced_job.call_args.args[1].metadata.name
    batch.return_value.delete_namespaced_job.assert_called_once_with(
        name, "tgmed", propagation_policy="Background"
    )
    failure = next(
        str(e.event_specific_data)
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    )
    assert "exited with 143: killed from outside" in failure
    assert "pod pod-a was deleted while it ran" in failure


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
    launcher = launcher_from_settings()
    context = build_op_context()
    detect = launcher.job_config(context, stages.detect(0, 4))
    assert detect["pod_spec_config"]["node_selector"] == {"nvidia.com/gpu.present": "true"}
    assert detect["pod_spec_config"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert detect["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert detect["image_pull_policy"] == "Never"
    load = launcher.job_config(context, stages.load("messages"))
    assert "node_selector" not in load["pod_spec_config"]
    assert load["resources"] == {
        "requests": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    # the other stages keep their defaults
    assert (
        launcher.job_config(context, stages.transform())["resources"]["limits"]["memory"] == "2Gi"
    )


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
