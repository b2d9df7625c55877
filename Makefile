# Every target does its own set-up (uv, the locked environment, local services).
SHELL := /bin/bash
UV := PATH="$$HOME/.local/bin:$$PATH" uv

.PHONY: setup demo test slow bench fuzz lint unit integration e2e sandbox run clean screenshots

setup:
	@scripts/bootstrap.sh

demo: setup
	@scripts/ensure-services.sh
	$(UV) run merch-pipeline demo

test: setup lint
	@scripts/ensure-services.sh
	@scripts/ensure-browser.sh
	$(UV) run pytest -m "not slow" --durations=15

# Tests of 20 s or more each on the CI machine (crash, ledger outage, quota e2e, fuzz,
# schemathesis, benchmark smoke); CI runs them after `make test`.
slow: setup
	@scripts/ensure-services.sh
	$(UV) run pytest -m slow

# Benchmarks print their figures against a baseline measured in the same run (docs/benchmarks.md).
bench: setup
	@scripts/ensure-services.sh
	$(UV) run python -m bench.quota
	$(UV) run python -m bench.overhead --runs 3
	$(UV) run python -m bench.backlog

# The every-door property suite at 50,000 examples a ledger backend (the default suite: 1,000).
fuzz: setup
	@scripts/ensure-services.sh
	MERCH_FUZZ_EXAMPLES=50000 $(UV) run pytest -q -s --timeout 3600 tests/integration/test_door_properties.py

lint: setup
	$(UV) run ruff check .
	$(UV) run mypy

unit: setup
	$(UV) run pytest tests/unit

integration: setup
	@scripts/ensure-services.sh
	$(UV) run pytest tests/integration

e2e: setup
	@scripts/ensure-services.sh
	$(UV) run pytest tests/e2e

sandbox: setup
	$(UV) run merch-pipeline sandbox

run: setup
	$(UV) run merch-pipeline run

# The console's pages as PNGs in docs/images/ (docs/operations.md), made by the browser test's
# journey in the same headless Chromium the tests use.
screenshots: setup
	@scripts/ensure-services.sh
	@scripts/ensure-browser.sh
	CONSOLE_SCREENSHOTS=docs/images $(UV) run pytest -q tests/browser

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
