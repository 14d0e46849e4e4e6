# btc-forecast: one virtual environment in .venv, pinned by constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: install test up lint format bench chromium images kind-up kind-down clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, from the CPU build; any later resolution is held to it by constraints.txt
	$(PIP) install torch==2.13.0
	$(PIP) install -c constraints.txt -e '.[dev]'
	touch $@

install: $(STAMP)

# Headless Chromium for the dashboard test (Debian's package); skipped when already present.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: the dashboard browser test will be skipped"; fi; }

test: install chromium
	$(VENV)/bin/pytest

up: install
	$(VENV)/bin/btcf up

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) bench/foundation.py

clean:
	rm -rf .state

images:
	scripts/images.sh

kind-up:
	scripts/kind-up.sh

kind-down:
	scripts/kind-down.sh
