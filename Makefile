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

.PHONY: help install system python server tools kube constraints ui ui-build FORCE cluster-up cluster-down cluster-forward cluster-status tutorial test test-unit test-integration test-notebooks test-kube test-ui lab up down status doctor lint bench report cleanup notebook-outputs clean

help:
	@echo "make tutorial  - install, then run notebooks 00-07 headless on the local backend"
	@echo "make test      - install, then run every test tier (unit, integration, notebooks, kube, ui)"
	@echo "make lab       - open the notebooks in JupyterLab"
	@echo "make up|down|status - the local stack (MariaDB, Model Registry server, token proxy): setup/localstack.py"
	@echo "make doctor    - what is wrong with the backend MRH_BACKEND names, and the fix (setup/doctor.py)"
	@echo "make ui        - build the Model Registry UI once (minutes, ~1 GB), serve it on 127.0.0.1, print the URL"
	@echo "make report    - the executed notebooks as a static HTML site (build/report/)"
	@echo "make cleanup   - run notebook 99: archive the tutorial's models and stop the local stack"
	@echo "make bench     - benchmarks, side by side; writes benchmarks/results/"
	@echo "make cluster-up|cluster-down|cluster-forward|cluster-status - the kind cluster (needs Docker)"

# What the tutorial needs. `make test` adds the test-only tools (actionlint, the kube tier's control plane).
install: system python server

system:
	@PYTHON=$(PYTHON) bash setup/install-system.sh

python: $(VENV)/.installed

# pyproject.toml gives ranges; setup/constraints.txt pins the versions the tests ran with.
$(VENV)/.installed: pyproject.toml setup/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the Python environment into $(VENV) (kfp, model-registry, jupyterlab, papermill, nbval) ..."
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -c setup/constraints.txt -e '.[tutorial,dev]'
	@$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mrhelpers)" >/dev/null
	@touch $@

server: python
	@$(PY) setup/localstack.py install-server

# actionlint checks the hosted-CI workflow; built once from the Go module proxy.
tools: $(BIN)/actionlint kube

