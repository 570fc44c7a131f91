# The two commands of the README: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest local clean chromium terraform-checks

# uv installs what pip would, about six times faster (a fresh clone: 16 s instead of 100 s);
# where uv cannot be had or fails, pip does the same install.
define venv_install
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet uv 2>/dev/null || true
	if [ -x $(1)/bin/uv ]; then \
	  $(1)/bin/uv pip install --quiet --python $(1)/bin/python $(2) || \
	  $(1)/bin/python -m pip install --quiet $(2); \
	else \
	  $(1)/bin/python -m pip install --quiet $(2); \
	fi
endef

$(STAMP): pyproject.toml
	$(call venv_install,$(VENV),-e '.[dev]')
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

# pytest-xdist: one worker per core and one more (the Terraform module mostly waits on the
# provider), each test file on one worker, so a module's fixture (the local stack, a
# Terraform apply) is built once.
WORKERS := $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')

pytest: $(STAMP) chromium
	$(BIN)/pytest -q -n $(WORKERS) --dist loadfile --no-loadscope-reorder

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

# checkov has its own venv: it pins libraries that would fight with moto in .venv.
# BC_SKIP_MAPPING and --skip-download keep it offline. terraform fmt runs where terraform is
# installed (providers are never downloaded, so no init/validate here).
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# A variable: a comma written in $(call ...) would split its arguments.
CHECKOV_REQUIREMENT := 'checkov>=3.2,<4'

$(CHECKOV_STAMP):
	$(call venv_install,$(CHECKOV_VENV),$(CHECKOV_REQUIREMENT))
	touch $(CHECKOV_STAMP)

terraform-checks: $(CHECKOV_STAMP)
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --directory terraform --framework terraform \
	  --quiet --compact --skip-download
	@if command -v terraform >/dev/null 2>&1; then \
	  terraform fmt -check -recursive terraform/ && echo "terraform fmt: terraform/ is formatted"; \
	else \
	  echo "terraform fmt: terraform not installed, skipped"; \
	fi

# The checks side by side: the two venvs install at once, then lint, types, checkov and
# pytest run together; each prints its output whole when it ends (--output-sync), and
# `make test` fails if any of them does.
test:
	$(MAKE) --no-print-directory -j4 --output-sync=target lint typecheck terraform-checks pytest

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
