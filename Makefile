# `make run` and `make test` bootstrap .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PGPORT ?= 5432

.PHONY: run test lint postgres bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tansiq run

# Tests need PostgreSQL on 127.0.0.1 as well as SQLite: start the local cluster when it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p $(PGPORT) || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n 1) main start; \
	  for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p $(PGPORT) && break; sleep 1; done; \
	  pg_isready -h 127.0.0.1 -p $(PGPORT); }

lint: $(STAMP)
	$(BIN)/ruff check engine api workflows tests bench

test: $(STAMP) postgres lint
	$(BIN)/pytest

bench: $(STAMP) postgres
	$(BIN)/python bench/engine_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache
