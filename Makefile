# Everything a fresh machine needs goes through here: the first target that runs sets up $(VENV), once.
# make test PYTHON=/path/to/python3.13 uses another interpreter (3.10 to 3.13): the venv follows it, made again
# when its Python is not the one asked for.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EVENT ?= events/timer.json
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)
ifeq ($(PYTHON_VERSION),)
$(error PYTHON=$(PYTHON) does not run; give a Python 3.10 to 3.13, e.g. make test PYTHON=python3.12)
endif
ifeq ($(filter 3.10.% 3.11.% 3.12.% 3.13.%,$(PYTHON_VERSION)),)
$(error PYTHON=$(PYTHON) is Python $(PYTHON_VERSION); the project supports 3.10 to 3.13)
endif
ifneq ($(PYTHON_VERSION),$(shell cat $(VENV)/.python-version 2>/dev/null))
$(shell rm -rf $(VENV))
endif

.PHONY: run history test lint package deploy-plan bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@echo "Setting up $(VENV) with Python $(PYTHON_VERSION): once, about a minute, from the package registry."
	@$(PYTHON) -m venv $(VENV)
	@echo $(PYTHON_VERSION) > $(VENV)/.python-version
	@$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt 2> >(grep -v "^WARNING: Location" >&2) \
		| sed -un 's/^Collecting \([^ =<>]*\).*/  fetching \1/p; s/^Successfully installed.*/  installed./p'
	@echo "  caching the function's Linux wheels, so that tests and package builds work offline"
	@$(BIN)/python scripts/package --fetch-only | sed 's/^/  /'
	@touch $@

run: $(BIN)/.installed  ## run the function on $(EVENT) against the local emulator (NIGHTS=N: N nights, with a history)
	@$(BIN)/python scripts/invoke $(EVENT)$(if $(NIGHTS), --nights $(NIGHTS))

history: $(BIN)/.installed  ## the local run history's trend (make run NIGHTS=7 first); PLOT=FILE.png draws it
	@$(BIN)/python scripts/history$(if $(PLOT), --plot $(PLOT)) $(HISTORY_ARGS)

test: lint  ## lint, then the whole test suite (offline once set up)
	$(BIN)/python -m pytest

lint: $(BIN)/.installed  ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

package: $(BIN)/.installed  ## build dist/sysprep-guard.zip
	$(BIN)/python scripts/package

deploy-plan: package  ## show what scripts/deploy would change (needs credentials and parameters)
	$(BIN)/python scripts/deploy --plan

# The benchmark has its own environment: the official SDK clients it compares with never enter .venv.
.venv-bench/.installed: requirements.txt requirements-dev.txt benchmarks/requirements.txt
	@echo "Setting up .venv-bench: once, from the package registry."
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	touch $@

bench: .venv-bench/.installed  ## sweeps of 1,000 / 10,000 / 100,000 desktops, the history's cost, a 20-target estate (about 10 minutes)
	.venv-bench/bin/python benchmarks/sweep.py --out benchmarks/RESULTS.md
	.venv-bench/bin/python benchmarks/history.py --append benchmarks/RESULTS.md
	.venv-bench/bin/python benchmarks/estate.py --append benchmarks/RESULTS.md

clean:  ## remove the venvs, the wheel cache and what builds and tests leave
	rm -rf $(VENV) .venv-bench .cache .devkit dist .pytest_cache .ruff_cache .hypothesis
