# The two set-up commands of the README. Each creates or updates .venv itself.
#   make demo   the StaMo loop on the simulated SO-101: record, train stamo, label, probe, train and
#               evaluate stamo_vla (offline, CPU)
#   make paper  the paper's experiments on the simulated SO-101, writes docs/results/ (ARGS=--quick: a smoke check in outputs/paper_quick/)
#   make test   the whole offline test suite (what CI runs)

PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN_ENV := HF_HUB_OFFLINE=1 MUJOCO_GL=egl WANDB_MODE=disabled
# the tests run in parallel workers (pytest-xdist): one per core, at most TEST_WORKERS (2 workers: 6.9 GB peak);
# the longest tests start first and an idle worker takes tests queued for a busy one (--dist worksteal)
TEST_WORKERS ?= 4

.PHONY: install demo paper test lint bench

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), f"Python >= 3.12 is required (LeRobot 0.6), found {sys.version.split()[0]} at {sys.executable}. Set PYTHON=/path/to/python3.12."'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test,dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(RUN_ENV) $(BIN)/lerobot-stamo-demo $(ARGS)

paper: install
	$(RUN_ENV) $(BIN)/lerobot-stamo-paper $(ARGS)

test: install
	$(RUN_ENV) $(BIN)/python -m pytest -q -n auto --maxprocesses=$(TEST_WORKERS) --dist worksteal $(ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(RUN_ENV) $(BIN)/python benchmarks/bench_env.py
