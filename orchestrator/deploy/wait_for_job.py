"""Wait until a Kubernetes Job in this pod's namespace has succeeded (exit 0), or has
failed for good (exit 1, with the Job's reason); an init container of the Dagster
webserver and daemon runs it so that neither starts before `dagster instance migrate`
has brought Dagster's storage to this version (k8s/base/dagster/migrate.yaml).

    python /opt/dagster/wait_for_job.py JOB [--timeout SECONDS]

Reads the Job's status with the pod's service account (get jobs/status)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def main(argv: list[str] | None = None) -> int:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("job")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    config.load_incluster_config()
    namespace = NAMESPACE_FILE.read_text().strip()
    batch = client.BatchV1Api()
    started = time.monotonic()
    while True:
        waited = round(time.monotonic() - started)
        try:
            status = batch.read_namespaced_job_status(args.job, namespace).status
        except ApiException as error:
            if error.status != 404:  # not created yet: the same apply creates it
                raise
            status = client.V1JobStatus()
        if status.succeeded:
            print(f"job {args.job} succeeded; waited {waited} s", flush=True)
            return 0
        failed = [c for c in status.conditions or [] if c.type == "Failed" and c.status == "True"]
        if failed:
            print(f"job {args.job} failed: {failed[0].reason}: {failed[0].message}", flush=True)
            return 1
        if waited > args.timeout:
            print(f"job {args.job} not done after {waited} s", flush=True)
            return 1
        print(f"waiting for job {args.job} ({waited} s)", flush=True)
        time.sleep(5)


if __name__ == "__main__":
    sys.exit(main())
