# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo up migrate test lint typecheck unit integration faults bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[local,dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m devtools.devstack demo

up: $(STAMP)
	$(BIN)/python -m devtools.devstack up

# Bring the catalogue (DATABASE_URL, else the embedded SQLite file) to the newest schema revision.
migrate: $(STAMP)
	$(BIN)/python -m sora_temporal.schema upgrade

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite runs in parallel (pytest-xdist): most tests wait on timers, sockets and subprocesses, not
# the CPU, so TEST_WORKERS processes overlap their waits even on 2 cores. `--dist loadfile` keeps a
# file's tests on one worker, so module-scoped stacks (dev server, simulator, worker, api) start once.
# TEST_WORKERS=0 runs the suite serially in this process.
TEST_WORKERS ?= 4

test: lint typecheck
	$(BIN)/python -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile

faults: $(STAMP)
	$(BIN)/python -m pytest -q -m faults -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) data .mypy_cache .pytest_cache .ruff_cache
