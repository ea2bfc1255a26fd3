# Every target bootstraps what it needs: on a fresh Debian machine with Python 3.11,
# `make demo` and `make test` are the only commands a newcomer has to type.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean mosquitto test-tools

setup: $(STAMP) mosquitto

# Re-install only when the project's metadata changes; idempotent otherwise.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "setup: $(PYTHON) not found (Python 3.11+ is required)" >&2; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Debian packages a target needs, installed only when missing (you may be root or have
# sudo). Mosquitto: tests start their own broker on a free loopback port and the demo a
# throwaway one; the system service is disabled so nothing listens on the interfaces.
# tmux and Chromium: the tests that drive `samu demo` in a real terminal and the nurse
# station in a real browser (`make test` only; `make demo` needs neither).
APT_INSTALL = SUDO=""; if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq

mosquitto:
	@if ! command -v mosquitto >/dev/null 2>&1 && ! test -x /usr/sbin/mosquitto; then \
		echo "setup: installing mosquitto from Debian's packages"; \
		$(APT_INSTALL) mosquitto >/dev/null; \
		SUDO=""; if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
		$$SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true; \
	fi

test-tools:
	@missing=""; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "setup: installing$$missing from Debian's packages (terminal and browser tests)"; \
		$(APT_INSTALL) $$missing >/dev/null; \
	fi

demo: setup
	$(BIN)/samu demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy console firmware_sim protocols scenarios hardware transport
	$(BIN)/lint-imports

test: setup test-tools lint
	$(BIN)/python -m pytest -q

# The edit-test loop: everything except the few tests marked slow (CI runs them all).
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/samu bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
