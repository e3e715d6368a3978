"""The stage pods the rendered overlays produce: the orchestrator configured from an
overlay's tgmed-config ConfigMap builds, through dagster-k8s's PipesK8sClient, pods that
pass the Kubernetes schemas strictly and give each stage only its own Secret, the stage
account without a token, a read-only root filesystem and its own resources. Nothing of
the K8sRunLauncher's configuration (Dagster's storage password, its volumes) reaches a
stage pod: PipesK8sClient builds the pod from what the launcher gives it alone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import kubernetes_validate
import pytest
from dagster import build_op_context
from dagster_k8s.pipes import build_pod_body
from kubernetes.client import ApiClient

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("tgmed_k8s_validate", ROOT / "k8s" / "validate.py")
validate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(validate)


def stage_pods(overlay: str, commands: dict, monkeypatch) -> dict[str, dict]:
    """The pod manifest PipesK8sClient would create for each command, with the overlay's
    settings (its tgmed-config ConfigMap) as the run worker's environment."""
    objects = validate.render(ROOT / "k8s" / "overlays" / overlay)
    for name, value in validate.settings(objects).items():
        monkeypatch.setenv(name, value)
    from tgmed_orchestrator import stages
    from tgmed_orchestrator.launchers import K8sStageLauncher, launcher_from_settings

    launcher = launcher_from_settings()
    assert isinstance(launcher, K8sStageLauncher)
    # the overlay's PodTemplate, as the run worker reads it from the cluster
    template = validate.find(objects, "PodTemplate", launcher.pod_template)
    assert template is not None, f"{overlay} renders no PodTemplate {launcher.pod_template}"
    pods = {}
    for key, build in commands.items():
        config = launcher.pod_config(
            build_op_context(), build(stages), template=template["template"]
        )
        body = build_pod_body(
            pod_name=f"dagster-run-{key}",
            image=config["image"],
            command=config["command"],
            env_vars={"DAGSTER_PIPES_CONTEXT": "x", "DAGSTER_PIPES_MESSAGES": "y"},
            base_pod_meta=config["base_pod_meta"],
            base_pod_spec=config["base_pod_spec"],
        )
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            **ApiClient().sanitize_for_serialization(body),
        }
        for version in validate.VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)
        pods[key] = manifest
    return pods


def test_local_stage_pods_carry_only_their_own_secret(monkeypatch):
    pods = stage_pods(
        "local",
        {
            "init-db": lambda s: s.init_db(),
            "load": lambda s: s.load("messages"),
            "transform": lambda s: s.transform(),
            "detect": lambda s: s.detect(0, 1),
        },
        monkeypatch,
    )
    for key, manifest in pods.items():
        pod = manifest["spec"]
        container = pod["containers"][0]
        secrets = [] if key == "detect" else [{"secretRef": {"name": "tgmed-database"}}]
        assert container["envFrom"] == [{"configMapRef": {"name": "tgmed-config"}}, *secrets]
        names = {e["name"] for e in container["env"]}
        assert names == {"LAKE_DIR", "DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}
        assert container["image"].endswith(":local")
        assert container["imagePullPolicy"] == "Never"
        assert pod["serviceAccountName"] == "tgmed-stage"
        assert pod["automountServiceAccountToken"] is False
        assert pod["restartPolicy"] == "Never"
        # nothing of the run launcher (its dagster-instance volume) merges in
        expected = ["lake", "tmp", "models"] if key == "detect" else ["lake", "tmp"]
        assert [v["name"] for v in pod["volumes"]] == expected
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        component = "load" if key == "init-db" else key
        assert manifest["metadata"]["labels"]["app.kubernetes.io/component"] == component
    # the stage's own requests and limits (the overlay's), not the run worker's
    assert pods["load"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert "nodeSelector" not in pods["detect"]["spec"]  # one node, no GPU pool


@pytest.mark.parametrize("overlay", ["production"])
def test_production_detect_runs_on_the_gpu_pool(overlay, monkeypatch):
    pods = stage_pods(
        overlay,
        {"detect": lambda s: s.detect(0, 4), "load": lambda s: s.load("messages")},
        monkeypatch,
    )
    pod = pods["detect"]["spec"]
    container = pod["containers"][0]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}
    ]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["image"] == "registry.example.com/tgmed/tgmed-yolo:0.1.0"
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    assert container["envFrom"] == [{"configMapRef": {"name": "tgmed-config"}}]
    assert "nodeSelector" not in pods["load"]["spec"]
    assert pods["load"]["spec"]["containers"][0]["image"].startswith("registry.example.com/")
