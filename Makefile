# The two commands the README promises: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
PORT ?= 5000

.PHONY: test test-min demo servers lint typecheck pytest bench mutation clean

test: $(STAMP) servers lint typecheck pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

# redis-server and memcached, which the server tests start on free loopback ports.
servers:
	bash scripts/install-servers.sh

# The demo needs Flask-Stash and Flask only: no test or benchmark tools.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	PORT=$(PORT) $(BIN)/python examples/demo_app.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/ruff format --check src tests benchmarks examples scripts

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# The suite against the lowest supported Flask, Werkzeug, redis-py and pymemcache
# (scripts/constraints-min.txt), in a virtualenv of its own. On $(PYTHON): Flask-Caching 2.5,
# which the drop-in tests compare against, needs Python 3.11 (docs/testing.md).
MIN_VENV := .venv-min
MIN_BIN := $(MIN_VENV)/bin
MIN_STAMP := $(MIN_VENV)/.installed
MIN_CONSTRAINTS := scripts/constraints-min.txt
PYTHON_MIN ?= $(PYTHON)

$(MIN_BIN)/python:
	$(PYTHON_MIN) -m venv $(MIN_VENV)
	$(MIN_BIN)/python -m pip install --quiet --upgrade pip

$(MIN_STAMP): pyproject.toml $(MIN_CONSTRAINTS) | $(MIN_BIN)/python
	$(MIN_BIN)/python -m pip install --quiet -c $(MIN_CONSTRAINTS) -e '.[test,bench]'
	touch $(MIN_STAMP)

test-min: $(MIN_STAMP) servers
	@$(MIN_BIN)/python -c 'import sys; print("Python", sys.version.split()[0])'
	@$(MIN_BIN)/python -m pip freeze --exclude-editable | grep -iE '^(flask|werkzeug|redis|pymemcache)=='
	$(MIN_BIN)/pytest -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_flask.py
	$(BIN)/python benchmarks/bench_servers.py
	$(BIN)/python benchmarks/bench_stampede.py
	$(BIN)/python benchmarks/bench_outage.py

# Mutation score per module against its own fast tests (docs/testing.md); fails below 90 %
# on the enforced modules.
mutation: $(STAMP)
	$(BIN)/python scripts/mutation.py

clean:
	rm -rf $(VENV) $(MIN_VENV) build dist .pytest_cache .mypy_cache .ruff_cache .mutation
