#!/usr/bin/env bash
# The Dagster UI (webserver + daemon: `dagster dev`, workspace.local.yaml: the code
# location `tgmed`) and the API (`tgmed-api serve`) in the foreground; Ctrl-C (or
# SIGTERM, SIGHUP) stops exactly what this script started. Their logs go to LOG_DIR; the
# terminal shows only what a person needs: the URLs, then what was stopped.
#   serve.sh [--launch JOB]   first run JOB (tgmed-orchestrator launch), serve if it succeeded
# Called by `make serve` / `make demo` with DATABASE_URL, DAGSTER_HOME and TGMED_* set
# (under `tgmed-devdb run`, which stops the embedded PostgreSQL it started afterwards).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RUN=${RUN:-uv run --no-sync}
DAGSTER_PORT=${DAGSTER_PORT:-3000}
API_HOST=${API_HOST:-127.0.0.1}
API_PORT=${API_PORT:-8000}
LOG_DIR=${LOG_DIR:-data/logs}
export API_HOST API_PORT

if [ "${1:-}" = "--launch" ]; then
  # in the foreground and our process group: Ctrl-C reaches it, it cancels its run and
  # stops what it started
  $RUN tgmed-orchestrator launch "$2"
  shift 2
fi

mkdir -p "$LOG_DIR"
stamp=$(date +%Y%m%dT%H%M%S)
dagster_log="$LOG_DIR/dagster-$stamp.log"
api_log="$LOG_DIR/api-$stamp.log"
set -m  # each child its own process group: `dagster dev` ignores SIGTERM otherwise
started=()
names=()
all_names() { local text; text=$(printf '%s and ' "${names[@]}"); echo "${text% and }"; }

stop() {  # $1: the exit status (0 after Ctrl-C: stopping is what was asked)
  # ignored, not reset: a signal often comes twice (to our process group and forwarded
  # by `tgmed-devdb run`), and the second must not end this script before its children
  trap '' INT TERM HUP
  trap - EXIT
  [ ${#started[@]} -gt 0 ] || exit "$1"
  echo "stopping $(all_names) ..."
  for pid in "${started[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  # dagster dev takes a few seconds to stop its webserver, daemon and code servers; one
  # that has not stopped after 30 s (seen once, TERM arriving during its start-up) is
  # killed with its whole process group, so nothing outlives this script
  for _ in $(seq 1 60); do
    alive=0
    for pid in "${started[@]}"; do
      kill -0 -- "-$pid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for pid in "${started[@]}"; do
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ -z "${ui_file:-}" ] || rm -f "$ui_file"
  # the daemon's last heartbeat stays fresh for 45 s: a launch right after this must not
  # take it for a live daemon and wait on it
  $RUN tgmed-orchestrator daemon-stopped --since "$dagster_started" >>"$dagster_log" 2>&1 || true
  echo "stopped $(all_names) (logs: $dagster_log, $api_log)"
  exit "$1"
}
trap 'stop 0' INT TERM HUP
trap 'stop $?' EXIT

dagster_started=$(date +%s)
# where `tgmed-orchestrator launch` submits its runs while this UI serves the instance
ui_file="${DAGSTER_HOME:?DAGSTER_HOME is not set}/.tgmed-ui.json"
printf '{"url": "http://127.0.0.1:%s"}\n' "$DAGSTER_PORT" >"$ui_file"
# `dev_command is superseded` (by `dg dev`, not installed: dagster dev stays the command)
PYTHONWARNINGS='ignore:Function `dev_command` is superseded' \
  $RUN dagster dev -w "$here/deploy/workspace.local.yaml" -h 127.0.0.1 -p "$DAGSTER_PORT" \
  >"$dagster_log" 2>&1 &
started+=($!)
names+=("the Dagster UI")

# the API reads the marts with the read-only role that `tgmed-loader init-db` created
api="(not installed in this checkout: tgmed-api)"
if $RUN which tgmed-api >/dev/null 2>&1; then
  API_DB_USER=${API_DB_USER:-tgmed_api}
  API_DATABASE_URL=${API_DATABASE_URL:-$(printf '%s' "$DATABASE_URL" \
    | sed -E "s#^(postgres(ql)?://)[^@/]*@#\1${API_DB_USER}:${API_DB_PASSWORD:-}@#")}
  export API_DATABASE_URL
  # every route but /health and /ready needs a key: one for the person at this
  # terminal (scope all), made again on each start, in a file only they can read
  key_file=${API_KEY_FILE:-data/api-key}
  mkdir -p "$(dirname "$key_file")"
  $RUN tgmed-loader keys revoke local-serve >>"$api_log" 2>&1 || true
  # the key is the first line of stdout (a JSON summary follows)
  if made=$($RUN tgmed-loader keys create local-serve --scope all 2>>"$api_log"); then
    (umask 077 && printf '%s\n' "${made%%$'\n'*}" >"$key_file")
  else
    echo "no API key made (tgmed-loader init-db first); see $api_log"
  fi
  unset made
  $RUN tgmed-api serve >>"$api_log" 2>&1 &
  started+=($!)
  names+=("the API")
  api="http://$API_HOST:$API_PORT   (docs: http://$API_HOST:$API_PORT/docs)"
fi

# the URLs once they answer (or the log's tail if one of them ended)
listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
waited=0
for target in "127.0.0.1 $DAGSTER_PORT 0 $dagster_log" "$API_HOST $API_PORT 1 $api_log"; do
  read -r host port index log <<<"$target"
  [ "$index" -lt ${#started[@]} ] || continue
  until listening "$host" "$port"; do
    if ! kill -0 "${started[$index]}" 2>/dev/null; then
      echo "${names[$index]} did not start; the end of $log:"
      tail -20 "$log"
      exit 1
    fi
    sleep 0.5
    waited=$((waited + 1))
    [ $((waited % 20)) = 0 ] && echo "starting $(all_names) ... ($((waited / 2)) s)"
  done
done

echo
echo "Dagster UI: http://127.0.0.1:$DAGSTER_PORT   (runs: http://127.0.0.1:$DAGSTER_PORT/runs)"
echo "API:        $api"
echo "            dashboard: http://$API_HOST:$API_PORT/dashboard/   dbt docs: http://$API_HOST:$API_PORT/dbt-docs/"
[ -n "${key_file:-}" ] && echo "API key:    in $key_file (sign in with it; curl -H \"Authorization: Bearer \$(cat $key_file)\")"
echo "logs:       $dagster_log, $api_log"
echo "Ctrl-C stops both."
wait -n "${started[@]}" || true
