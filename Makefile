# solo: make run | make test | make lint | make typecheck | make check
#
#   make run       the whole system with embedded services (no Redis or Postgres needed)
#   make services  make sure Redis and PostgreSQL are reachable for the tests
#   make test      the whole test suite: unit, integration and e2e tiers (needs the services above; make sets them up)
#   make test-fast the unit tier only (pytest -m unit): no services, well under a minute
#   make lint      ruff check + ruff format --check
#   make typecheck mypy over the solo package, strict on solo.objects (scripts/typecheck.py)
#   make check     lint + typecheck + test
#   make bench     every benchmark scenario (bench/all.py), results in bench/RESULTS.md (needs the services)
#   make chaos     ten minutes of load under kill -9, SIGSTOP and a Redis restart, then the checker;
#                  then a PostgreSQL restart and a 30 s outage under load, then three rounds of
#                  network partitions between three hosts (network namespaces, as root); the checker after each
#   make fuzz      the HTTP API fuzzed from its OpenAPI document, far longer than make test does (needs the services)
#   make soak      an hour of steady load with a ten-minute retention window; the database's size each minute, plotted

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.solo-installed
SOURCES := solo objects api workers cli examples tests bench alembic scripts
PYTEST_ARGS ?=
# Random examples per operation in `make fuzz`, over every example class's methods (make test's run has 10,
# over a few classes: tests/e2e/test_fuzz.py).
FUZZ_EXAMPLES ?= 300

.PHONY: venv run services test test-fast lint typecheck check bench chaos fuzz soak

# Internal: create .venv if missing; (re)install when pyproject.toml is newer than the stamp.
venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
		echo "creating $(VENV) with $(PYTHON)"; \
		$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
			|| { echo "solo needs Python >= 3.11; run: make PYTHON=python3.11 ..." >&2; exit 1; }; \
		$(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

run: venv
	$(BIN)/solo dev

services:
	bash scripts/services.sh

test: venv services
	$(BIN)/pytest $(PYTEST_ARGS)

# No `services`: unit tests run on fakeredis and SQLite.
test-fast: venv
	$(BIN)/pytest -m unit $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: venv
	$(BIN)/python scripts/typecheck.py

check: lint typecheck test

bench: venv services
	$(BIN)/python -m bench.all

chaos: venv services
	$(BIN)/python -m bench.chaos --seconds 600
	$(BIN)/python -m bench.postgres_outage --outage-s 30
	$(BIN)/python -m bench.partition --rounds 3

# The same seeded run as in make test, with more examples; no per-test time limit, -s for its summary.
fuzz: venv services
	SOLO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) SOLO_FUZZ_CLASSES=all $(BIN)/pytest tests/e2e/test_fuzz.py --timeout 0 -s $(PYTEST_ARGS)

# The console's screenshots in docs/console/, taken by its browser test.
console-screenshots: venv services
	SOLO_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(BIN)/pytest tests/examples/test_console_browser.py $(PYTEST_ARGS)

# Not in CI: the shared database must level off under load instead of growing with every commit.
soak: venv services
	$(BIN)/python -m pip install --quiet matplotlib  # the plot only
	$(BIN)/python -m bench.soak
