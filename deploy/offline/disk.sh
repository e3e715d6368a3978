#!/usr/bin/env bash
# Room for a build: at least NEED_GB free where Docker keeps its images, else what Docker
# holds that nothing needs (finished run and stage containers, dangling images, the build
# cache) is removed, and if that is not enough the build stops here with what holds the
# space, rather than failing half-way with "no space left on device".
#   deploy/offline/disk.sh DOCKER_ROOT NEED_GB
set -euo pipefail
root="$1" need_gb="$2"
log() { echo "[build] $*" >&2; }
free_gb() { df -P --block-size=1G "$root" | awk 'NR == 2 {print $4}'; }

free=$(free_gb)
if [ "$free" -ge "$need_gb" ]; then
    log "disk: $free GB free under $root (a build needs about $need_gb)"
    exit 0
fi
log "disk: $free GB free under $root, a build needs about $need_gb: removing what Docker holds unused"
bash "$(dirname "$0")/../prune-containers.sh" >/dev/null 2>&1 || true  # finished ones
docker image prune -f >/dev/null
docker builder prune -f >/dev/null 2>&1 || true  # BuildKit's cache, where there is one
free=$(free_gb)
if [ "$free" -ge "$need_gb" ]; then
    log "disk: $free GB free after the prune"
    exit 0
fi
log "disk: only $free GB free under $root after removing dangling images; a build needs about $need_gb."
log "What Docker holds:"
docker system df >&2 || true
log "Free space (old tgmed images: docker rmi; other checkouts' .venv-yolo, deploy/wheelhouse-yolo)"
log "or set TGMED_BUILD_NEED_GB lower if you know the build needs less."
exit 1
