# The two commands of the README: `make demo` and `make test`. Everything installs from the
# lock file into .venv, so a fresh machine resolves the same versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test services browser lint

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install -q -p $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q -p $(BIN)/python --no-deps -e .
	touch $@

services:
	bash scripts/services.sh

browser:
	bash scripts/browser.sh

PORT ?= 8000

demo: install
	$(BIN)/popsync demo --port $(PORT)

test: install services browser
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
