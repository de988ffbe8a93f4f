# TelcoPulse: `make up` for a live local dashboard, `make test` for the whole suite.
# Both bootstrap everything on first use: a .venv with the project, and kinesalite via npm.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: up test test-fast lint bench install node check-python check-java clean

install: $(STAMP) node

$(STAMP): pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
	  { echo "TelcoPulse needs Python 3.11 or newer as '$(PYTHON)': install it, or run make PYTHON=python3.11"; exit 1; }

node:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  if [ ! -f $(NODE_STAMP) ] || [ package.json -nt $(NODE_STAMP) ]; then \
	    npm install --no-audit --no-fund --loglevel=error && touch $(NODE_STAMP); fi; \
	else \
	  echo "warning: Node.js not found, so the local Kinesis falls back to moto's in-memory server (install Node.js 18+ to get kinesalite, which persists data)"; \
	fi

check-java:
	@command -v java >/dev/null 2>&1 || \
	  { echo "TelcoPulse's stream job needs Java 17 or newer: install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"; exit 1; }

up: install check-java
	$(BIN)/telcopulse up

test: install check-java
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) node_modules .telcopulse .pytest_cache .ruff_cache
