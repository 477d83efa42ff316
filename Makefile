# Quick start: `make run` serves the platform, `make test` runs the whole suite.
# Both prepare everything themselves: a virtualenv in .venv, and private PostgreSQL and
# Redis under .run/ (unless DATABASE_URL / REDIS_URL are set).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test venv chromium services-down lint bench messages clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12+ is needed; found " + sys.version.split()[0])'
	@test -x $(PY) || { echo "[make] creating virtualenv in $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "[make] installing dependencies"
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# Headless Chromium for the browser tests, from Debian (Playwright cannot download browsers here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "[make] installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi; \
	  ( $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	    { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } ) \
	  || echo "[make] could not install chromium: browser tests will be skipped"; }

run: venv
	@$(PY) -m portal.dev.devstack run

test: venv chromium
	@$(VENV)/bin/lint-imports
	@$(PY) -m portal.dev.devstack exec -- $(PY) -m pytest $(PYTEST_ARGS)

services-down:
	@$(PY) -m portal.dev.devstack down

# ruff, and the layer contracts of pyproject.toml's [tool.importlinter].
lint: venv
	@$(PY) -m ruff check .
	@$(VENV)/bin/lint-imports

# Re-extract the Chinese catalogue from the sources, then compile it (fill new msgstr first).
messages: venv
	@$(PY) manage.py makemessages -l zh_Hans --no-obsolete --ignore '.venv/*' --ignore '.run/*'
	@$(PY) manage.py compilemessages -l zh_Hans --ignore '.venv/*' --ignore '.run/*'

bench: venv
	@$(PY) -m portal.dev.devstack exec -- $(PY) bench/provision.py --quick

clean: services-down
	rm -rf .run staticfiles
