# compose-tunnel: the user's daily interface. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help test venv
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(STAMP) ## create the virtual environment (done by the other targets on first use)

test: $(STAMP) ## run the test suite (engine tests skip without a Docker Engine)
	bash tests/system-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)
