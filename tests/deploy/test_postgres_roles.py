"""The PostgreSQL roles of a deployment (k8s/components/postgres/initdb/10-roles.sh,
run by compose's `postgres-roles` service on every start and by the Kubernetes
StatefulSet's first start), against a real server of its own: the warehouse, Dagster's
storage and the API each have a role, none of them a superuser, each confined to its
database; the script runs again without harm and sets changed passwords; a server whose
superuser is the warehouse role (a compose volume made before this) is refused, saying
what to do. Regression (fault suite, scenario 7 in docker mode): every load and
transform container held the password of Dagster's storage role."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import yaml

from tgmed_devdb.server import start, stop

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "k8s" / "components" / "postgres" / "initdb" / "10-roles.sh"
PASSWORDS = {"WAREHOUSE_DB_PASSWORD": "w-1", "DAGSTER_DB_PASSWORD": "d-1", "API_DB_PASSWORD": "a-1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of this module's own: roles are cluster-wide, the session's server is
    shared with tests that make their own API role."""
    pgdata = tmp_path_factory.mktemp("roles") / "pgdata"
    url = start(pgdata)
    yield url
    stop(pgdata)
    shutil.rmtree(pgdata, ignore_errors=True)


def run_script(server_url: str, **passwords: str) -> subprocess.CompletedProcess:
    import pgserver

    bin_dir = Path(pgserver.__file__).parent / "pginstall" / "bin"  # psql of the server
    env = {
        **os.environ,
        **PASSWORDS,
        **passwords,
        "PGHOST": parse_qs(urlsplit(server_url).query)["host"][0],
        "POSTGRES_USER": urlsplit(server_url).username or "postgres",
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True)


def connect(server_url: str, database: str, user: str) -> psycopg.Connection:
    url = re.sub(r"//[^@]*@/[^?]*", f"//{user}@/{database}", server_url, count=1)
    return psycopg.connect(url, autocommit=True)


def test_three_ordinary_roles_each_confined_to_its_database(server):
    first = run_script(server)
    assert first.returncode == 0, first.stderr
    again = run_script(server, DAGSTER_DB_PASSWORD="d-2")  # every start runs it again
    assert again.returncode == 0, again.stderr
    with connect(server, "postgres", "postgres") as conn:
        roles = dict(
            conn.execute(
                "select rolname, (rolsuper, rolcreaterole, rolcreatedb,"
                " has_database_privilege(rolname, 'tgmed', 'connect'),"
                " has_database_privilege(rolname, 'dagster', 'connect'))::text"
                " from pg_roles where rolname in ('tgmed', 'dagster', 'tgmed_api')"
            ).fetchall()
        )
        owners = dict(
            conn.execute(
                "select datname, pg_get_userbyid(datdba) from pg_database"
                " where datname in ('tgmed', 'dagster')"
            ).fetchall()
        )
        # the second run set the changed password (scram: the verifier changed)
        verifiers = conn.execute(
            "select rolname, rolpassword from pg_authid where rolname in ('tgmed', 'dagster')"
        ).fetchall()
    assert roles == {  # (superuser, createrole, createdb, connect tgmed, connect dagster)
        "tgmed": "(f,f,f,t,f)",
        "dagster": "(f,f,f,f,t)",
        "tgmed_api": "(f,f,f,t,f)",
    }
    assert owners == {"tgmed": "tgmed", "dagster": "dagster"}
    assert all(verifier and verifier.startswith("SCRAM-SHA-256$") for _, verifier in verifiers)
    for user, database in (("dagster", "tgmed"), ("tgmed", "dagster"), ("tgmed_api", "dagster")):
        with pytest.raises(psycopg.OperationalError, match="CONNECT privilege"):
            connect(server, database, user)
    with connect(server, "dagster", "dagster") as conn:  # Dagster may make its tables
        conn.execute("create table probe (id int)")
        conn.execute("drop table probe")


def test_a_password_change_takes_effect_when_the_script_runs_again(server):
    assert run_script(server).returncode == 0
    with connect(server, "postgres", "postgres") as conn:
        before = conn.execute("select rolpassword from pg_authid where rolname = 'dagster'")
        before = before.fetchone()[0]
    assert run_script(server, DAGSTER_DB_PASSWORD="rotated").returncode == 0
    with connect(server, "postgres", "postgres") as conn:
        after = conn.execute("select rolpassword from pg_authid where rolname = 'dagster'")
        assert after.fetchone()[0] != before


def test_a_server_whose_superuser_is_the_warehouse_role_is_refused_with_what_to_do(server):
    with connect(server, "postgres", "postgres") as conn:
        conn.execute("alter role tgmed superuser")  # what compose's old volumes had
    try:
        refused = run_script(server)
    finally:
        with connect(server, "postgres", "postgres") as conn:
            conn.execute("alter role tgmed nosuperuser")
    assert refused.returncode != 0
    assert "the role tgmed is this server's superuser" in refused.stderr
    assert "move the data to a new volume (README" in refused.stderr


def test_compose_gives_stages_the_warehouse_role_and_dagster_its_own():
    """compose.yaml: the warehouse URL (the daemon hands it to every load and transform
    container) names the role tgmed with WAREHOUSE_DB_PASSWORD; Dagster's storage the
    role dagster with DAGSTER_DB_PASSWORD; the superuser's password is in the server and
    the roles service alone, which runs the script tested above."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    urls = {
        (name, variable): value
        for name, service in services.items()
        for variable, value in (service.get("environment") or {}).items()
        if variable in ("DATABASE_URL", "DAGSTER_PG_URL")
    }
    assert urls[("dagster-daemon", "DATABASE_URL")].startswith(
        "postgresql://tgmed:${WAREHOUSE_DB_PASSWORD}@"
    )
    for (name, variable), url in urls.items():
        expected = (
            "tgmed:${WAREHOUSE_DB_PASSWORD"
            if variable == "DATABASE_URL"
            else "dagster:${DAGSTER_DB_PASSWORD"
        )
        assert url.startswith(f"postgresql://{expected}"), (name, variable, url)
    holders = {
        name
        for name, service in services.items()
        if "POSTGRES_PASSWORD" in str(service.get("environment") or {})
    }
    assert holders == {"postgres", "postgres-roles"}
    roles = services["postgres-roles"]
    assert "./k8s/components/postgres/initdb/10-roles.sh:/roles.sh:ro" in roles["volumes"]
    for name in ("warehouse-init", "dagster-webserver", "dagster-daemon"):
        assert services[name]["depends_on"]["postgres-roles"] == {
            "condition": "service_completed_successfully"
        }, name
