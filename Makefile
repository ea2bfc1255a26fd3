# Every target bootstraps what it needs: on a fresh Debian machine with Python 3.11,
# `make demo` and `make test` are the only commands a newcomer has to type.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean mosquitto

setup: $(STAMP) mosquitto

# Re-install only when the project's metadata changes; idempotent otherwise.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "setup: $(PYTHON) not found (Python 3.11+ is required)" >&2; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Mosquitto comes from Debian's packages when missing (tests start their own broker on a
# free loopback port; nothing listens on the machine's interfaces).
mosquitto:
	@if ! command -v mosquitto >/dev/null 2>&1 && ! test -x /usr/sbin/mosquitto; then \
		echo "setup: installing mosquitto from Debian's packages"; \
		SUDO=""; if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq mosquitto >/dev/null; \
		$$SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true; \
	fi

demo: setup
	$(BIN)/samu demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy console firmware_sim protocols scenarios hardware transport
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/python -m pytest -q

# The edit-test loop: everything except the few tests marked slow (CI runs them all).
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/samu bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
