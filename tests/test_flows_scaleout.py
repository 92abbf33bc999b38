"""The scale-out path under `make test`: a `prefect server start` on PostgreSQL on loopback, a `process`
work pool, `prefect deploy --all` from prefect.yaml, a worker pointed at a Tansiq database on
PostgreSQL, and a run of the daily deployment whose report run and files are found. Every process
started is stopped and both databases dropped (see bench/reports_scaleout.py). About 25 s."""

from __future__ import annotations

import pytest

from bench.reports_scaleout import main

pytestmark = pytest.mark.slow


def test_a_worker_on_a_postgresql_prefect_server_produces_the_daily_report():
    result = main()
    run = result["report_run"]
    assert run["status"] == "succeeded" and run["kind"] == "daily" and run["prefect_flow_run_id"]
    assert {(f["format"], f["language"]) for f in run["files"]} >= {("pdf", "ar"), ("pdf", "en"), ("xlsx", "ar"),
                                                                     ("csv", "ar"), ("html", "en"), ("json", "")}
