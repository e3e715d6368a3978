"""The Dagster code location of the platform: jobs, schedules, sensors and three ways to
launch a stage (local subprocess, Docker container, Kubernetes Job). It launches the
stage CLIs and reads their JSON summaries; it never imports a stage's code."""

import warnings

from dagster import BetaWarning

# run_failure_sensor passes the beta `owners` parameter itself: the warning, printed by
# every step process, says nothing about this code
warnings.filterwarnings("ignore", category=BetaWarning, message=".*`owners`.*")
# backfill_policy (single run: all channels of a backfill in one scrape process) is beta
warnings.filterwarnings("ignore", category=BetaWarning, message=".*`backfill_policy`.*")
# Dagster's own Pipes readers touch a preview property; not our use
warnings.filterwarnings("ignore", message=".*expected_writer_count.*")
