# Two commands on a fresh machine: `make run` (the product, with demo data) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
HTMX_VERSION := 2.0.11
HTMX := .cache/vendor/htmx-$(HTMX_VERSION).stamp
AXE_VERSION := 4.10.2
AXE := .cache/vendor/axe-core-$(AXE_VERSION).stamp

.PHONY: run test bench install vendor migrate clean

$(INSTALLED): pyproject.toml sdk/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]" -e "./sdk[openai]"
	touch $(INSTALLED)

install: $(INSTALLED)

# htmx for the browser tests, which have no internet (pages load it from the CDN with SRI).
$(HTMX):
	mkdir -p .cache/vendor
	cd .cache/vendor && npm pack --silent htmx.org@$(HTMX_VERSION) >/dev/null \
		&& tar -xzf htmx.org-$(HTMX_VERSION).tgz --strip-components=2 package/dist/htmx.min.js \
		&& rm htmx.org-$(HTMX_VERSION).tgz && touch htmx-$(HTMX_VERSION).stamp

# axe-core for the accessibility checks of the browser tests (tests/web/test_workbench_browser.py).
$(AXE):
	mkdir -p .cache/vendor
	cd .cache/vendor && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null \
		&& tar -xzf axe-core-$(AXE_VERSION).tgz --strip-components=1 package/axe.min.js \
		&& rm axe-core-$(AXE_VERSION).tgz && touch axe-core-$(AXE_VERSION).stamp

vendor: $(HTMX) $(AXE)

run: $(INSTALLED)
	$(VENV)/bin/causeline serve

migrate: $(INSTALLED)
	$(VENV)/bin/causeline migrate

test: $(INSTALLED) $(HTMX) $(AXE)
	$(PY) -m pytest

bench: $(INSTALLED)
	$(PY) bench/ingest.py
	$(PY) bench/sdk_overhead.py

clean:
	rm -rf $(VENV) .cache .pytest_cache
