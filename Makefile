# newsroom-notify: the front door. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := tests/tools
TOOLS_STAMP := $(TOOLS)/node_modules/.installed
KAFKA_DIR ?= .run/kafka
KAFKA_PORT ?= 9092
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test lint format schemas kafka-up kafka-down kafka-fetch clean bench soak

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(TOOLS_STAMP): $(TOOLS)/package.json $(TOOLS)/package-lock.json
	npm ci --prefix $(TOOLS) --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(TOOLS_STAMP) ## create .venv, install the project and the test tools
	@$(BIN)/python -m newsroom_notify.devkafka fetch >/dev/null

kafka-fetch: $(STAMP) ## fetch the Apache Kafka jars from Maven Central (cached)
	$(BIN)/python -m newsroom_notify.devkafka fetch

kafka-up: $(STAMP) ## start a local single-node Kafka on 127.0.0.1:$(KAFKA_PORT)
	@$(BIN)/python -m newsroom_notify.devkafka up --dir $(KAFKA_DIR) --port $(KAFKA_PORT)

kafka-down: $(STAMP) ## stop the local Kafka started by kafka-up
	@$(BIN)/python -m newsroom_notify.devkafka down --dir $(KAFKA_DIR)

run: install ## start local Kafka and the worker; Ctrl-C stops both
	@set -euo pipefail; \
	if $(BIN)/python -m newsroom_notify.devkafka status --dir $(KAFKA_DIR) >/dev/null 2>&1; then \
	  echo "using the local Kafka already running (make kafka-down stops it)"; \
	else \
	  trap '$(BIN)/python -m newsroom_notify.devkafka down --dir $(KAFKA_DIR)' EXIT; \
	fi; \
	bootstrap=$$($(BIN)/python -m newsroom_notify.devkafka up --dir $(KAFKA_DIR) --port $(KAFKA_PORT)); \
	echo "worker starting against $$bootstrap; in another terminal: $(BIN)/newsroom-notify post --samples"; \
	NEWSROOM_KAFKA__BOOTSTRAP_SERVERS=$$bootstrap $(BIN)/newsroom-notify worker || true

test: install lint ## lint, then all tests (unit + integration on a real Kafka broker)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: $(STAMP) ## regenerate schemas/ from the contract models
	$(BIN)/python -m newsroom_notify.contract.schemas --out schemas

clean: ## remove local state (.run) and caches; keeps .venv
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache

BENCH_STAMP := $(VENV)/.bench-installed
BENCH_ARGS ?=

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(BENCH_STAMP) ## benchmarks: worker(s) vs the aiokafka limit on a real broker, fan-out cost (BENCH_ARGS=--quick)
	$(BIN)/python bench/throughput.py --plot bench/results/throughput.png $(BENCH_ARGS)
	$(BIN)/python bench/fanout_cost.py

soak: install ## fault scenarios with a larger workload; prints the figures
	$(BIN)/python -m tests.faults.soak
