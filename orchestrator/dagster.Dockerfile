# The Dagster webserver and daemon: dagster libraries only (the code location runs in
# its own container, tgmed-orchestrator; this image never loads our code): the code
# location's locked set plus the UI extra. Build context: the repository root.
#   docker build -f orchestrator/dagster.Dockerfile -t tgmed-dagster .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PIP_ARGS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY deploy/wheelhouse/ /wheelhouse/
COPY deploy/requirements/dagster.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
    && if [ -n "$PIP_ARGS" ]; then sed -i -e '/--hash=/d' -e 's/ \\$//' /tmp/requirements.txt; fi \
    && /opt/venv/bin/pip install $PIP_ARGS --no-deps -r /tmp/requirements.txt \
    && /opt/venv/bin/python -m pip uninstall -y -q pip

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --create-home tgmed \
    && mkdir -p /opt/dagster/home /opt/dagster/logs && chown -R tgmed:tgmed /opt/dagster
COPY --from=build /opt/venv /opt/venv
COPY orchestrator/deploy/dagster.yaml /opt/dagster/dagster.yaml.template
COPY orchestrator/deploy/workspace.yaml /opt/dagster/home/workspace.yaml
COPY orchestrator/deploy/entrypoint.sh /usr/local/bin/dagster-entrypoint.sh
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 DAGSTER_HOME=/opt/dagster/home
USER tgmed
ENTRYPOINT ["dagster-entrypoint.sh"]
WORKDIR /opt/dagster/home
EXPOSE 3000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "/opt/dagster/home/workspace.yaml"]