# The kube test tier's control plane: kube-apiserver, kube-controller-manager and kubectl, built from the
# Go module proxy through setup/kube/go.mod (checked against go.sum). Built only when one is missing or
# the pin changed (the stamp is named after it). etcd comes from Debian's etcd-server (setup/install-system.sh).
KUBE_BINS := $(BIN)/kube-apiserver $(BIN)/kube-controller-manager $(BIN)/kubectl
KUBE_STAMP := $(BIN)/.kube-$(KUBE_TEST_VERSION)
KUBE_VERSION_PKGS := k8s.io/component-base/version k8s.io/client-go/pkg/version
KUBE_MINOR := $(word 2,$(subst ., ,$(KUBE_TEST_VERSION)))
KUBE_LDFLAGS := $(foreach p,$(KUBE_VERSION_PKGS),-X $(p).gitVersion=$(KUBE_TEST_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=$(KUBE_MINOR))

kube: $(KUBE_STAMP)

$(KUBE_STAMP): setup/kube/go.mod setup/kube/go.sum $(if $(filter-out $(wildcard $(KUBE_BINS)),$(KUBE_BINS)),FORCE)
	@mkdir -p $(BIN)
	@echo "Building kube-apiserver, kube-controller-manager and kubectl $(KUBE_TEST_VERSION) with go install (a few minutes, once) ..."
	@cd setup/kube && GOBIN=$(abspath $(BIN)) go install -ldflags '$(KUBE_LDFLAGS)' tool
	@rm -f $(BIN)/.kube-*
	@touch $@

FORCE:

$(BIN)/actionlint: setup/versions.env
	@mkdir -p $(BIN)
	@echo "Building actionlint $(ACTIONLINT_VERSION) with go install ..."
	@GOBIN=$(abspath $(BIN)) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

# The cluster backend (Docker, kind, kubectl and kustomize on this machine; see docs/cluster.md).
cluster-up: python
	@bash setup/cluster.sh up
	@bash setup/cluster.sh port-forward start

cluster-down:
	@bash setup/cluster.sh down

cluster-forward:
	@bash setup/cluster.sh port-forward start

cluster-status:
	@bash setup/cluster.sh port-forward status

# The local stack checks the registry token (setup/token_proxy.py in front) unless MRH_AUTH=0 is set
# before the stack first starts.
tutorial lab up ui: export MRH_AUTH ?= 1

# The Model Registry UI: its frontend built with npm from the pinned server's own Go module, once per pin
# (setup/ui/build.sh; needs Node 20+), served with our adapter (setup/ui/server.py, docs/ui.md) against the
# local stack. Not part of `make tutorial`: the first build takes minutes and about 1 GB.
UI_STAMP := .mrh/ui/$(MODEL_REGISTRY_SERVER_VERSION)/.built

ui-build:
	@bash setup/ui/build.sh

ui: up ui-build
	@$(PY) setup/ui/server.py start

# Starts the UI first when it is built (notebook 05 then shows your model in it); never builds it.
tutorial: install
	@if [ -f $(UI_STAMP) ]; then $(PY) setup/ui/server.py start; fi
	@$(PY) setup/run_notebooks.py --output $(BUILD)/notebooks

test: install tools ui-build
	@$(PY) -m pytest

test-unit: install $(BIN)/actionlint
	@$(PY) -m pytest -m unit

test-integration: install
	@$(PY) -m pytest -m integration

test-notebooks: install
	@$(PY) -m pytest -m notebooks

test-kube: install tools
	@$(PY) -m pytest -m kube

test-ui: install ui-build
	@$(PY) -m pytest -m ui

# Loopback only; --allow-root only when run as root (Jupyter refuses root without it).
LAB_FLAGS = --ip=127.0.0.1 --no-browser $(if $(filter 0,$(shell id -u)),--allow-root)

lab: install
	@$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/

# MariaDB comes from `make system` (setup/install-system.sh); setup/localstack.py says so when it is missing.
up: python server
	@$(PY) setup/localstack.py up

down:
	@$(PY) setup/ui/server.py stop
	@$(PY) setup/localstack.py down

status:
	@$(PY) setup/localstack.py status

# What mh.doctor finds, then on the cluster backend the install's own checks (setup/cluster_doctor.py).
doctor: python
	@$(PY) setup/doctor.py

lint: python $(BIN)/actionlint
	@$(VENV)/bin/ruff check mrhelpers tests benchmarks setup
	@$(VENV)/bin/lint-imports --no-cache
	@$(VENV)/bin/nbqa ruff notebooks
	@$(VENV)/bin/shellcheck -x setup/*.sh setup/ui/*.sh .ci/run
	@$(BIN)/actionlint -shellcheck=$(abspath $(VENV)/bin/shellcheck) .github/workflows/*.yml

report: python
	@$(PY) setup/report.py --input $(BUILD)/notebooks --output $(BUILD)/report

notebook-outputs: install
	@$(PY) -m tests.refresh_notebook_outputs

cleanup: python
	@$(PY) setup/run_notebooks.py --only 99 --output $(BUILD)/cleanup/notebooks

# MLflow, the benchmark's peer, lives in a venv of its own (its dependencies are not the project's).
MLFLOW_VENV := .mrh/mlflow-venv

bench: install $(MLFLOW_VENV)/.installed
	@$(PY) -m benchmarks.run --mlflow-python $(MLFLOW_VENV)/bin/python

$(MLFLOW_VENV)/.installed: setup/versions.env
	@echo "Installing MLflow $(MLFLOW_BENCH_VERSION) into $(MLFLOW_VENV) (the benchmark's peer) ..."
	@test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	@$(MLFLOW_VENV)/bin/pip install -q 'mlflow==$(MLFLOW_BENCH_VERSION)' 'pymysql==$(PYMYSQL_BENCH_VERSION)'
	@touch $@

# After installing a new version into .venv by hand and running make test: record what the tests ran with.
constraints: python
	@{ sed -n '/^#/p' setup/constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -vi '^mrhelpers'; } > setup/constraints.tmp
	@mv setup/constraints.tmp setup/constraints.txt
	@echo "setup/constraints.txt: $$(grep -c '==' setup/constraints.txt) pins. Run make test before committing it."

clean:
	rm -rf $(BUILD)
