# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test checks dev lint bench browser

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed  ## generate 3 days, materialize every asset on the embedded default, print rows + checks
	$(BIN)/optimizely-assets demo

test: $(VENV)/.installed browser  ## the whole test suite (CI runs exactly this)
	$(BIN)/python -m pytest -q

# The UI test needs a Chromium; Debian's, since test tools may not download their own.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

checks: $(VENV)/.installed  ## the data-quality checks alone: their tests, then the CLI over the demo days
	$(BIN)/python -m pytest -q -m checks
	$(BIN)/optimizely-assets demo >/dev/null && $(BIN)/optimizely-assets checks --days 3

dev: $(VENV)/.installed  ## the Dagster UI on 127.0.0.1:3000 over the embedded default
	$(BIN)/optimizely-assets generate
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.optimizely_local/dagster_home} sh -c 'mkdir -p "$$DAGSTER_HOME" && cp -n dagster.yaml "$$DAGSTER_HOME/" ; $(BIN)/dagster dev -h 127.0.0.1 -p 3000'

lint: $(VENV)/.installed
	$(BIN)/ruff check optimizely_assets optimizely_assets_tests bench

bench: $(VENV)/.installed
	$(BIN)/python -m bench.run
