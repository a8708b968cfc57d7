# The commands the README names. `make tutorial` and `make test` each install
# everything they need first (system packages, the Python environment, the server).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD := build
BIN := .mrh/bin
export PATH := $(PATH):/usr/local/go/bin
include setup/versions.env

.PHONY: help install system python server tools cluster-up cluster-down cluster-forward cluster-status tutorial test test-unit test-integration test-notebooks lab up down status lint bench report cleanup notebook-outputs clean

help:
	@echo "make tutorial  - install, then run notebooks 00-07 headless on the local backend"
	@echo "make test      - install, then run every test tier (unit, integration, notebooks)"
	@echo "make lab       - open the notebooks in JupyterLab"
	@echo "make up|down|status - the local stack (MariaDB + Model Registry server)"
	@echo "make report    - the executed notebooks as a static HTML site (build/report/)"
	@echo "make cleanup   - archive the tutorial's models and stop the local stack"
	@echo "make bench     - benchmarks, side by side; writes benchmarks/results/"
	@echo "make cluster-up|cluster-down|cluster-forward|cluster-status - the kind cluster (needs Docker)"

install: system python server tools

system:
	@PYTHON=$(PYTHON) bash setup/install-system.sh

python: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the Python environment into $(VENV) (kfp, model-registry, jupyterlab, papermill, nbval) ..."
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[tutorial,dev]'
	@$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mrhelpers)" >/dev/null
	@touch $@

server: python
	@$(PY) -m mrhelpers install-server

# actionlint checks the hosted-CI workflow; built once from the Go module proxy.
tools: $(BIN)/actionlint

$(BIN)/actionlint: setup/versions.env
	@mkdir -p $(BIN)
	@echo "Building actionlint $(ACTIONLINT_VERSION) with go install ..."
	@GOBIN=$(abspath $(BIN)) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

# The cluster backend (Docker, kind, kubectl and kustomize on this machine; see README).
cluster-up: python
	@bash setup/cluster.sh up
	@bash setup/cluster.sh port-forward start

cluster-down:
	@bash setup/cluster.sh down

cluster-forward:
	@bash setup/cluster.sh port-forward start

cluster-status:
	@bash setup/cluster.sh port-forward status

tutorial: install
	@$(PY) -m mrhelpers run-notebooks --output $(BUILD)/notebooks

test: install
	@$(PY) -m pytest

test-unit: install
	@$(PY) -m pytest -m unit

test-integration: install
	@$(PY) -m pytest -m integration

test-notebooks: install
	@$(PY) -m pytest -m notebooks

# Loopback only; --allow-root only when run as root (Jupyter refuses root without it).
LAB_FLAGS = --ip=127.0.0.1 --no-browser $(if $(filter 0,$(shell id -u)),--allow-root)
lab: install
	@$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/

up: install
	@$(PY) -m mrhelpers up

down:
	@$(PY) -m mrhelpers down

status:
	@$(PY) -m mrhelpers status

lint: python
	@$(VENV)/bin/ruff check mrhelpers tests benchmarks
	@$(VENV)/bin/nbqa ruff notebooks

report: python
	@$(PY) -m mrhelpers report --input $(BUILD)/notebooks --output $(BUILD)/report

notebook-outputs: install
	@$(PY) -m tests.refresh_notebook_outputs

cleanup: python
	@$(PY) -m mrhelpers cleanup

bench: install
	@$(PY) -m benchmarks.run

clean:
	rm -rf $(BUILD)
