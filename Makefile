# linkwatch developer targets. The README's two commands are `make up` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PACKAGES := schemas linkage surveillance streams dashboards deploy

.PHONY: help install install-test up stack down status test test-unit test-integration lint typecheck check bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

install: ## install system packages (apt), the virtualenv and linkwatch with its dev extras
	bash deploy/install.sh

install-test: ## install, plus what only the tests need (R surveillance, the detectors' reference)
	bash deploy/install.sh --test

up: install ## install, then run linkwatch end to end on the local stack (demo, until Ctrl-C)
	$(VENV)/bin/linkwatch stack up
	$(VENV)/bin/linkwatch demo

stack: install ## install, then only start the local stack (Kafka + embedded ClickHouse) and show it
	$(VENV)/bin/linkwatch stack up
	$(VENV)/bin/linkwatch stack status

down: ## stop the local stack
	$(VENV)/bin/linkwatch stack down

status: ## show the local stack's health
	$(VENV)/bin/linkwatch stack status

test: install-test ## install, then run the whole test suite against real Kafka and ClickHouse
	$(PY) -m pytest

test-unit: ## the tests that need no server
	$(PY) -m pytest -m unit

test-integration: ## the tests against the real Kafka broker and ClickHouse engines
	$(PY) -m pytest -m integration

lint: ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy cannot follow the package-dir mapping of an editable install, so it checks
# the packages through a tree of links that has the installed shape (linkwatch/<pkg>).
typecheck: ## mypy --strict on every package
	@mkdir -p build/typecheck/linkwatch
	@for p in $(PACKAGES); do ln -sfn ../../../$$p build/typecheck/linkwatch/$$p; done
	$(VENV)/bin/mypy -p linkwatch

check: lint typecheck test-unit ## what to run before every commit

bench: install ## run every benchmark in bench/ (prints figures and ratios; never fails on time)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,bench]'
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: ## remove build output (not data, not the stack)
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
