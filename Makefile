# The two commands a newcomer needs: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PREFECT_LOGGING_LEVEL ?= WARNING
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: install lint format test soak demo clean server

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every core runs tests (pytest-xdist): on 2 cores the suite takes about 15 minutes, not 30. An
# idle worker takes queued tests from the other (worksteal), so the run does not end on one core.
test: lint
	$(BIN)/python -m pytest -n auto --dist worksteal

# Larger chaos and crash runs than `make test` (several minutes); they print their figures.
soak: install
	GLADLY_SOAK=1 GLADLY_CHAOS_REQUESTS=90 $(BIN)/python -m pytest -q -s -p no:cacheprovider \
		--timeout=1800 tests/erasure/test_erasure_chaos.py tests/erasure/test_engine_crash.py \
		tests/erasure/test_erasure_cli.py tests/gladly_archive/test_crash.py \
		tests/gladly_archive/test_migrate_crash.py tests/retention_policies/test_facts_refresh.py

# The whole job against a local sandbox Gladly: export, plan, approve, delete, purge, verify.
demo: install
	$(BIN)/gladly-pipeline demo --out demo-output

# A local Prefect server on $(PORT) whose UI finds its API there (PREFECT_UI_API_URL), whatever
# the port; in another shell: export PREFECT_API_URL=http://127.0.0.1:$(PORT)/api
PORT ?= 4200
server: install
	PREFECT_API_URL=http://127.0.0.1:$(PORT)/api PREFECT_UI_API_URL=http://127.0.0.1:$(PORT)/api \
		$(BIN)/prefect server start --host 127.0.0.1 --port $(PORT)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
