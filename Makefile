# The two commands of the README: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest local clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/branchenv demo

local: $(STAMP)
	$(BIN)/branchenv local

lint: $(STAMP)
	$(BIN)/ruff check app.py chalicelib tests bench
	$(BIN)/ruff format --check app.py chalicelib tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) chromium
	$(BIN)/pytest -q

# Headless Chromium for tests/browser (Debian packages chromium and chromium-driver).
# Idempotent, quiet and never fatal: where it cannot be installed (no apt-get, not root and
# no password-less sudo, no package mirror) the browser tests are skipped and say why.
chromium:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  exit 0; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "chromium: apt-get not found; the browser tests will be skipped"; \
	else \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  if { $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq chromium chromium-driver; } >/dev/null 2>&1; then \
	    echo "chromium: installed chromium and chromium-driver"; \
	  else \
	    echo "chromium: could not apt-get install chromium chromium-driver (needs root or" \
	      "password-less sudo); the browser tests will be skipped"; \
	  fi; \
	fi

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
