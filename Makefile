# memory_node: two commands do everything on a fresh Debian 12 / Python 3.11 machine.
#   make demo   set up (idempotent), then run the demo on the built-in simulator
#   make test   set up (idempotent), then lint, type-check and run every test
# Other targets: setup, bench, soak (long fault and fuzz runs, docs/reliability.md), config
# (regenerate config/*.yaml), clean.

SHELL := /bin/bash
ENV := source ./env.sh
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup demo test lint typecheck bench soak config clean

setup:
	@bash tools/setup.sh

demo: setup
	@$(ENV) && python -m memory_node.demo $(DEMO_ARGS)

lint: setup
	@$(ENV) && ruff check . && ruff format --check .

typecheck: setup
	@$(ENV) && mypy

test: setup
	@$(ENV) && ruff check . && ruff format --check . && echo "[test] ruff: clean"
	@$(ENV) && mypy && echo "[test] mypy: clean"
	@$(ENV) && python -m pytest $(PYTEST_ARGS)

bench: setup
	@$(ENV) && python -m bench.run_all

# 10,000 generated cases per interface in-process and over DDS, 100 kills during ~/save, autosave,
# full disk, signals, every lifecycle transition, 30 minutes of ingest + 4 clients (see
# docs/reliability.md). SOAK_ARGS is passed to tools/soak.py (e.g. SOAK_ARGS=--quick).
SOAK_ARGS ?=
soak: setup
	@$(ENV) && MEMORY_FUZZ_EXAMPLES=10000 python -m pytest test/robustness/test_robust_fuzz.py -q
	@$(ENV) && python tools/soak.py all $(SOAK_ARGS)

config: setup
	@$(ENV) && python -m memory_node.ros.param_files --write

clean:
	rm -rf build install log .stamps output
