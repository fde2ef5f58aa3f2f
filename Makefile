# Two commands on a fresh machine: `make run` (the product, with demo data) and `make test` (the suite).
# `make run` installs only what running needs; `make test` adds the test tools (the `test` extra).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_DEPS := $(VENV)/.run-installed
TEST_DEPS := $(VENV)/.test-installed
HTMX_VERSION := 2.0.11
HTMX := .cache/vendor/htmx-$(HTMX_VERSION).stamp
# The copy the server itself serves (web/render.py): pages need no CDN, as on an air-gapped network.
HTMX_STATIC := web/static/vendor/htmx-$(HTMX_VERSION).min.js
AXE_VERSION := 4.10.3
AXE := .cache/vendor/axe-$(AXE_VERSION).stamp

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec

.PHONY: run test bench install install-test vendor migrate clean

# One line per step and its duration; pip's own output goes to $(VENV)/pip.log, shown only when it fails.
# $(1): what is being installed, $(2): pip arguments.
define pip_step
	@echo "==> $(1)"; started=$$SECONDS; \
	if ! $(PY) -m pip install --disable-pip-version-check --progress-bar off $(2) >$(VENV)/pip.log 2>&1; then \
		tail -n 25 $(VENV)/pip.log; echo "pip failed (whole log: $(VENV)/pip.log)"; exit 1; \
	fi; \
	echo "    done in $$((SECONDS - started)) s"
endef

RUN_STEP := Installing the server and what it runs on (FastAPI, SQLAlchemy, PostgreSQL binaries...; a minute or two when cold)
TEST_STEP := Installing the test tools (pytest, hypothesis, playwright, the SDK's OpenAI extra)

$(PY):
	@echo "==> Creating the virtualenv $(VENV)"
	@$(PYTHON) -m venv $(VENV)

$(RUN_DEPS): pyproject.toml sdk/pyproject.toml | $(PY)
	$(call pip_step,$(RUN_STEP),-e .)
	$(call pip_step,Installing the SDK (the demo agent uses it),-e ./sdk)
	@touch $@

$(TEST_DEPS): $(RUN_DEPS)
	$(call pip_step,$(TEST_STEP),-e ".[test]" -e "./sdk[openai]")
	@touch $@

install: $(RUN_DEPS)

install-test: $(TEST_DEPS)

# htmx for the browser tests, which have no internet (pages load it from the CDN with SRI).
$(HTMX):
	@echo "==> Fetching htmx $(HTMX_VERSION) for the browser tests"
	@mkdir -p .cache/vendor
	@cd .cache/vendor && npm pack --silent htmx.org@$(HTMX_VERSION) >/dev/null \
		&& tar -xzf htmx.org-$(HTMX_VERSION).tgz --strip-components=2 package/dist/htmx.min.js \
		&& rm htmx.org-$(HTMX_VERSION).tgz && touch htmx-$(HTMX_VERSION).stamp

# htmx served by Causeline itself. Without npm the pages load it from the CDN (pinned by SRI) instead.
$(HTMX_STATIC):
	@if command -v npm >/dev/null; then \
		echo "==> Fetching htmx $(HTMX_VERSION) (served by Causeline itself: no CDN needed)"; \
		mkdir -p web/static/vendor && cd web/static/vendor && npm pack --silent htmx.org@$(HTMX_VERSION) >/dev/null \
		&& tar -xzf htmx.org-$(HTMX_VERSION).tgz --strip-components=2 package/dist/htmx.min.js \
		&& mv htmx.min.js htmx-$(HTMX_VERSION).min.js && rm htmx.org-$(HTMX_VERSION).tgz; \
	else echo "==> npm not found: pages will load htmx from the CDN (run 'make vendor' with npm to serve it locally)"; fi

# axe-core: the browser tests check the pages for serious accessibility violations.
$(AXE):
	mkdir -p .cache/vendor
	cd .cache/vendor && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null \
		&& tar -xzf axe-core-$(AXE_VERSION).tgz --strip-components=1 package/axe.min.js \
		&& rm axe-core-$(AXE_VERSION).tgz && touch axe-$(AXE_VERSION).stamp

vendor: $(HTMX) $(HTMX_STATIC) $(AXE)

run: $(RUN_DEPS) $(HTMX_STATIC)
	@$(VENV)/bin/causeline serve

migrate: $(RUN_DEPS)
	$(VENV)/bin/causeline migrate

# Two test processes (pytest-xdist), each with its own embedded PostgreSQL; a file's tests stay in one
# process (its module fixtures are built once). TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2

test: $(TEST_DEPS) $(HTMX) $(HTMX_STATIC) $(AXE)
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

bench: $(TEST_DEPS)
	$(PY) bench/ingest.py
	$(PY) bench/sdk_overhead.py

clean:
	rm -rf $(VENV) .cache .pytest_cache
