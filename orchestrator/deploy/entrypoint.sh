#!/bin/sh
# Dagster images: write the instance configuration into DAGSTER_HOME with the docker
# socket's group id (DOCKER_GID: Dagster's config cannot read it from the environment
# inside container_kwargs), then run the command. On Kubernetes the instance is mounted
# there from a ConfigMap, or the root filesystem is read-only (a run worker gets its
# instance as an argument): nothing is written then.
set -eu
if [ ! -e "$DAGSTER_HOME/dagster.yaml" ] && [ -w "$DAGSTER_HOME" ]; then
    sed "s/\${DOCKER_GID}/${DOCKER_GID:-0}/" /opt/dagster/dagster.yaml.template >"$DAGSTER_HOME/dagster.yaml"
fi
exec "$@"
