#!/usr/bin/env bash
# The Dagster UI (webserver + daemon: `dagster dev`) and the API (`tgmed-api serve`) in
# the foreground; Ctrl-C (or SIGTERM) stops exactly what this script started.
# Called by `make serve` / `make demo` with DATABASE_URL, DAGSTER_HOME and TGMED_* set.
set -euo pipefail
set -m  # each child its own process group: `dagster dev` ignores SIGTERM otherwise
RUN=${RUN:-uv run --no-sync}
DAGSTER_PORT=${DAGSTER_PORT:-3000}
API_HOST=${API_HOST:-127.0.0.1}
API_PORT=${API_PORT:-8000}
export API_HOST API_PORT
started=()

stop() {
  trap - INT TERM EXIT
  for pid in "${started[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  # dagster dev takes a few seconds to stop its webserver, daemon and code servers; one
  # that has not stopped after 30 s (seen once, TERM arriving during its start-up) is
  # killed with its whole process group, so nothing outlives this script
  for _ in $(seq 1 30); do
    alive=0
    for pid in "${started[@]}"; do
      kill -0 -- "-$pid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 1
  done
  for pid in "${started[@]}"; do
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap stop INT TERM EXIT

$RUN dagster dev -m tgmed_orchestrator.definitions -h 127.0.0.1 -p "$DAGSTER_PORT" &
started+=($!)

# the API reads the marts with the read-only role that `tgmed-loader init-db` created
if $RUN which tgmed-api >/dev/null 2>&1; then
  API_DB_USER=${API_DB_USER:-tgmed_api}
  API_DATABASE_URL=${API_DATABASE_URL:-$(printf '%s' "$DATABASE_URL" \
    | sed -E "s#^(postgres(ql)?://)[^@/]*@#\1${API_DB_USER}:${API_DB_PASSWORD:-}@#")}
  export API_DATABASE_URL
  $RUN tgmed-api serve &
  started+=($!)
  api="http://$API_HOST:$API_PORT"
else
  api="(not installed in this checkout: tgmed-api)"
fi

echo
echo "Dagster UI: http://127.0.0.1:$DAGSTER_PORT   (runs: http://127.0.0.1:$DAGSTER_PORT/runs)"
echo "API:        $api   (dashboard: $api/dashboard/, dbt docs: $api/dbt-docs/, API docs: $api/docs)"
echo "Ctrl-C stops both."
wait -n "${started[@]}" || true
