#!/usr/bin/env bash
# Local base images for machines that cannot pull from a registry (air-gapped sites and
# this project's CI): a Debian bookworm root filesystem made with debootstrap from the
# Debian mirror, imported with `docker import`. Everything that needs the network runs
# here on the host, never inside a `docker build`.
#   tgmed/python-base:bookworm    python3 + venv (stands in for python:3.11-slim-bookworm)
#   tgmed/postgres-base:bookworm  the same + Debian's PostgreSQL 15 (for postgres:16)
# Skips an image that already exists. MIRROR overrides the Debian mirror.
set -euo pipefail
log() { echo "[base-images] $*" >&2; }
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
WORK="${BASE_WORK:-/tmp/tgmed-base}"

have() { docker image inspect "$1" >/dev/null 2>&1; }

import_rootfs() {  # DIR IMAGE
    rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/usr/share/locale/*
    tar -C "$1" --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*' \
        --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -c . \
        | docker import --change 'ENV LANG=C.UTF-8' - "$2" >/dev/null
    log "$2: $(docker image inspect --format '{{.Size}}' "$2" | awk '{printf "%.0f MB", $1/1e6}')"
}

if have tgmed/python-base:bookworm && have tgmed/postgres-base:bookworm; then
    log "base images present"; exit 0
fi
command -v debootstrap >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}
rm -rf "$WORK" && mkdir -p "$WORK"
started=$SECONDS
log "debootstrap bookworm (minbase + python3, about 2 minutes)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$WORK/python" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; exit 1; }
import_rootfs "$WORK/python" tgmed/python-base:bookworm

log "adding PostgreSQL 15 (no automatic cluster: the entrypoint makes one)"
cp -a "$WORK/python" "$WORK/postgres"
mkdir -p "$WORK/postgres/etc/postgresql-common/createcluster.d"
echo "create_main_cluster = false" > "$WORK/postgres/etc/postgresql-common/createcluster.d/no-main.conf"
cp /etc/resolv.conf "$WORK/postgres/etc/resolv.conf"
mount -t proc proc "$WORK/postgres/proc"
trap 'umount "$WORK/postgres/proc" 2>/dev/null || true' EXIT
chroot "$WORK/postgres" bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null && apt-get clean'
umount "$WORK/postgres/proc"
import_rootfs "$WORK/postgres" tgmed/postgres-base:bookworm
rm -rf "$WORK"
log "done in $((SECONDS - started)) s"
