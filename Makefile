# Two commands on a fresh machine: `make run` and `make test` (Python 3.11+ is all they need).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format migrate clean bench chaos system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The API on 127.0.0.1:8000, settlement on 127.0.0.1:9000 and the worker, until Ctrl-C.
run: $(STAMP)
	ENVIRONMENT=dev $(PY) -m app run

## The whole suite against real PostgreSQL and Redis that the tests start themselves.
test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

## Locust against the whole stack, sync and async, 500 and 50 users (about 9 minutes);
## prints the table and writes bench/results/<timestamp>.json; fails unless the audit is clean.
bench: $(STAMP)
	$(PY) -m bench.run

## Faults under load (kills, a frozen settlement, PostgreSQL and Redis restarts, hostile
## requests), sync then async, 90 s each (under 10 minutes); fails if anything is lost or
## contradicted; writes bench/results/chaos-<timestamp>.json. CHAOS_SEED=N shuffles the faults.
chaos: $(STAMP)
	ENVIRONMENT=dev $(PY) -m bench.chaos

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy app workers

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Debian's pgbouncer and docker-compose for the deploy tests (apt-get as root, when missing).
system-deps:
	@bash .ci/system-deps

migrate: $(STAMP)
	$(PY) -m app migrate

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
