# Every target does its own set-up, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
E2E_STAMP := $(VENV)/.installed-e2e
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: install test test-e2e screenshots lint format demo clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m ruff check src tests benchmarks e2e
	$(BIN)/python -m ruff format --check src tests benchmarks e2e
	$(BIN)/python -m pytest -q

# The browser test: Debian's chromium driven by Playwright against `repaint serve`.
test-e2e: $(E2E_STAMP)
	$(BIN)/python -m pytest -q e2e

screenshots: $(E2E_STAMP)
	REPAINT_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q e2e

$(E2E_STAMP): $(STAMP)
	command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,e2e]'
	touch $(E2E_STAMP)

lint: install
	$(BIN)/python -m ruff check src tests benchmarks e2e
	$(BIN)/python -m ruff format --check src tests benchmarks e2e

format: install
	$(BIN)/python -m ruff format src tests benchmarks e2e
	$(BIN)/python -m ruff check --fix src tests benchmarks e2e

# The demo needs the core package only (its digits ship inside it): not the test tools.
demo: $(DEMO_STAMP)
	$(BIN)/repaint demo --out demo_output

$(DEMO_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $(DEMO_STAMP)

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache
