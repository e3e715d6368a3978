"""The code location: the platform's assets (lake, raw, dbt, monitoring) with their
checks, the jobs over them, schedules, sensors and resources.

    dagster dev -m tgmed_orchestrator.definitions

The stage launcher comes from TGMED_LAUNCH_MODE (local, docker, k8s) and the TGMED_*
variables beside it (see launchers/); alert channels from ALERT_* (secrets as EnvVar).
"""

from __future__ import annotations

from dagster import Definitions

from tgmed_orchestrator.alerts import Alerter
from tgmed_orchestrator.assets.dbt import dbt_models
from tgmed_orchestrator.assets.lake import message_extractions, telegram_lake, yolo_detections
from tgmed_orchestrator.assets.monitoring import pipeline_health
from tgmed_orchestrator.assets.raw import (
    newest_post_per_channel,
    raw_message_extractions,
    raw_telegram,
    raw_yolo_detections,
)
from tgmed_orchestrator.assets.set_aside import GATES
from tgmed_orchestrator.jobs import JOBS
from tgmed_orchestrator.launchers import launcher_from_settings
from tgmed_orchestrator.schedules import SCHEDULES
from tgmed_orchestrator.sensors import SENSORS
from tgmed_orchestrator.step_process import exit_with_the_run_worker

ASSETS = [
    telegram_lake,
    yolo_detections,
    message_extractions,
    raw_telegram,
    raw_yolo_detections,
    raw_message_extractions,
    dbt_models,
    pipeline_health,
]
CHECKS = [newest_post_per_channel, *GATES]

# a step process (a multiprocessing child of its run worker) dies with its run worker
exit_with_the_run_worker()

defs = Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources={"launcher": launcher_from_settings(), "alerter": Alerter.from_settings()},
)
