# Every Python image but the detection stage's (services/yolo/Dockerfile: its torch
# environment): the stages (scraper; loader, which carries the extract stage; transform),
# the API, the Dagster code location (orchestrator) and Dagster's webserver and daemon
# (dagster). One build stage, a final stage per image. Build context: the repository root.
#   docker build -f deploy/python.Dockerfile --build-arg IMAGE=scraper --target scraper \
#       -t tgmed-scraper .
# IMAGE names the image's locked requirements (deploy/requirements/IMAGE.txt, exported
# from uv.lock by `make requirements`) and its wheel folder (deploy/wheelhouse/IMAGE/):
# offline, deploy/offline/build.sh fills that folder with this image's wheels only and
# passes PYTHON_IMAGE=<local base> PIP_ARGS="--no-index --find-links /wheelhouse", so a
# wheel another image needs changes no layer of this one; online the folder is empty and
# pip installs from PyPI, hash-checked.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG IMAGE
ARG PIP_ARGS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY deploy/wheelhouse/${IMAGE}/ /wheelhouse/
COPY deploy/requirements/${IMAGE}.txt /tmp/requirements.txt
# third-party packages first (a layer that changes only with this image's locked set),
# exactly as locked: hash-checked from PyPI; offline, the wheelhouse was hash-checked
# when built on the host (and holds wheels built from sdists, whose hashes differ), so
# hashes are dropped here
RUN python3 -m venv /opt/venv \
    && if [ -n "$PIP_ARGS" ]; then sed -i -e '/--hash=/d' -e 's/ \\$//' /tmp/requirements.txt; fi \
    && /opt/venv/bin/pip install $PIP_ARGS --no-deps -r /tmp/requirements.txt
# our packages (small): every image's sources are here, each image installs its own
COPY services/common /src/common
COPY services/scraper /src/scraper
COPY services/loader /src/loader
COPY services/extract /src/extract
COPY services/api /src/api
COPY dbt/pyproject.toml /src/transform/pyproject.toml
COPY dbt/src /src/transform/src
COPY orchestrator/pyproject.toml /src/orchestrator/pyproject.toml
COPY orchestrator/src /src/orchestrator/src
# the packages of IMAGE, with common (PACKAGES: folders under /src; dagster: none, it
# never loads our code)
ARG PACKAGES=""
RUN if [ -n "$PACKAGES" ]; then \
        paths="/src/common"; for p in $PACKAGES; do paths="$paths /src/$p"; done; \
        /opt/venv/bin/pip install $PIP_ARGS --no-deps $paths; \
    fi \
    && /opt/venv/bin/python -m pip uninstall -y -q pip

FROM ${PYTHON_IMAGE} AS base
RUN useradd --system --uid 10001 --user-group --create-home tgmed
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /home/tgmed

# The stages have no ENTRYPOINT: the orchestrator runs the full command (tgmed-scraper
# ...), the same in every launch mode.
FROM base AS lake-stage
RUN mkdir /lake && chown tgmed:tgmed /lake
ENV LAKE_DIR=/lake
USER tgmed

# Telegram (Telethon) or Telegram Desktop exports -> lake
FROM lake-stage AS scraper
CMD ["tgmed-scraper", "--help"]

# lake files -> PostgreSQL raw; and the extract stage (tgmed-extract: post text -> lake
# extraction files), a light one of the same kind
FROM lake-stage AS loader
CMD ["tgmed-loader", "--help"]

# dbt build of the star schema; target/ and logs/ go to /tmp (the project stays read-only)
FROM base AS transform
COPY dbt/dbt_project.yml dbt/profiles.yml /app/dbt/
COPY dbt/models /app/dbt/models
COPY dbt/macros /app/dbt/macros
COPY dbt/seeds /app/dbt/seeds
COPY dbt/data_tests /app/dbt/data_tests
ENV DBT_PROJECT_DIR=/app/dbt DBT_TARGET_PATH=/tmp/dbt/target DBT_LOG_PATH=/tmp/dbt/logs \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false
USER tgmed
CMD ["tgmed-transform", "--help"]

# FastAPI over the marts, read-only role
FROM base AS api
ENV API_HOST=0.0.0.0 API_PORT=8000
USER tgmed
EXPOSE 8000
CMD ["tgmed-api", "serve"]

# Dagster's images: the instance configuration (filled from the environment by the
# entrypoint)
FROM base AS dagster-base
RUN mkdir -p /opt/dagster/home /opt/dagster/logs && chown -R tgmed:tgmed /opt/dagster
COPY orchestrator/deploy/dagster.yaml /opt/dagster/dagster.yaml.template
COPY orchestrator/deploy/entrypoint.sh /usr/local/bin/dagster-entrypoint.sh
COPY orchestrator/deploy/wait_for_job.py /opt/dagster/wait_for_job.py
ENV DAGSTER_HOME=/opt/dagster/home
ENTRYPOINT ["dagster-entrypoint.sh"]

# The code location (gRPC server) and the image of every run worker: dagster libraries
# and the orchestrator package only (no torch, Telethon or dbt: stages run in their own
# images)
FROM dagster-base AS orchestrator
RUN mkdir /lake && chown tgmed:tgmed /lake
ENV LAKE_DIR=/lake
USER tgmed
WORKDIR /opt/dagster/app
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", \
     "-m", "tgmed_orchestrator.definitions"]

# The webserver and the daemon: the code location's locked set plus the UI extra; this
# image never loads our code (the code location runs in its own container)
FROM dagster-base AS dagster
COPY orchestrator/deploy/workspace.yaml /opt/dagster/home/workspace.yaml
USER tgmed
WORKDIR /opt/dagster/home
EXPOSE 3000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "/opt/dagster/home/workspace.yaml"]
