#!/bin/sh
# Dagster images: write the instance configuration into DAGSTER_HOME with the docker
# socket's group id (DOCKER_GID: Dagster's config cannot read it from the environment
# inside container_kwargs), then run the command.
set -eu
sed "s/\${DOCKER_GID}/${DOCKER_GID:-0}/" /opt/dagster/dagster.yaml.template >"$DAGSTER_HOME/dagster.yaml"
exec "$@"
