# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# dg looks for the project's venv; run against it without activating it.
DG := VIRTUAL_ENV=$(abspath $(VENV)) $(abspath $(BIN))/dg
DEV_HOME ?= $(CURDIR)/.optimizely_local/dagster_home

.PHONY: demo test checks dev lint bench browser

$(VENV)/.installed: pyproject.toml
	@echo "installing the project and its dev tools into $(VENV) (a few minutes the first time)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# setuptools' editable-install banner is advice for package authors, not for users installing.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e ".[dev]"
	@# Tests only: GrowthBook's engine, the reference the statistics must agree with. Its pins
	@# (pandas < 2, numpy < 2) are stale upper bounds, so it comes without its dependencies.
	$(BIN)/python -m pip install --quiet --no-deps "gbstats==0.8.0"
	touch $@

demo: $(VENV)/.installed  ## generate 3 days, materialize every asset on the embedded default, print rows + checks
	$(BIN)/optimizely-assets demo

test: $(VENV)/.installed browser  ## definitions check, then the whole test suite (CI runs exactly this)
	$(DG) check defs
	$(BIN)/python -m pytest -q

# The UI test needs a Chromium; Debian's, since test tools may not download their own.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

checks: $(VENV)/.installed  ## the data-quality checks alone: their tests, then the CLI over the demo days
	$(BIN)/python -m pytest -q -m checks
	$(BIN)/optimizely-assets demo >/dev/null && $(BIN)/optimizely-assets checks --days 3

# The UI on 127.0.0.1:3000. It runs from $(DEV_HOME), whose dagster.yaml links to the repo's, so
# the instance configuration is the one in use (and no other dagster.yaml sits in its folder).
dev: $(VENV)/.installed  ## the Dagster UI on 127.0.0.1:3000 over the embedded default
	$(BIN)/optimizely-assets generate
	mkdir -p "$(DEV_HOME)/.nux" && ln -sf "$(CURDIR)/dagster.yaml" "$(DEV_HOME)/dagster.yaml"
	echo "seen: 1" > "$(DEV_HOME)/.nux/nux.yaml"  # no first-visit community modal
	cd "$(DEV_HOME)" && DAGSTER_HOME="$(DEV_HOME)" OPTIMIZELY_LOCAL_DIR="$${OPTIMIZELY_LOCAL_DIR:-$(CURDIR)/.optimizely_local}" \
	  $(DG) dev -w "$(CURDIR)/workspace.yaml" -h 127.0.0.1 -p 3000

lint: $(VENV)/.installed
	$(BIN)/ruff check optimizely_assets optimizely_assets_tests bench

bench: $(VENV)/.installed  ## every benchmark beside its baseline (installs dlt, the peer, first)
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m bench.run
