# The Dagster code location (gRPC server) and the image of every run worker: dagster
# libraries and the orchestrator package only (no torch, Telethon or dbt: stages run in
# their own images). Build context: the repository root.
#   docker build -f orchestrator/orchestrator.Dockerfile -t tgmed-orchestrator .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PIP_ARGS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY deploy/wheelhouse/ /wheelhouse/
COPY deploy/requirements/orchestrator.txt /tmp/requirements.txt
# hash-checked from PyPI; offline the wheelhouse was hash-checked on the host
RUN python3 -m venv /opt/venv \
    && if [ -n "$PIP_ARGS" ]; then sed -i -e '/--hash=/d' -e 's/ \\$//' /tmp/requirements.txt; fi \
    && /opt/venv/bin/pip install $PIP_ARGS --no-deps -r /tmp/requirements.txt
COPY services/common /src/common
COPY orchestrator/pyproject.toml /src/orchestrator/pyproject.toml
COPY orchestrator/src /src/orchestrator/src
RUN /opt/venv/bin/pip install $PIP_ARGS --no-deps /src/common /src/orchestrator \
    && /opt/venv/bin/python -m pip uninstall -y -q pip

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --create-home tgmed \
    && mkdir -p /opt/dagster/home /opt/dagster/logs /lake \
    && chown -R tgmed:tgmed /opt/dagster /lake
COPY --from=build /opt/venv /opt/venv
COPY orchestrator/deploy/dagster.yaml /opt/dagster/dagster.yaml.template
COPY orchestrator/deploy/entrypoint.sh /usr/local/bin/dagster-entrypoint.sh
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 DAGSTER_HOME=/opt/dagster/home \
    LAKE_DIR=/lake
USER tgmed
ENTRYPOINT ["dagster-entrypoint.sh"]
WORKDIR /opt/dagster/app
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", \
     "-m", "tgmed_orchestrator.definitions"]
