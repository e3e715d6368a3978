#!/bin/sh
# First start of the StatefulSet's server (the image's entrypoint runs this once, on an
# empty data folder): a database and a role per use, passwords from the Secret
# tgmed-postgres. An external server needs the same statements once (README).
#   tgmed      owns the warehouse database `tgmed` (the load and transform stages)
#   dagster    owns Dagster's database `dagster`; cannot connect to `tgmed`
#   tgmed_api  (API_DB_USER) may connect to `tgmed`; `tgmed-loader init-db` grants it
#              select on the marts and nothing else
set -eu
: "${WAREHOUSE_DB_PASSWORD:?set WAREHOUSE_DB_PASSWORD in the Secret tgmed-postgres}"
: "${DAGSTER_DB_PASSWORD:?set DAGSTER_DB_PASSWORD in the Secret tgmed-postgres}"
: "${API_DB_PASSWORD:?set API_DB_PASSWORD in the Secret tgmed-postgres}"
psql -v ON_ERROR_STOP=1 -q -U "${POSTGRES_USER:-postgres}" -d postgres \
    -v warehouse_password="$WAREHOUSE_DB_PASSWORD" \
    -v dagster_password="$DAGSTER_DB_PASSWORD" \
    -v api_password="$API_DB_PASSWORD" \
    -v api_user="${API_DB_USER:-tgmed_api}" <<'SQL'
create role tgmed login password :'warehouse_password';
create role dagster login password :'dagster_password';
create role :"api_user" login password :'api_password';
create database tgmed owner tgmed;
create database dagster owner dagster;
-- nobody connects to a database unless granted: Dagster's role never reads the
-- warehouse, the API's role never reads Dagster's storage
revoke all on database tgmed from public;
revoke all on database dagster from public;
grant connect on database tgmed to :"api_user";
\connect dagster
alter schema public owner to dagster;
SQL
echo "roles tgmed, dagster, ${API_DB_USER:-tgmed_api} and databases tgmed, dagster created"
