"""Kubernetes mode: one pod per stage invocation (PipesK8sClient, dagster-k8s)."""

from __future__ import annotations

import contextlib
import copy
from pathlib import PurePosixPath
from typing import Any

from dagster import Failure

from tgmed_orchestrator.launchers.base import (
    DEFAULT_IMAGES,
    INVOCATION_LABEL,
    Context,
    StageExit,
    StageLauncher,
    invocation_id,
)
from tgmed_orchestrator.launchers.lifetime import KILL_AFTER_SECONDS, TIMEOUT_EXIT, with_timeout
from tgmed_orchestrator.launchers.pipes import recording_pod_logs_reader
from tgmed_orchestrator.stages import StageCommand

# requests and limits of each stage's pod (TGMED_K8S_STAGE_RESOURCES overrides)
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


class K8sStageLauncher(StageLauncher):
    """One pod per stage invocation (PipesK8sClient), from the PodTemplate
    `pod_template` (k8s/base/stage-pod.yaml: the lake claim, the settings ConfigMap,
    non-root with a read-only root filesystem, no token) with the stage's image,
    command, resources and its own Secrets added (an export import gets none of
    Telegram's). Dagster retries a failed step (outcomes.py decides); the pod has
    restartPolicy Never and an activeDeadlineSeconds of the stage's timeout. The pod
    stays until its exit code is read, then it is deleted; a pod deleted from outside
    while it ran fails the step as stopped (143), not retried."""

    images: dict[str, str] = DEFAULT_IMAGES
    namespace: str = "tgmed"
    # the PodTemplate of the stage pods in `namespace` (read at each launch)
    pod_template: str = "tgmed-stage"
    image_pull_policy: str = "IfNotPresent"
    exports_claim: str | None = None
    exports_mount: str = "/exports"
    # model weights for detect, mounted read-only (DETECT_MODEL names a file under it)
    models_claim: str | None = None
    models_mount: str = "/models"
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

    def read_pod_template(self) -> dict[str, Any]:
        """The PodTemplate's `template` (metadata and spec), as the cluster holds it."""
        import kubernetes

        if self.load_incluster_config:
            kubernetes.config.load_incluster_config()
        else:
            kubernetes.config.load_kube_config(config_file=self.kubeconfig_file)
        api = kubernetes.client.ApiClient()
        found = kubernetes.client.CoreV1Api(api).read_namespaced_pod_template(
            self.pod_template, self.namespace
        )
        return api.sanitize_for_serialization(found.template)

    def pod_config(
        self,
        context: Context,
        command: StageCommand,
        timeout: float | None = None,
        template: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The arguments of PipesK8sClient.run for this invocation: the PodTemplate's
        `template` (given, else read from the cluster: its labels, annotations and pod
        spec) with the invocation's parts."""
        from dagster_k8s.models import k8s_snake_case_dict
        from kubernetes.client import V1PodSpec

        timeout = timeout if timeout is not None else self.timeout_for(command.stage)
        template = template if template is not None else self.read_pod_template()
        meta = template.get("metadata") or {}
        spec: dict[str, Any] = copy.deepcopy(
            dict(k8s_snake_case_dict(V1PodSpec, template.get("spec") or {}))
        )
        container = next((c for c in spec.get("containers") or [] if c["name"] == "stage"), None)
        if container is None:
            raise Failure(
                description=f"PodTemplate {self.pod_template} has no container named stage "
                "(k8s/base/stage-pod.yaml)",
                allow_retries=False,
            )
        volumes, mounts = spec.setdefault("volumes", []), container.setdefault("volume_mounts", [])
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
        container["image"] = self.images[command.stage]  # the template's is a placeholder
        container["image_pull_policy"] = self.image_pull_policy
        container["env_from"] = [
            *(container.get("env_from") or []),
            *({"secret_ref": {"name": name}} for name in secrets),
        ]
        container["resources"] = resources
        # the backstop of the in-container timeout (TERM, KILL 15 s later)
        spec["active_deadline_seconds"] = int(timeout) + KILL_AFTER_SECONDS + 30
        if command.stage in self.gpu_stages:
            resources.setdefault("limits", {})["nvidia.com/gpu"] = "1"
            if self.gpu_node_selector:
                spec["node_selector"] = dict(self.gpu_node_selector)
            if self.gpu_tolerations:
                spec["tolerations"] = [dict(t) for t in self.gpu_tolerations]
        labels = {
            **(meta.get("labels") or {}),
            "app.kubernetes.io/part-of": "tgmed",
            "app.kubernetes.io/component": command.stage,
            INVOCATION_LABEL: invocation_id(command),
        }
        with contextlib.suppress(Exception):  # a context built outside a run (tests)
            labels["dagster/run-id"] = context.run.run_id
        return {
            "image": container["image"],
            "command": with_timeout(list(command.argv), timeout),
            "namespace": self.namespace,
            "base_pod_meta": {
                "labels": labels,
                **({"annotations": dict(meta["annotations"])} if meta.get("annotations") else {}),
            },
            "base_pod_spec": spec,
            "pod_wait_timeout": timeout + KILL_AFTER_SECONDS + 120,
        }

    def _run(self, context: Context, command: StageCommand, timeout: float) -> Any:
        from dagster_k8s import PipesK8sClient

        config = self.pod_config(context, command, timeout)
        context.log.info(
            f"stage pod {config['base_pod_meta']['labels'][INVOCATION_LABEL]}"
            f" ({config['image']}, namespace {config['namespace']})"
        )
        reader = recording_pod_logs_reader()
        client = PipesK8sClient(
            message_reader=reader,
            load_incluster_config=self.load_incluster_config or None,
            kubeconfig_file=None if self.load_incluster_config else self.kubeconfig_file,
            poll_interval=self.poll_interval_seconds,
        )
        try:
            # the pod stays until its exit code is read (the client reports none)
            client.run(context=context, delete_pod_on_completion=False, **config)
        except Exception as error:
            code, how = self.exit_code(config, pod_seen=reader.pod_seen)
            context.log.info(how)
            raise StageExit(reader.handler, code, f"{how}\n{str(error)[-3000:]}") from None
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

    def exit_code(self, config: dict[str, Any], pod_seen: bool) -> tuple[int | None, str]:
        """The failed stage pod's exit code, and how it was found. A pod deleted while it
        ran (`kubectl delete pod`, a node drain) is stopped from outside like SIGTERM
        (143): not retried, the run fails and alerts. `pod_seen`: the client saw the pod
        run (so a pod not found now was deleted, not never created)."""
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
        if pod_seen:  # it ran, and it is gone
            return 143, f"stage pod {label} was deleted while it ran"
        return None, f"stage pod {label}: none found (never created?)"

    def _delete_pods(self, config: dict[str, Any]) -> None:
        from dagster_k8s.client import DagsterKubernetesClient

        with contextlib.suppress(Exception):
            client = DagsterKubernetesClient.production_client()
            for pod in self._pods(config):
                client.core_api.delete_namespaced_pod(pod.metadata.name, config["namespace"])
