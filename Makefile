# The two commands the README promises: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
PORT ?= 5000

.PHONY: test demo servers lint typecheck pytest bench mutation clean

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

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_flask.py
	$(BIN)/python benchmarks/bench_servers.py
	$(BIN)/python benchmarks/bench_stampede.py

# Mutation score per module against its own fast tests (docs/testing.md); fails below 90 %
# on the enforced modules.
mutation: $(STAMP)
	$(BIN)/python scripts/mutation.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .mutation
