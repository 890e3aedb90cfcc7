# Every target does its own set-up, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format demo clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m ruff check src tests benchmarks scripts
	$(BIN)/python -m ruff format --check src tests benchmarks scripts
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/python -m ruff check src tests benchmarks scripts
	$(BIN)/python -m ruff format --check src tests benchmarks scripts

format: install
	$(BIN)/python -m ruff format src tests benchmarks scripts
	$(BIN)/python -m ruff check --fix src tests benchmarks scripts

demo: install
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache
