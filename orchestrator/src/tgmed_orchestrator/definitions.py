"""The code location: every job, schedule, sensor and resource of the platform.

    dagster dev -m tgmed_orchestrator.definitions

The stage launcher comes from TGMED_LAUNCH_MODE (local, docker, k8s) and the TGMED_*
variables beside it (see launchers.py); alert channels from ALERT_*.
"""

from __future__ import annotations

from dagster import Definitions

from tgmed_orchestrator.alerts import Alerter
from tgmed_orchestrator.jobs import JOBS
from tgmed_orchestrator.launchers import launcher_from_settings
from tgmed_orchestrator.schedules import SCHEDULES
from tgmed_orchestrator.sensors import SENSORS

defs = Definitions(
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources={"launcher": launcher_from_settings(), "alerter": Alerter.from_settings()},
)
