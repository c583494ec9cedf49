# Everything a fresh machine needs goes through here: the first target that runs builds .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EVENT ?= events/timer.json

.PHONY: run test lint package deploy-plan bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(BIN)/.installed  ## run the function on $(EVENT) against the local emulator
	$(BIN)/python scripts/invoke $(EVENT)

test: lint  ## lint, then the whole test suite
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

package: $(BIN)/.installed  ## build dist/sysprep-guard.zip
	$(BIN)/python scripts/package

deploy-plan: package  ## show what scripts/deploy would change (needs credentials and parameters)
	$(BIN)/python scripts/deploy --plan

# The benchmark has its own environment: the official SDK clients it compares with never enter .venv.
.venv-bench/.installed: requirements.txt requirements-dev.txt benchmarks/requirements.txt
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	touch $@

bench: .venv-bench/.installed  ## sweeps of 1,000 / 10,000 / 100,000 desktops against the emulator (about 5 minutes)
	.venv-bench/bin/python benchmarks/sweep.py --out benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) .venv-bench dist .pytest_cache .ruff_cache
