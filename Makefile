# The whole set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest bench bench-env services services-stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[examples]'
	touch $@

$(DEVSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

EXAMPLE := examples/churn

# The example pipeline, run for real: a second `make demo` is all cache hits.
demo: $(STAMP)
	$(BIN)/stepkit --project $(EXAMPLE) registry conflicts
	$(BIN)/stepkit --project $(EXAMPLE) catalog check
	$(BIN)/stepkit --project $(EXAMPLE) run $(EXAMPLE)/pipelines/churn.yaml \
		--config $(EXAMPLE)/pipelines/churn-config.yaml --report $(EXAMPLE)/report.html

lint: $(DEVSTAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(DEVSTAMP)
	$(BIN)/mypy

pytest: $(DEVSTAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# PostgreSQL and an S3-compatible server on 127.0.0.1, for the scale-out tests:
#   eval "$$(make -s services)" sets the variables the tests read.
services: $(DEVSTAMP)
	@scripts/services.sh start

services-stop:
	@scripts/services.sh stop

bench: $(STAMP)
	@for b in benchmarks/*_bench.py; do echo "== $$b"; $(BIN)/python $$b; done

# The peers benchmarks/artifacts_bench.py measures beside stepkit (DVC), in a venv of
# their own: never a dependency of stepkit, never in its environment.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet 'dvc>=3,<4'
	touch $@

bench-env: $(BENCH_VENV)/.installed

clean:
	rm -rf $(VENV) $(BENCH_VENV) .mypy_cache .pytest_cache .ruff_cache
