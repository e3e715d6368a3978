#!/bin/sh
# A database and a role per use, passwords from the environment. Idempotent: creates what
# is missing and sets every password again (a changed secret takes effect), so it runs
# on every start where it can:
#   Kubernetes: the StatefulSet's first start (the image's entrypoint runs it once, on an
#               empty data folder; passwords from the Secret tgmed-postgres); an external
#               server needs it once (README).
#   compose:    the one-shot service `postgres-roles`, on every `docker compose up`
#               (PGHOST/PGPASSWORD name the server and its superuser's password).
#   tgmed      owns the warehouse database `tgmed` (the load and transform stages)
#   dagster    owns Dagster's database `dagster`; cannot connect to `tgmed`
#   tgmed_api  (API_DB_USER) may connect to `tgmed`; `tgmed-loader init-db` grants it
#              select on the marts and nothing else
# None of them is a superuser: a stage holding the warehouse's password cannot read
# Dagster's storage (found by the fault suite, docs/reliability.md).
set -eu
: "${WAREHOUSE_DB_PASSWORD:?set WAREHOUSE_DB_PASSWORD (Kubernetes: the Secret tgmed-postgres; compose: .env)}"
: "${DAGSTER_DB_PASSWORD:?set DAGSTER_DB_PASSWORD (Kubernetes: the Secret tgmed-postgres; compose: .env)}"
: "${API_DB_PASSWORD:?set API_DB_PASSWORD (Kubernetes: the Secret tgmed-postgres; compose: .env)}"
legacy="the role tgmed is this server's superuser: its data volume was made before the
warehouse, Dagster and the API had roles of their own. Move the data to a new volume
(README, \"Containers\": a volume made before the roles), then start again."
# compose's volumes made before this script have no role postgres (their superuser is
# tgmed, with the same password): say so rather than "password authentication failed"
if ! psql -q -U "${POSTGRES_USER:-postgres}" -d postgres -c 'select 1' >/dev/null 2>&1 &&
    [ "$(psql -Atq -U tgmed -d tgmed -c 'select rolsuper from pg_roles where rolname = current_user' 2>/dev/null)" = t ]; then
    echo "$legacy" >&2
    exit 3
fi
psql -v ON_ERROR_STOP=1 -q -U "${POSTGRES_USER:-postgres}" -d postgres \
    -v warehouse_password="$WAREHOUSE_DB_PASSWORD" \
    -v dagster_password="$DAGSTER_DB_PASSWORD" \
    -v api_password="$API_DB_PASSWORD" \
    -v api_user="${API_DB_USER:-tgmed_api}" <<'SQL'
-- a server made before the roles were separated (compose's superuser was `tgmed`)
do $$
begin
    if exists (select from pg_roles where rolname = 'tgmed' and rolsuper) then
        raise exception 'the role tgmed is this server''s superuser: its data volume was made before the warehouse, Dagster and the API had roles of their own'
            using hint = 'move the data to a new volume (README, "Containers": a volume made before the roles), then start again';
    end if;
end
$$;
select format('create role %I login', name)
from (values ('tgmed'), ('dagster'), (:'api_user')) as wanted (name)
where not exists (select from pg_roles where rolname = name) \gexec
alter role tgmed login nosuperuser nocreatedb nocreaterole password :'warehouse_password';
alter role dagster login nosuperuser nocreatedb nocreaterole password :'dagster_password';
alter role :"api_user" login nosuperuser nocreatedb nocreaterole password :'api_password';
select format('create database %I owner %I', name, name)
from (values ('tgmed'), ('dagster')) as wanted (name)
where not exists (select from pg_database where datname = name) \gexec
-- nobody connects to a database unless granted: Dagster's role never reads the
-- warehouse, the API's role never reads Dagster's storage
revoke all on database tgmed from public;
revoke all on database dagster from public;
grant connect on database tgmed to :"api_user";
\connect dagster
alter schema public owner to dagster;
SQL
echo "roles tgmed, dagster, ${API_DB_USER:-tgmed_api} and databases tgmed, dagster ready"
