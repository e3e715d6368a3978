"""The stage Jobs the rendered overlays produce: the orchestrator configured from an
overlay's tgmed-config ConfigMap, under the K8sRunLauncher of its dagster.yaml (whose
settings dagster-k8s's execute_k8s_job merges into every stage Job), submits Jobs that
pass the Kubernetes schemas strictly and give each stage only its own Secret, the stage
account without a token, a read-only root filesystem and its own resources."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from unittest import mock

import kubernetes_validate
import pytest
import yaml
from dagster import instance_for_test
from kubernetes.client import ApiClient

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("tgmed_k8s_validate", ROOT / "k8s" / "validate.py")
validate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(validate)


def submitted_jobs(overlay: str, job_name: str, monkeypatch, run_config=None) -> list[dict]:
    """Runs a job in k8s mode with the overlay's settings and run launcher (Kubernetes
    API mocked, every stage succeeding); the Jobs it submitted, as manifests."""
    objects = validate.render(ROOT / "k8s" / "overlays" / overlay)
    for name, value in validate.settings(objects).items():
        monkeypatch.setenv(name, value)
    instance_config = validate.find(objects, "ConfigMap", "tgmed-dagster-instance")
    dagster_yaml = yaml.safe_load(instance_config["data"]["dagster.yaml"])

    from tgmed_orchestrator import jobs
    from tgmed_orchestrator.launchers import launcher_from_settings

    client = mock.MagicMock()
    pod = mock.MagicMock()
    pod.metadata.name = "stage-pod"
    client.wait_for_job_to_have_pods.return_value = [pod]
    watch = mock.MagicMock()
    watch.return_value.stream.side_effect = lambda *a, **kw: iter(['{"ok": 1}'])
    with (
        mock.patch("kubernetes.config.load_incluster_config"),
        mock.patch(
            "dagster_k8s.ops.k8s_job_op.DagsterKubernetesClient.production_client",
            return_value=client,
        ),
        mock.patch("kubernetes.watch.Watch", watch),
        instance_for_test(overrides={"run_launcher": dagster_yaml["run_launcher"]}) as instance,
    ):
        assert type(instance.run_launcher).__name__ == "K8sRunLauncher"
        result = getattr(jobs, job_name).execute_in_process(
            resources={"launcher": launcher_from_settings()},
            instance=instance,
            run_config=run_config or {},
        )
    assert result.success
    return [
        ApiClient().sanitize_for_serialization(c.args[1])
        for c in client.batch_api.create_namespaced_job.call_args_list
    ]


def pod_of(manifest: dict) -> tuple[dict, dict]:
    pod = manifest["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def test_local_stage_jobs_carry_only_their_own_secret(monkeypatch):
    manifests = submitted_jobs("local", "load_lake", monkeypatch)
    stages = sorted(m["metadata"]["name"].split("-")[1] for m in manifests)
    assert stages == ["load", "load", "load", "transform"]  # init-db, 2 streams, dbt
    for manifest in manifests:
        for version in validate.VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)
        pod, container = pod_of(manifest)
        assert container["envFrom"] == [
            {"configMapRef": {"name": "tgmed-config"}},
            {"secretRef": {"name": "tgmed-database"}},
        ]
        names = {e["name"] for e in container["env"]}
        assert "DAGSTER_PG_PASSWORD" not in names  # the run worker's only
        assert container["image"].endswith(":local")
        assert container["imagePullPolicy"] == "Never"
        assert pod["serviceAccountName"] == "tgmed-stage"
        assert pod["automountServiceAccountToken"] is False
        # the run launcher's volumes merge in; written alike, they are not doubled
        assert sorted(v["name"] for v in pod["volumes"]) == [
            "dagster-instance",
            "exports",
            "lake",
            "tmp",
        ]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        # the stage's own requests and limits (the overlay's), not the run worker's
        assert container["resources"] == {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "2", "memory": "2Gi"},
        }
        assert manifest["spec"]["ttlSecondsAfterFinished"] == 3600


@pytest.mark.parametrize("overlay", ["production"])
def test_production_detect_runs_on_the_gpu_pool(overlay, monkeypatch):
    manifests = submitted_jobs(
        overlay,
        "enrich",
        monkeypatch,
        run_config={"ops": {"load_detections_op": {}}},
    )
    detect = [m for m in manifests if "-detect-" in m["metadata"]["name"]]
    assert len(detect) == 4  # TGMED_DETECT_SHARDS in production
    for manifest in detect:
        for version in validate.VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)
        pod, container = pod_of(manifest)
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert pod["tolerations"] == [
            {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}
        ]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert container["image"] == "registry.example.com/tgmed/tgmed-yolo:0.1.0"
        assert {"name": "models", "mountPath": "/models", "readOnly": True} in container[
            "volumeMounts"
        ]
        assert container["envFrom"] == [{"configMapRef": {"name": "tgmed-config"}}]
    others = [m for m in manifests if m not in detect]
    assert others and all("nodeSelector" not in pod_of(m)[0] for m in others)
