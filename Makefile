# `make run` and `make test` bootstrap .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PGPORT ?= 5432

# Debian packages: Arabic fonts and HarfBuzz for WeasyPrint's PDFs, poppler to check them in tests.
# Chromium (Debian's, never a downloaded one) for the browser tests. nginx, prometheus and systemd for the
# production topology test (the proxy and units in deploy/, the real scraper); postgresql-client for backups (the server's major version).
SYSTEM_PACKAGES := fonts-noto-core libharfbuzz-subset0 libpango-1.0-0 libpangoft2-1.0-0 poppler-utils chromium \
                   nginx prometheus systemd postgresql-client-15

# requirements.lock pins every package (the product's, the dev extra's and theirs) with its hashes; the venv
# is installed from it alone, never from pyproject.toml's ranges. `make lock` refreshes it (README, "Developing").
LOCK       := requirements.lock
LOCK_TOOLS := var/lock-tools
PIP_TOOLS  := pip-tools==7.7.0
LOCK_ARGS  ?=

.PHONY: run test lint typecheck lock postgres system-packages bench clean

$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-resolve pyproject.toml into the lock, keeping every pin that still fits; `LOCK_ARGS=--upgrade` takes the
# newest releases, `LOCK_ARGS='--upgrade-package starlette'` one package. pip-tools runs in its own venv.
lock:
	test -x $(LOCK_TOOLS)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_TOOLS) && \
	  $(LOCK_TOOLS)/bin/python -m pip install --quiet '$(PIP_TOOLS)'; }
	CUSTOM_COMPILE_COMMAND='make lock' $(LOCK_TOOLS)/bin/pip-compile --quiet --extra dev --strip-extras \
	  --generate-hashes --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) -o $(LOCK) pyproject.toml

run: $(STAMP) system-packages
	$(BIN)/tansiq run

system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install these Debian packages: $$missing"; exit 1; fi; \
	fi

# Tests need PostgreSQL on 127.0.0.1 as well as SQLite: start the local cluster when it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p $(PGPORT) || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n 1) main start; \
	  for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p $(PGPORT) && break; sleep 1; done; \
	  pg_isready -h 127.0.0.1 -p $(PGPORT); }

lint: $(STAMP)
	$(BIN)/ruff check engine api workflows tests bench deploy
	$(BIN)/lint-imports
	$(BIN)/mypy engine api workflows

# The type checker alone (also part of `make lint`).
typecheck: $(STAMP)
	$(BIN)/mypy engine api workflows

test: $(STAMP) system-packages postgres lint
	$(BIN)/pytest

# Every benchmark (bench/suite.py: generator, pages, timers, reports, storage, HTTP); writes bench/RESULTS.md.
# Long (about an hour: 1,000,000 directives are generated in PostgreSQL); `BENCH_ARGS=--quick` for a smoke run.
bench: $(STAMP) postgres
	$(BIN)/python bench/suite.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
