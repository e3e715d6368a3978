"""telegram_pipeline in local mode, end to end, seen as the UI sees it: `dagster dev`
(webserver, daemon, run queue) over a real instance, runs launched over GraphQL like
the UI's buttons, the real stage CLIs as processes (the yolo stage from its own
environment with the shared model), a real PostgreSQL, real dbt. Then, over GraphQL:
the catalog lists the lake, raw and every dbt model with the lineage from the channel
partitions to the marts; every asset the run materialized has numeric metadata; every
dbt test is a passing check. A channel added in the UI and backfilled imports only that
channel and materializes what is downstream of it; a dbt test made to fail is a failed
check on its model; and no secret value appears in the resources' configuration."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tgmed_orchestrator.dagster_client import DagsterClient, wait_until

from .conftest import make_sample, readme_dbt_test_count

ROOT = Path(__file__).resolve().parents[1]  # orchestrator/
sys.path.insert(0, str(ROOT.parent / "deploy"))
import asset_parity  # noqa: E402  (deploy/: shared with the compose and Kubernetes e2e)

MANIFEST = json.loads((ROOT / "src" / "tgmed_orchestrator" / "dbt_manifest.json").read_text())
LOCATION = "tgmed_orchestrator.definitions"
REPOSITORY = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}
SECRETS = {
    "ALERT_WEBHOOK_URL": "https://hooks.example/T000/secret-hook-value-1",
    "ALERT_TELEGRAM_BOT_TOKEN": "123456:bot-token-secret-value",
    "TELEGRAM_API_HASH": "telegram-api-hash-secret",
    "TELEGRAM_SESSION": "telegram-session-secret",
}

ASSETS = """
{
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    partitionDefinition { name }
    assetMaterializations(limit: 1) {
      runId
      metadataEntries {
        label
        __typename
        ... on IntMetadataEntry { intValue }
        ... on FloatMetadataEntry { floatValue }
      }
    }
    assetChecksOrError {
      ... on AssetChecks { checks { name executionForLatestMaterialization { status runId } } }
    }
  }
}"""
PARTITION_MATERIALIZATIONS = """
query Partitions($key: AssetKeyInput!) {
  assetNodes(assetKeys: [$key]) {
    assetMaterializations(limit: 20) { runId partition }
  }
}"""
ADD_PARTITION = """
mutation Add($repo: RepositorySelector!, $key: String!) {
  addDynamicPartition(
    repositorySelector: $repo, partitionsDefName: "channels", partitionKey: $key
  ) {
    __typename
    ... on PythonError { message }
  }
}"""
BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
BACKFILL_RUNS = """
query Runs($tag: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $tag}]}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}"""
RESOURCES = """
query Resources($repo: RepositorySelector!) {
  allTopLevelResourceDetailsOrError(repositorySelector: $repo) {
    ... on ResourceDetailsList { results { name configuredValues { key value type } } }
  }
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Dagster(DagsterClient):
    """`dagster dev` over an instance, and its GraphQL API (what the UI reads and sends)."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (home / "dev.log").open("w")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster"),
                "dev",
                "-m",
                LOCATION,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            env={**os.environ, **env, "DAGSTER_HOME": str(home)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole below
        )
        super().__init__(self.url)
        try:
            self.wait_ready("telegram_pipeline", timeout=240)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        # Ctrl-C, as a person stops it (dagster dev outside a job-control shell ignores
        # SIGTERM)
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "select channel_username, count(*) from raw.telegram_messages group by 1"
            ).fetchall()
        )


@pytest.fixture(scope="module")
def platform(yolo_bin, fresh_database, tmp_path_factory):
    folder, model = yolo_bin
    root = tmp_path_factory.mktemp("orchestrated")
    exports = make_sample(root / "sample")
    url = fresh_database("orchestrated")
    home = root / "dagster"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    env = {
        "LAKE_DIR": str(root / "lake"),
        "DATABASE_URL": url,
        "DETECT_MODEL": model,
        "TGMED_YOLO_BIN": folder,
        "TGMED_LAUNCH_MODE": "local",
        "TGMED_SCRAPE_SOURCE": "export",
        "TGMED_EXPORT_ROOT": str(exports),
        "TGMED_STAGE_RETRY_DELAY_SECONDS": "1",
        "DBT_TARGET_PATH": str(root / "dbt-target"),
        "DBT_LOG_PATH": str(root / "dbt-target" / "logs"),
        "TELEGRAM_API_ID": "12345",
        **SECRETS,
    }
    dagster = Dagster(home, env)
    try:
        # the pipeline for two of the sample's three channels
        first = dagster.launch(
            "telegram_pipeline",
            {"ops": {"telegram_lake": {"config": {"channels": ["chemed123", "tikvahpharma"]}}}},
        )
        status = dagster.wait_finished(first, 900).status
        assert status == "SUCCESS", (home / "dev.log").read_text()[-5000:]
        yield {"dagster": dagster, "first": first, "url": url, "home": home, "lake": root / "lake"}
    finally:
        dagster.stop()


def nodes(dagster: Dagster) -> dict[str, dict]:
    return {"/".join(n["assetKey"]["path"]): n for n in dagster.query(ASSETS)["assetNodes"]}


def test_catalog_lineage_metadata_and_checks_after_the_run(platform):
    dagster, first = platform["dagster"], platform["first"]
    catalog = nodes(dagster)
    dbt = {
        f"{n['schema']}/{n.get('alias') or n['name']}"
        for n in MANIFEST["nodes"].values()
        if n["resource_type"] in {"model", "seed"}
    }
    lake = {"lake/telegram_messages", "lake/telegram_media", "lake/yolo_detections"}
    raw = {
        "raw/telegram_messages",
        "raw/telegram_message_observations",
        "raw/telegram_channel_snapshots",
        "raw/yolo_detections",
    }
    assert lake | raw | dbt <= set(catalog)
    assert catalog["lake/telegram_messages"]["partitionDefinition"]["name"] == "channels"

    # lineage edges from the channel partitions to the marts
    def parents(name: str) -> set[str]:
        return {"/".join(k["path"]) for k in catalog[name]["dependencyKeys"]}

    assert parents("raw/telegram_messages") == {"lake/telegram_messages", "lake/telegram_media"}
    assert parents("staging/stg_telegram_messages") == {"raw/telegram_messages"}
    assert "staging/stg_telegram_messages" in parents("marts/fct_messages")
    assert parents("raw/yolo_detections") == {"lake/yolo_detections"}
    assert "raw/yolo_detections" in parents("staging/stg_yolo_detections")

    # every asset of the run materialized by it, with numeric metadata
    for name in sorted(lake | raw | dbt):
        [latest] = catalog[name]["assetMaterializations"]
        assert latest["runId"] == first, name
        numbers = [
            e
            for e in latest["metadataEntries"]
            if e["__typename"] in {"IntMetadataEntry", "FloatMetadataEntry"}
        ]
        assert numbers, f"{name} has no numeric metadata"
    rows = {
        e["label"]: e.get("intValue")
        for e in catalog["marts/fct_messages"]["assetMaterializations"][0]["metadataEntries"]
    }
    assert rows["rows"] == sum(counts(platform["url"]).values())

    # every dbt data test a passing check of this run, on what it tests
    tests = {n["name"] for n in MANIFEST["nodes"].values() if n["resource_type"] == "test"}
    checks = {
        (asset, check["name"]): check
        for asset, node in catalog.items()
        for check in node["assetChecksOrError"]["checks"]
        if check["name"] in tests
    }
    assert len(checks) == len(tests) == readme_dbt_test_count()[0]
    for (asset, name), check in checks.items():
        execution = check["executionForLatestMaterialization"]
        assert execution is not None and execution["status"] == "SUCCEEDED", (asset, name)
        assert execution["runId"] == first
    raw_checks = {
        c["name"]: c for c in catalog["raw/telegram_messages"]["assetChecksOrError"]["checks"]
    }
    assert (
        raw_checks["no_quarantined_files"]["executionForLatestMaterialization"]["status"]
        == "SUCCEEDED"
    )


def test_the_asset_graph_is_the_recorded_one(platform):
    """Every asset key, check key and check status after the first run is the one recorded
    in deploy/asset_parity.json (before issue 25's move onto dagster-dbt, changed by it as
    asset_parity.py says); the compose and
    Kubernetes e2e compare with the same file. TGMED_RECORD_ASSET_PARITY=1 records it."""
    answer = platform["dagster"].assets()
    found = asset_parity.observed(answer)
    if os.environ.get("TGMED_RECORD_ASSET_PARITY"):
        asset_parity.record(found)
    assert asset_parity.differences(asset_parity.recorded(), found) == []


def test_a_channel_added_in_the_ui_and_backfilled_imports_only_that_channel(platform):
    dagster, url = platform["dagster"], platform["url"]
    before = counts(url)
    assert set(before) == {"chemed123", "tikvahpharma"}
    # as the UI's "add partition" does; channel_partitions_sensor (running by default)
    # may have added it already from the export folders
    added = dagster.query(ADD_PARTITION, {"repo": REPOSITORY, "key": "lobelia4cosmetics"})
    assert added["addDynamicPartition"]["__typename"] in {
        "AddDynamicPartitionSuccess",
        "DuplicateDynamicPartitionError",
    }
    params = {
        "selector": {
            "partitionSetName": "telegram_pipeline_partition_set",
            "repositorySelector": REPOSITORY,
        },
        "partitionNames": ["lobelia4cosmetics"],
        "fromFailure": False,
    }
    launched = dagster.query(BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    [run] = wait_until(
        lambda: dagster.query(BACKFILL_RUNS, {"tag": launched["backfillId"]})["runsOrError"][
            "results"
        ],
        900,
        f"backfill {launched['backfillId']} launched no run",
        poll=2,
    )
    assert dagster.wait_finished(run["runId"], 900).status == "SUCCESS", (
        platform["home"] / "dev.log"
    ).read_text()[-5000:]
    after = counts(url)
    assert after["lobelia4cosmetics"] > 0
    assert {k: after[k] for k in before} == before  # the other channels untouched
    # the lake's messages: materialized for that partition only, by this run
    key = {"path": ["lake", "telegram_messages"]}
    materialized = dagster.query(PARTITION_MATERIALIZATIONS, {"key": key})["assetNodes"][0]
    by_run = [
        m["partition"] for m in materialized["assetMaterializations"] if m["runId"] == run["runId"]
    ]
    assert by_run == ["lobelia4cosmetics"]
    # ... and what is downstream of it, materialized by the same run
    catalog = nodes(dagster)
    for name in [
        "raw/telegram_messages",
        "staging/stg_telegram_messages",
        "marts/fct_messages",
        "marts/dim_channels",
    ]:
        assert catalog[name]["assetMaterializations"][0]["runId"] == run["runId"], name
    with psycopg.connect(url) as conn:
        channels = conn.execute("select count(*) from marts.dim_channels").fetchone()[0]
    assert channels == 3


def test_no_secret_value_in_the_resources_configuration(platform):
    answer = platform["dagster"].query(RESOURCES, {"repo": REPOSITORY})
    text = json.dumps(answer)
    for secret in SECRETS.values():
        assert secret not in text
    alerter = next(
        r for r in answer["allTopLevelResourceDetailsOrError"]["results"] if r["name"] == "alerter"
    )
    values = {v["key"]: v for v in alerter["configuredValues"]}
    assert values["webhook_url"] == {
        "key": "webhook_url",
        "value": "ALERT_WEBHOOK_URL",
        "type": "ENV_VAR",
    }
    assert values["telegram_bot_token"]["type"] == "ENV_VAR"


def test_a_model_selected_alone_runs_with_its_tests_and_nothing_else(platform):
    """As "Materialize selected" in the UI: dbt builds that model alone and runs its tests
    (dagster-dbt's subset selection); the other models and their checks are untouched.
    dbt's eager selection also runs the relationship tests of other models that point at
    it (12 for dim_dates): Dagster records those as observations, not check results."""
    dagster = platform["dagster"]
    run = dagster.launch("transform", assets=["marts/dim_dates"])
    assert dagster.wait_finished(run, 900).status == "SUCCESS"
    catalog = nodes(dagster)
    assert catalog["marts/dim_dates"]["assetMaterializations"][0]["runId"] == run
    checks = catalog["marts/dim_dates"]["assetChecksOrError"]["checks"]
    assert checks and all(c["executionForLatestMaterialization"]["runId"] == run for c in checks), (
        checks
    )
    for other in ("marts/fct_messages", "staging/stg_telegram_messages", "marts/dim_channels"):
        assert catalog[other]["assetMaterializations"][0]["runId"] != run, other
        for check in catalog[other]["assetChecksOrError"]["checks"]:
            execution = check["executionForLatestMaterialization"] or {}
            assert execution.get("runId") != run, (other, check["name"])
    # the stage's own count: one model built
    [said] = [m for m in dagster.events(run).messages() if m.startswith("dbt: ")]
    assert said.startswith("dbt: 1 models built, ") and said.endswith(", 0 failed"), said


def test_a_dbt_test_made_to_fail_is_a_failed_check_on_its_model(platform):
    dagster, url = platform["dagster"], platform["url"]
    with psycopg.connect(url) as conn:
        conn.execute(
            "update raw.telegram_messages set record = jsonb_set(record, '{views}', '-3')"
            " where message_id = (select min(message_id) from raw.telegram_messages)"
        )
    run = dagster.launch("transform")
    assert dagster.wait_finished(run, 900).status == "FAILURE"
    catalog = nodes(dagster)
    checks = {
        c["name"]: c
        for c in catalog["staging/stg_telegram_messages"]["assetChecksOrError"]["checks"]
    }
    failed = checks["non_negative_stg_telegram_messages_view_count"][
        "executionForLatestMaterialization"
    ]
    assert failed["status"] == "FAILED" and failed["runId"] == run
    passed = checks["unique_stg_telegram_messages_message_key"]["executionForLatestMaterialization"]
    assert passed["status"] == "SUCCEEDED" and passed["runId"] == run
