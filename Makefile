# newsroom-notify: the front door. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := tests/tools
TOOLS_STAMP := $(TOOLS)/node_modules/.installed
# Deployment validators (tests/unit/test_deploy.py): a separate venv from a pinned requirements
# file, the Compose Specification schema from the compose-go module, kustomize built once from
# the Go module proxy into the user cache (outside the repo; warm runs do nothing).
DEPLOY_VENV := $(TOOLS)/.venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
TOOLS_CACHE ?= $(HOME)/.cache/newsroom-notify
GO ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
GO_ENV := GOPATH=$(TOOLS_CACHE)/go GOCACHE=$(TOOLS_CACHE)/go-build GOFLAGS=-modcacherw GOTOOLCHAIN=local
COMPOSE_GO_VERSION := v2.16.2
KUSTOMIZE_VERSION := v5.8.2
KUSTOMIZE_BIN := $(TOOLS_CACHE)/bin/kustomize-$(KUSTOMIZE_VERSION)
DEPLOY_TOOLS := $(DEPLOY_STAMP) $(DEPLOY_VENV)/compose-spec-$(COMPOSE_GO_VERSION).json $(DEPLOY_VENV)/bin/kustomize
KAFKA_DIR ?= .run/kafka
KAFKA_PORT ?= 9092
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install deploy-tools run test test-deploy lint format schemas kafka-up kafka-down kafka-fetch clean bench soak lock audit images-local wheelhouse compose-test browser

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Two distributions, both editable: the service (.) and its development harness (services/dev:
# local Kafka, the demo, builders, samples, the workload; never in the service's wheel or image).
DEV_DIST := services/dev

$(STAMP): pyproject.toml $(DEV_DIST)/pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]' -e $(DEV_DIST)
	touch $@

LOCK_VENV := .run/lock-venv

lock: ## regenerate constraints.txt from a clean venv (after changing pyproject.toml's dependencies)
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet -e '.[dev]' -e $(DEV_DIST)
	{ sed -n '/^#/p' constraints.txt; $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)

# Not part of `make test`: pip-audit needs PyPI's JSON API (or OSV) for vulnerability data, which
# this build environment cannot reach (see README "Security"). --strict fails when a dependency
# could not be audited, so an unreachable data source is never read as "no vulnerabilities".
audit: $(STAMP) ## audit the locked dependencies for known vulnerabilities (pip-audit; needs PyPI's JSON API)
	$(BIN)/python -m pip install --quiet -c constraints.txt 'pip-audit>=2.7'
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off

$(TOOLS_STAMP): $(TOOLS)/package.json $(TOOLS)/package-lock.json
	npm ci --prefix $(TOOLS) --no-audit --no-fund --loglevel=error
	touch $@

$(DEPLOY_STAMP): $(TOOLS)/requirements-deploy.txt
	test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --only-binary=:all: -r $<
	touch $@

$(DEPLOY_VENV)/compose-spec-$(COMPOSE_GO_VERSION).json: | $(DEPLOY_STAMP)
	@set -euo pipefail; \
	dir=$$($(GO_ENV) $(GO) mod download -json github.com/compose-spec/compose-go/v2@$(COMPOSE_GO_VERSION) \
	  | $(DEPLOY_VENV)/bin/python -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'); \
	cp "$$dir/schema/compose-spec.json" $@.tmp && mv $@.tmp $@

$(KUSTOMIZE_BIN):
	mkdir -p $(TOOLS_CACHE)/bin
	$(GO_ENV) GOBIN=$(TOOLS_CACHE)/bin $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(TOOLS_CACHE)/bin/kustomize $@

$(DEPLOY_VENV)/bin/kustomize: $(KUSTOMIZE_BIN) | $(DEPLOY_STAMP)
	ln -sf $(KUSTOMIZE_BIN) $@

install: $(STAMP) $(TOOLS_STAMP) ## create .venv, install the service and its dev harness (services/dev) editable, and the test tools
	@$(BIN)/python -m newsroom_dev.kafka fetch >/dev/null

kafka-fetch: $(STAMP) ## fetch the Apache Kafka jars from Maven Central (cached)
	$(BIN)/python -m newsroom_dev.kafka fetch

kafka-up: $(STAMP) ## start a local single-node Kafka on 127.0.0.1:$(KAFKA_PORT)
	@$(BIN)/python -m newsroom_dev.kafka up --dir $(KAFKA_DIR) --port $(KAFKA_PORT)

kafka-down: $(STAMP) ## stop the local Kafka started by kafka-up
	@$(BIN)/python -m newsroom_dev.kafka down --dir $(KAFKA_DIR)

run: install ## the demo: local Kafka, a worker, the API, the mailer and an SMTP sink, a story on screen; Ctrl-C stops all
	$(BIN)/newsroom-notify demo --dir .run/demo

# Not part of `install`, so `make run` does not wait for a Go build on a fresh clone.
deploy-tools: $(DEPLOY_TOOLS) ## install the deployment validators (tools venv, schema, kustomize)

# Debian's chromium for tests/browser (Playwright drives it; never `playwright install`, which
# downloads a browser build). Skipped when it is there; root here, sudo otherwise.
CHROMIUM ?= /usr/bin/chromium
browser: ## install Debian's chromium for the browser tests, when missing
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends chromium; }

test: install deploy-tools lint browser ## lint, then all tests (unit + integration on a real Kafka broker, browser tests)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-deploy: $(STAMP) deploy-tools ## only the deployment checks (compose, Dockerfile, k8s, alerts)
	$(BIN)/python -m pytest tests/unit/test_deploy.py $(PYTEST_ARGS)

images-local: $(STAMP) ## build registry-free stand-ins for the compose images (deploy/docker)
	deploy/docker/build-local-images.sh

wheelhouse: $(STAMP) ## wheels of the service (and of the demo image's harness) for an offline image build (.wheelhouse/)
	rm -rf build $(DEV_DIST)/build  # setuptools would put build/lib's stale files into the wheels
	$(BIN)/python -m pip wheel --quiet --wheel-dir .wheelhouse -c constraints.txt . $(DEV_DIST) setuptools wheel

# Installs/starts a Docker engine and compose when missing (root on Debian), builds the stand-in
# images (COMPOSE_IMAGES=official: the compose file's defaults), runs tests/compose/stack.py.
compose-test: $(STAMP) ## the compose stack for real: up, story, failover, down (needs Docker or root)
	deploy/docker/compose-test.sh

lint: $(STAMP) ## ruff check, ruff format --check, mypy, the layering (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: $(STAMP) ## regenerate schemas/ from the contract models
	$(BIN)/python -m newsroom_dev.schemas --out schemas

clean: ## remove local state (.run) and caches; keeps .venv
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache

BENCH_STAMP := $(VENV)/.bench-installed
BENCH_ARGS ?=

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]' -e $(DEV_DIST)
	touch $@

bench: $(BENCH_STAMP) ## benchmarks (8 to 18 min, depending on the machine): worker(s) vs the aiokafka limit on a real broker, a million-follower alert, fan-out cost, the issue's targets (BENCH_ARGS=--quick)
	$(BIN)/python -m bench.throughput --plot bench/results/throughput.png $(BENCH_ARGS)
	$(BIN)/python -m bench.fanout_cost
	$(BIN)/python -m bench.digest_ticks
	$(BIN)/python -m bench.ratelimit_memory
	$(BIN)/python -m bench.mail_latency

soak: install ## fault scenarios with a larger workload; prints the figures
	$(BIN)/python -m tests.faults.soak
