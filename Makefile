# codewatch: every command sets up what it needs from scratch (.venv for Python, node_modules for the CDK CLI).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: setup test lint demo synth deploy bench stress clean

setup: $(VENV_STAMP) $(NODE_STAMP)

$(VENV_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup lint
	$(VENV)/bin/pytest -n 2

# The main job on the embedded default: synthesize, then run the pipeline on moto server and print the findings.
demo: synth
	$(VENV)/bin/codewatch demo --template cdk.out/Codewatch.template.json

# Synthesizes offline (no credentials, no Docker); cdk-nag runs as a validation plugin and any
# unacknowledged finding fails here with CDK's report. On success: where the templates went and
# every acknowledged finding with its reason.
synth: setup
	npx cdk synth --quiet --no-notices
	$(PY) -m stacks.nag_summary cdk.out

# Deploys every stack of the app (the detection stack, plus forwarders/StackSet in organization
# mode) with the profile's credentials; IAM changes are shown for approval.
deploy: setup
	npx cdk deploy --all --no-notices --require-approval broadening

# hunt against jq and zcat on a generated corpus, then the pipeline's AWS requests, cost and cold start.
bench: setup
	$(PY) scripts/bench.py
	$(PY) scripts/bench_pipeline.py

# The full-size stress runs the default suite keeps small (tests marked slow): 5,000 events under faults, etc.
stress: setup
	$(VENV)/bin/pytest -n 2 -m slow

clean:
	rm -rf $(VENV) node_modules cdk.out .bench
