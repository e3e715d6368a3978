#!/usr/bin/env bash
# progress-run.sh LABEL LOG COMMAND...
# Runs COMMAND with all its output in LOG (an install's hundreds of lines, and the
# warnings this machine's pip configuration adds to them, stay out of the terminal).
# It prints one line every 20 s for two minutes, then every minute: the time so far and
# what the log says it is doing (a long install stays a few lines).
# On failure it prints the log's last 30 lines and exits with COMMAND's status.
set -uo pipefail
label=$1
log=$2
shift 2
mkdir -p "$(dirname "$log")"
"$@" >"$log" 2>&1 &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 130' INT TERM
started=$SECONDS
while kill -0 "$pid" 2>/dev/null; do
  every=$(( SECONDS - started < 120 ? 20 : 60 ))
  for _ in $(seq 1 $((every * 2))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -0 "$pid" 2>/dev/null || break
  doing=$(grep -E '^(Collecting|Downloading|Installing|Building|Processing|Obtaining)' "$log" \
    | tail -1)
  case "$doing" in
    "Installing collected packages:"*)
      doing="installing $(($(tr -cd , <<<"$doing" | wc -c) + 1)) packages" ;;
    *) doing=$(cut -c1-90 <<<"$doing") ;;
  esac
  echo "$label: $((SECONDS - started)) s, $(grep -c '^Collecting' "$log") packages collected; ${doing:-working}"
done
wait "$pid"
status=$?
if [ "$status" != 0 ]; then
  echo "$label failed ($status); the end of $log:"
  tail -30 "$log"
  exit "$status"
fi
echo "$label: done in $((SECONDS - started)) s"
