# The few commands a person types. `make help` lists them.
SHELL := /bin/bash
export UV_COMPILE_BYTECODE := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --no-sync
SAMPLE := data/sample
LAKE_DIR ?= data/lake
export LAKE_DIR

.PHONY: help setup sample demo test lint format bench clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup:  ## install uv if missing, then the locked dev environment (.venv)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --locked

$(SAMPLE)/truth.json:
	$(RUN) tgmed-sample --out $(SAMPLE)

sample: setup $(SAMPLE)/truth.json  ## write the bundled sample exports (data/sample)

demo: sample  ## the main job on the sample: exports -> lake (data/lake); run twice, adds nothing
	$(RUN) tgmed-scraper import-export $(SAMPLE)/exports
	@echo "lake: $(LAKE_DIR) ($$(find $(LAKE_DIR)/raw/telegram_messages -name '*.jsonl' | wc -l) message files," \
		"$$(find $(LAKE_DIR)/raw/telegram_media -type f | wc -l) photos)"

lint: setup  ## ruff lint + format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

test: lint  ## lint, then every test
	$(RUN) pytest

format: setup  ## apply ruff fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

bench: setup  ## benchmarks (ratios against a baseline measured in the same run)
	$(RUN) python bench/bench_import.py

clean:  ## remove the lake and the generated sample (not your .env)
	rm -rf data/lake data/sample
