"""The Kubernetes e2e's reading of a run's stage pods (k8s/e2e.py): a pod that failed is
accepted only when a later pod of the same step exited 0 (the step's retry policy retried
a transient failure, outcomes.py); any other failure fails the e2e."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("tgmed_k8s_e2e", ROOT / "k8s" / "e2e.py")
k8s_e2e = importlib.util.module_from_spec(spec)
spec.loader.exec_module(k8s_e2e)


def row(name: str, code: int | None) -> tuple:
    return (f"dagster-b3f771ea-6837-4da9-{name}", "load", "tgmed-loader:local", code, True)


def test_a_retried_pod_is_named_and_an_unretried_one_fails():
    rows = [
        row("raw--yolo-detections-7227995956", 0),
        row("raw--yolo-detections-4795824334", 1),  # retried: the next pod of its step
        row("raw--yolo-detections-1008147126", 0),
        row("raw-telegram-5060679469", 0),
        row("raw-telegram-8320882950", 1),  # an earlier pod of its step exited 0: no retry
        row("dbt-models-3947210751", 137),
    ]
    retried, failed = k8s_e2e.unretried_failures(rows)
    assert retried == ["dagster-b3f771ea-6837-4da9-raw--yolo-detections-4795824334"]
    assert [r[0].rsplit("-", 1)[0].split("4da9-")[1] for r in failed] == [
        "raw-telegram",
        "dbt-models",
    ]
