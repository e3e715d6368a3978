#!/usr/bin/env bash
# Build every image with no network inside any build: local base images (debootstrap,
# see base-images.sh) and wheels downloaded here on the host, each image's into its own
# deploy/wheelhouse/<image>/ (deploy/wheelhouse-yolo for the torch stack, kept out of
# the other images' context).
#   deploy/offline/build.sh [IMAGE...]     default: all images
# Tags: tgmed-<image>:${TGMED_TAG:-latest}, what compose.yaml and the orchestrator use.
set -euo pipefail
cd "$(dirname "$0")/../.."
log() { echo "[build] $*" >&2; }
TAG="${TGMED_TAG:-latest}"
BASE="${OFFLINE_PYTHON_IMAGE:-tgmed/python-base:bookworm}"
PIP_ARGS="--no-index --find-links /wheelhouse"
# the host's pip (with its index configuration): not a uv environment's python, which
# has no pip (`make e2e` runs under `uv run`)
for candidate in python3 /usr/bin/python3 /usr/local/bin/python3; do
    if "$candidate" -m pip --version >/dev/null 2>&1; then HOST_PYTHON="$candidate"; break; fi
done
[ -n "${HOST_PYTHON:-}" ] || { log "no python3 with pip on this host (apt-get install python3-pip)"; exit 1; }
PIP=("$HOST_PYTHON" -m pip --disable-pip-version-check -q)
IMAGES=("${@:-scraper loader transform yolo api orchestrator dagster postgres proxy}")
read -r -a IMAGES <<<"${IMAGES[*]}"

bash deploy/offline/engine.sh
bash deploy/offline/base-images.sh

quiet_pip() {  # pip, failing loudly; without the local index's noise
    local out
    if ! out="$("${PIP[@]}" "$@" 2>&1)"; then
        grep -v "is ignored: it is neither" <<<"$out" >&2
        log "pip $1 failed"
        return 1
    fi
}

dockerfile() {
    case "$1" in
        yolo) echo services/yolo/Dockerfile ;;
        postgres) echo deploy/postgres/Dockerfile ;;
        proxy) echo deploy/proxy/Dockerfile ;;
        *) echo deploy/python.Dockerfile ;;  # every other Python image: its --target
    esac
}

packages() {  # the image's own packages (folders of the Dockerfile's /src), with common
    case "$1" in
        loader) echo "loader extract" ;;  # the loader image carries the extract stage
        dagster) echo "" ;;               # the webserver and daemon never load our code
        *) echo "$1" ;;
    esac
}

image_wheels() {  # the locked third-party wheels of one image (hash-checked), in its own
    # folder: only that image's wheels, so a wheel another image needs changes no layer
    local folder="deploy/wheelhouse/$1"
    rm -rf "$folder.new" && mkdir -p "$folder.new"
    # pip wheel: downloads wheels (pip's cache), builds the few sdist-only packages
    # (pyaes) into wheels
    quiet_pip wheel --no-deps --require-hashes -r "deploy/requirements/$1.txt" -w "$folder.new"
    quiet_pip download --only-binary=:all: hatchling -d "$folder.new"  # builds our packages
    touch "$folder.new/.gitkeep"  # the folder is committed (empty): online builds copy it
    rm -rf "$folder" && mv "$folder.new" "$folder"
}

yolo_context() {  # a context holding only what the yolo image needs, torch wheels included
    local ctx=build/context-yolo
    mkdir -p deploy/wheelhouse-yolo
    quiet_pip download --only-binary=:all: -c services/yolo/requirements.lock \
        ./services/common ./services/yolo hatchling \
        "opencv-python-headless==$(sed -n 's/^opencv-python==//p' services/yolo/requirements.lock)" \
        -d deploy/wheelhouse-yolo || return 1
    rm -rf "$ctx" && mkdir -p "$ctx/deploy" "$ctx/services"
    cp -al deploy/wheelhouse-yolo "$ctx/deploy/wheelhouse"
    cp -r services/common services/yolo "$ctx/services/"
    find "$ctx/services" -name tests -prune -exec rm -rf {} + -o -name __pycache__ -prune -exec rm -rf {} +
    echo "$ctx"
}

bash deploy/offline/disk.sh "$(docker info -f '{{.DockerRootDir}}')" "${TGMED_BUILD_NEED_GB:-30}"
for image in "${IMAGES[@]}"; do
    started=$SECONDS
    file="$(dockerfile "$image")"
    [ -f "$file" ] || { log "$image: no $file yet, skipped"; continue; }
    context=.
    case "$image" in
        yolo) context="$(yolo_context)" || exit 1 ;;
        postgres | proxy) ;;  # Debian packages, no wheels
        *) image_wheels "$image" ;;
    esac
    args=(--build-arg "PYTHON_IMAGE=$BASE" --build-arg "PIP_ARGS=$PIP_ARGS")
    final=()
    if [ "$file" = deploy/python.Dockerfile ]; then
        args+=(--build-arg "IMAGE=$image" --build-arg "PACKAGES=$(packages "$image")")
        final=(--target "$image")
    fi
    [ "$image" = postgres ] && args=(--build-arg "POSTGRES_BASE=tgmed/postgres-base:bookworm")
    [ "$image" = proxy ] && args=(--build-arg "PROXY_BASE=$BASE")  # nginx from Debian's apt
    log "$image: docker build -f $file $context"
    # the build stage (the installed venv; yolo's torch environment), tagged: the prune
    # below keeps it, so the next build of this image starts from its cache
    if [ "$image" = yolo ]; then
        docker build -q --force-rm -f "$file" "${args[@]}" --target deps \
            -t "tgmed-yolo-deps:$TAG" "$context" >/dev/null
    elif [ ${#final[@]} -gt 0 ]; then
        docker build -q --force-rm -f "$file" "${args[@]}" --target build \
            -t "tgmed-$image-build:$TAG" "$context" >/dev/null
    fi
    docker build -q --force-rm -f "$file" "${args[@]}" "${final[@]}" -t "tgmed-$image:$TAG" \
        "$context" >/dev/null
    size=$(docker image inspect --format '{{.Size}}' "tgmed-$image:$TAG")
    log "$image: tgmed-$image:$TAG $((size / 1000000)) MB in $((SECONDS - started)) s"
done

# the legacy builder keeps each build stage as a dangling image (the yolo one is ~10 GB)
reclaimed=$(docker image prune -f | tail -1)
log "dangling build stages removed: ${reclaimed#Total reclaimed space: }"
