#!/usr/bin/env bash
# Remove the containers runs leave behind: each run's own (label tgmed.run, made by the
# DockerRunLauncher) and each stage's (label tgmed.stage). Dagster never removes them;
# auto-remove races with log streaming (CONTAINERS.md). Finished ones only, unless --all
# (compose down: nothing may outlive the platform).
set -euo pipefail
filters=()
[ "${1:-}" = "--all" ] || filters=(--filter status=exited --filter status=created --filter status=dead)
ids=()
for label in tgmed.run tgmed.stage; do
    while read -r id; do [ -n "$id" ] && ids+=("$id"); done \
        < <(docker ps -aq --filter "label=$label" "${filters[@]}")
done
if [ "${#ids[@]}" -gt 0 ]; then
    docker rm -f "${ids[@]}" >/dev/null
    echo "removed ${#ids[@]} run/stage containers"
fi
