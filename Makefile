# The few commands a person types. `make help` lists them.
SHELL := /bin/bash
export UV_COMPILE_BYTECODE := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --no-sync
SAMPLE := data/sample
LAKE_DIR ?= data/lake
export LAKE_DIR

PGDATA ?= data/pg
# what the terminal does not show: full logs of installs and of the served processes
LOG_DIR ?= data/logs
# the embedded server's URL unless DATABASE_URL points elsewhere
DB_URL = $${DATABASE_URL:-$$($(RUN) tgmed-devdb start --pgdata $(PGDATA) | sed -n 's/^DATABASE_URL=//p')}
# after url="$(DB_URL)": stop when there is no database (tgmed-devdb said why above)
NEED_URL = [ -n "$$url" ] || { echo "no database: the embedded PostgreSQL ($(PGDATA)) did not start (see above)" >&2; exit 1; }

YOLO_VENV := .venv-yolo
SHARED_MODEL := $(abspath ../shared/models/yolov8n_int8.onnx)
# offline machines here have the shared COCO model beside the checkout; elsewhere the
# usual yolov8n.pt (with internet access: YOLO_OFFLINE=0 lets ultralytics fetch it)
DEFAULT_MODEL := $(if $(wildcard $(SHARED_MODEL)),$(SHARED_MODEL),yolov8n.pt)
export YOLO_OFFLINE ?= 1
export YOLO_AUTOINSTALL ?= false

# Dagster, local mode: its instance (SQLite storage, run queue) lives in data/dagster
export DAGSTER_HOME ?= $(abspath data/dagster)
# what local mode's stages read: the sample's exports, the yolo environment, the model
ORCH_ENV = TGMED_LAUNCH_MODE=local TGMED_SCRAPE_SOURCE=$${TGMED_SCRAPE_SOURCE:-export} \
	TGMED_EXPORT_ROOT=$${TGMED_EXPORT_ROOT:-$(abspath $(SAMPLE)/exports)} \
	TGMED_YOLO_BIN=$${TGMED_YOLO_BIN:-$(abspath $(YOLO_VENV)/bin)} \
	DETECT_MODEL=$${DETECT_MODEL:-$(DEFAULT_MODEL)} LAKE_DIR=$(abspath $(LAKE_DIR))
SERVE ?= 1

.PHONY: help setup sample demo pipeline serve api-key test lint format bench clean db-start db-stop \
	warehouse yolo-setup yolo-test browser-setup proxy-setup dbt-manifest detect dagster-ui dagster-jobs dagster-launch dagster-status api \
	requirements images up down e2e chaos chaos-ci k8s-validate k8s-e2e k8s-up k8s-down

help:  ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup:  ## install uv if missing, then the locked dev environment (.venv)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || { \
		echo "setup: installing uv with pip (log: $(LOG_DIR)/pip-uv.log)"; mkdir -p $(LOG_DIR); \
		tools/progress-run.sh "setup: uv" $(LOG_DIR)/pip-uv.log \
			python3 -m pip install --disable-pip-version-check uv; }
	@[ -d .venv ] || echo "setup: installing the locked environment into .venv (uv; about a minute the first time)"
	@$(UV) sync --locked --quiet

