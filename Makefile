# The two commands of the quick start: `make serve` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve test lint format-check typecheck doctest unit bench demo-data clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo-data: $(STAMP)
	$(BIN)/python -m server.demo --if-empty

# The demo's admin token (publishing); set your own for anything but the demo.
PRICER_ADMIN_TOKEN ?= pricer-demo-token
export PRICER_ADMIN_TOKEN

serve: demo-data
	@echo "admin token (demo): $(PRICER_ADMIN_TOKEN)"
	$(BIN)/pricer serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check dsl engine server tests bench

format-check: $(STAMP)
	$(BIN)/ruff format --check dsl engine server tests bench

typecheck: $(STAMP)
	$(BIN)/mypy dsl engine server

# the examples in the docstrings of dsl/ and engine/ are run as tests
doctest: $(STAMP)
	$(BIN)/pytest --doctest-modules dsl engine

unit: $(STAMP)
	$(BIN)/pytest

test: lint format-check typecheck doctest unit

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
