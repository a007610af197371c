# The two quickstart commands: `make run` (the chapter's experiment) and `make test`.
# Both set up the virtual environment first when it is missing or out of date.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch: on this project's machines pip finds 2.13.0+cpu on local disk.
# Elsewhere, CPU only: make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
# With a GPU:          make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin
# Compiled modules (and pytest's rewritten test modules) are kept in __pycache__ (ignored by git) even where
# the shell sets PYTHONDONTWRITEBYTECODE: a second test run then collects in 1.5 s per process instead of 2.8 s.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup run test test-fast lint clean-runs

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# The chapter's experiment: train configs/seed.yaml, then test it and print the metrics.
run: setup
	$(BIN)/trainlab fit -c configs/seed.yaml

# One test process per core (pytest-xdist): most tests are CPU-bound fits that use one torch thread.
test: setup
	$(BIN)/pytest -q -n auto --dist worksteal

test-fast: setup
	$(BIN)/pytest -q -n auto --dist worksteal -m "not slow"

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean-runs:
	find lightning_logs -mindepth 1 ! -name README.md -exec rm -rf {} +