# written again when the generator changes (a sample of an older generator may break
# rules the importer has since learned, e.g. photos that are hard links)
$(SAMPLE)/truth.json: $(wildcard tools/sample/src/tgmed_sample/*.py)
	@echo "sample: writing the bundled sample exports ($(SAMPLE))"
	@rm -rf $(SAMPLE)/exports
	@$(RUN) tgmed-sample --out $(SAMPLE) >/dev/null

sample: setup $(SAMPLE)/truth.json  ## write the bundled sample exports (data/sample)

db-start: setup  ## start the embedded PostgreSQL (data/pg) and print DATABASE_URL
	@$(RUN) tgmed-devdb start --pgdata $(PGDATA)

db-stop:  ## stop the embedded PostgreSQL
	@$(RUN) tgmed-devdb stop --pgdata $(PGDATA)

# the embedded PostgreSQL for as long as a command runs: stopped afterwards (Ctrl-C too)
# if this command started it, else left running and said so (tgmed-devdb run)
WITH_DEVDB = $(RUN) tgmed-devdb run --pgdata $(PGDATA) --
SERVE_ENV = $(ORCH_ENV) RUN="$(RUN)" LOG_DIR=$(abspath $(LOG_DIR))

ifeq ($(SERVE),0)
demo: pipeline
else
demo: sample yolo-setup $(DAGSTER_HOME)/dagster.yaml  ## the main job on the sample through Dagster, then the Dagster UI and the API (SERVE=0: no serving)
	@$(SERVE_ENV) $(WITH_DEVDB) orchestrator/serve.sh --launch telegram_pipeline
endif

$(DAGSTER_HOME)/dagster.yaml: orchestrator/deploy/dagster.local.yaml
	@mkdir -p $(DAGSTER_HOME)
	@cp $< $@

pipeline: sample yolo-setup $(DAGSTER_HOME)/dagster.yaml  ## run telegram_pipeline on the sample (Dagster, local mode): exports -> lake -> detect -> PostgreSQL -> dbt marts
	@url="$(DB_URL)"; $(NEED_URL); \
	DATABASE_URL="$$url" $(ORCH_ENV) $(RUN) tgmed-orchestrator launch telegram_pipeline
	@echo "lake: $(LAKE_DIR) ($$(find $(LAKE_DIR)/raw/telegram_messages -name '*.jsonl' | wc -l) message files," \
		"$$(find $(LAKE_DIR)/raw/telegram_media -type f | wc -l) photos); PostgreSQL keeps running ($(PGDATA): make db-stop)"

serve: $(DAGSTER_HOME)/dagster.yaml  ## the Dagster UI (with its daemon) and the API in the foreground; Ctrl-C stops them
	@$(SERVE_ENV) $(WITH_DEVDB) orchestrator/serve.sh

dagster-ui: serve  ## same as serve

dagster-jobs: setup  ## list the Dagster jobs and their ops
	@$(ORCH_ENV) $(RUN) tgmed-orchestrator jobs

dagster-launch: $(DAGSTER_HOME)/dagster.yaml  ## run a job now: make dagster-launch JOB=transform [CONFIG=run.yaml]
	@url="$(DB_URL)"; $(NEED_URL); \
	DATABASE_URL="$$url" $(ORCH_ENV) $(RUN) tgmed-orchestrator launch $(JOB) $(if $(CONFIG),--config $(CONFIG))

dagster-status: $(DAGSTER_HOME)/dagster.yaml  ## schedules and sensors (on/off, last tick) and the latest runs
	@$(ORCH_ENV) $(RUN) tgmed-orchestrator status
	@$(ORCH_ENV) $(RUN) tgmed-orchestrator runs --limit 5

dbt-manifest: setup  ## after changing dbt models: dbt's manifest, which the orchestrator reads (dbt_manifest.json)
	$(RUN) tgmed-transform manifest --out orchestrator/src/tgmed_orchestrator/dbt_manifest.json

warehouse:  ## extract products and prices from the lake's posts, load the lake into PostgreSQL and build the marts (dbt)
	@url="$(DB_URL)"; $(NEED_URL); \
	$(RUN) tgmed-extract run && \
	DATABASE_URL="$$url" $(RUN) tgmed-loader init-db && \
	DATABASE_URL="$$url" $(RUN) tgmed-loader load all && \
	DATABASE_URL="$$url" $(RUN) tgmed-transform build && \
	echo "warehouse built: schemas raw, staging, marts (make db-start prints DATABASE_URL)"

api: setup  ## serve the API on the embedded database (make warehouse first); docs at /docs
	@url="$${API_DATABASE_URL:-$$($(RUN) tgmed-devdb url --pgdata $(PGDATA) --user $${API_DB_USER:-tgmed_api})}"; \
	API_DATABASE_URL="$$url" $(RUN) tgmed-api serve

api-key: setup  ## an API key on the embedded database (NAME=me SCOPE=reports|posts|all), printed once
	@url="$(DB_URL)"; $(NEED_URL); \
	DATABASE_URL="$$url" $(RUN) tgmed-loader keys create $${NAME:-$${USER:-me}} --scope $${SCOPE:-all}

$(YOLO_VENV)/.installed: services/yolo/pyproject.toml services/yolo/requirements.lock services/common/pyproject.toml
	@echo "yolo-setup: installing the detection stage's own environment ($(YOLO_VENV): torch," \
		"ultralytics; 2-10 minutes, once; log: $(YOLO_VENV)/install.log)"
	@python3 -m venv $(YOLO_VENV)
	@tools/progress-run.sh "yolo-setup" $(YOLO_VENV)/install.log \
		$(YOLO_VENV)/bin/pip install --disable-pip-version-check \
		-c services/yolo/requirements.lock \
		-e services/common -e "services/yolo[test]" -e services/scraper -e tools/sample
	@touch $@

yolo-setup: $(YOLO_VENV)/.installed  ## the detection stage's own environment (.venv-yolo: torch, ultralytics)

detect: yolo-setup  ## detect objects in lake photos (DETECT_MODEL; the shared COCO model here)
	DETECT_MODEL=$${DETECT_MODEL:-$(DEFAULT_MODEL)} $(YOLO_VENV)/bin/tgmed-yolo detect

# the browser tests (dashboard, API docs, dbt docs) drive Debian's Chromium through
# Playwright; an Ethiopic font renders the Amharic text, an emoji font the sellers' emoji
BROWSER_PACKAGES := chromium chromium-driver fonts-noto-core fonts-noto-color-emoji
browser-setup:  ## Chromium and the fonts the browser tests need (Debian packages; needs root)
	@missing=$$(for p in $(BROWSER_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing $$missing (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

NGINX_DIR := data/tools/nginx
proxy-setup:  ## Debian's nginx unpacked into data/tools/nginx for the proxy's tests (no service installed)
	@[ -x $(NGINX_DIR)/usr/sbin/nginx ] || { echo "proxy-setup: unpacking Debian's nginx into $(NGINX_DIR)"; \
		tmp=$$(mktemp -d) && cd $$tmp && { apt-get download nginx >/dev/null 2>&1 \
			|| { apt-get update -qq && apt-get download nginx >/dev/null 2>&1; }; } \
		&& cd - >/dev/null && mkdir -p $(NGINX_DIR) && dpkg -x $$tmp/nginx_*.deb $(NGINX_DIR); \
		status=$$?; rm -rf $$tmp; exit $$status; }

yolo-test: yolo-setup  ## the detection stage's tests (real model)
	$(YOLO_VENV)/bin/python -m pytest services/yolo/tests

lint: setup  ## ruff lint + format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

test: lint yolo-setup browser-setup proxy-setup  ## lint, then every test (the workspace's, then the yolo stage's)
	TGMED_YOLO_BIN=$(abspath $(YOLO_VENV)/bin) DETECT_MODEL=$${DETECT_MODEL:-$(SHARED_MODEL)} $(RUN) pytest
	$(MAKE) --no-print-directory yolo-test

format: setup  ## apply ruff fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

chaos: setup yolo-setup  ## fault suite: whole runs through Dagster with faults injected; table in docs/reliability.md (CHAOS_ARGS="--only kill --trials 3")
	$(RUN) python tests/faults/run_chaos.py --report docs/reliability.md $(CHAOS_ARGS)

chaos-ci: setup yolo-setup  ## the fault suite's short scenarios (local mode; run by .ci/run)
	$(RUN) python tests/faults/run_chaos.py --ci $(CHAOS_ARGS)

bench: setup  ## benchmarks (ratios against a baseline measured in the same run)
	$(RUN) python bench/bench_import.py
	$(RUN) python bench/bench_refresh.py
	$(RUN) python bench/bench_load.py
	$(RUN) python bench/bench_api.py
	$(YOLO_VENV)/bin/python bench/bench_detect.py

clean:  ## remove the lake, the generated sample, Dagster's local instance and the logs (not your .env)
	rm -rf data/lake data/sample data/dagster data/logs

# --- containers (compose.yaml) -----------------------------------------------------------
IMAGE_REQUIREMENTS := scraper transform api orchestrator
requirements:  ## export each image's locked requirements from uv.lock (deploy/requirements)
	@for name in $(IMAGE_REQUIREMENTS); do \
		$(UV) export --frozen --no-dev --no-emit-workspace --package tgmed-$$name --no-header -q \
			-o deploy/requirements/$$name.txt; done
	@# the loader image carries the extract stage too
	@$(UV) export --frozen --no-dev --no-emit-workspace --package tgmed-loader \
		--package tgmed-extract --no-header -q -o deploy/requirements/loader.txt
	@$(UV) export --frozen --no-dev --no-emit-workspace --package tgmed-orchestrator --extra ui \
		--no-header -q -o deploy/requirements/dagster.txt

images:  ## build every image offline (local base images, host wheelhouse; no registry needed)
	bash deploy/offline/build.sh

up:  ## start the platform with docker compose (.env: POSTGRES_PASSWORD, WAREHOUSE_DB_PASSWORD, DAGSTER_DB_PASSWORD, API_DB_PASSWORD, ...)
	DOCKER_GID=$$(stat -c %g /var/run/docker.sock) docker compose up -d --wait

down:  ## stop the platform, and remove the run and stage containers its runs left
	bash deploy/prune-containers.sh --all
	docker compose down

e2e: setup yolo-setup  ## containers end to end: build offline, compose up, a run through Dagster's GraphQL, down
	$(RUN) python deploy/e2e.py

# --- Kubernetes (k8s/) -------------------------------------------------------------------
k8s-validate: setup  ## render every overlay and check it (schemas 1.25-1.33, strict; the platform's rules)
	$(RUN) python k8s/validate.py

k8s-e2e: setup yolo-setup sample  ## a real single-node cluster: build, images, apply, runs through Dagster, checks, teardown
	$(RUN) python k8s/e2e.py $(K8S_E2E_ARGS)

k8s-up: setup sample  ## the local cluster with the platform on it, left running (make k8s-down stops it)
	$(RUN) python k8s/e2e.py --up

k8s-down:  ## delete the platform's namespace and stop the local cluster
	$(RUN) python k8s/e2e.py --down
