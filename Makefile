# btc-forecast: one virtual environment in .venv, pinned by constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: install test test-fast up lint format bench chromium host-deps kube-bins images images-local kind-up kind-down clean

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

# Debian packages for the Kubernetes and container tests (Docker engine, debootstrap, socat, ...).
host-deps:
	scripts/host-deps.sh

# kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy, etcd and pause v1.20.2, built from
# Debian's source package into ~/.cache/btc-forecast (about 8 minutes once; seconds afterwards).
kube-bins: host-deps
	scripts/kube/build.sh

# The whole suite: real MLflow, S3, KServe, a real Kubernetes API server and kubelet node, real images.
test: install chromium host-deps kube-bins images-local
	$(VENV)/bin/pytest

# The fast part alone: no Kubernetes API server, no Docker engine, no kubelet node.
test-fast: install
	$(VENV)/bin/pytest -m "not kube and not containers and not node"

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

# The images, with your Docker engine (TAG, REGISTRY, PUSH, PYTHON_IMAGE, TORCH_*: see the script).
images:
	scripts/images.sh

# The images where no registry can be reached (here and in CI): a debootstrap base, torch from the
# local wheel, the project's own Docker engine (data root in ~/.cache/btc-forecast/docker).
images-local: install host-deps
	LOCAL_BUILD=1 scripts/images.sh

kind-up:
	scripts/kind-up.sh

kind-down:
	scripts/kind-down.sh
