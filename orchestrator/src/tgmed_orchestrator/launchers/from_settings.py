"""The launcher of TGMED_LAUNCH_MODE, configured from the TGMED_* settings."""

from __future__ import annotations

from tgmed_orchestrator.launchers.base import DEFAULT_IMAGES, StageLauncher
from tgmed_orchestrator.launchers.docker_mode import DockerStageLauncher
from tgmed_orchestrator.launchers.k8s_mode import K8S_STAGE_RESOURCES, K8sStageLauncher
from tgmed_orchestrator.launchers.local_mode import LocalStageLauncher
from tgmed_orchestrator.stages import STAGES


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
            pod_template=settings.k8s_stage_pod_template,
            exports_claim=settings.k8s_exports_claim or None,
            models_claim=settings.k8s_models_claim or None,
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
