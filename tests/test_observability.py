"""Observability (issue 19): /metrics (route-template histograms, database gauges, several processes),
/livez and /readyz, the request id in responses and log lines, and one JSON log format for Tansiq,
uvicorn and Prefect. The database gauges and readiness run on SQLite and PostgreSQL; the process tests
start real uvicorn and Prefect processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

import engine.people.users
from engine.delivery import notification_delivery as nd
from engine.foundation import clock
from engine.foundation.logs import prefect_logging_env, uvicorn_log_config
from engine.people.entities import create_entity
from engine.people.users import create_user
from engine.reports import runs
from engine.storage.db import Database
from engine.system import migrate
from engine.work.notifications import Delivery, queue
from tests.helpers import deploy, start
from tests.test_api_support import make_settings

ROOT = Path(__file__).parent.parent
T0 = datetime(2026, 6, 1, 8, tzinfo=UTC)
DEADLINE = T0 + timedelta(hours=3)  # deadline.bpmn: its reminder is due an hour before
NGINX_ID = "0123456789abcdef0123456789abcdef"


# --- shortcuts ---------------------------------------------------------------------------------------

def _client(db: Database, home: Path, **settings: Any) -> TestClient:
    from api.app import create_app

    app_settings = make_settings(home, db.url.render_as_string(hide_password=False), **settings)
    return TestClient(create_app(app_settings, database=db), raise_server_exceptions=False)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _request_count(samples: dict, route: str, method: str = "GET", status: str = "2xx") -> float:
    return samples.get(("tansiq_http_request_duration_seconds_count",
                        tuple(sorted({"method": method, "route": route, "status": status}.items()))), 0.0)


def _due_timer(db: Database) -> int:
    deploy(db, "deadline.bpmn")
    clock.set_now(T0)
    return start(db, "deadline", {"responsible_entity": "housing", "deadline": DEADLINE.isoformat()})


def _incident(db: Database) -> int:
    deploy(db, "incident-at-start.bpmn")
    return start(db, "incident_at_start", {"go_live": "2026-06-01T10:00:00Z"})


def _outbox(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two email deliveries (one then failed for good) and one notification not yet fanned out."""
    monkeypatch.setattr(engine.people.users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    with db.transaction() as session:
        create_entity(session, "housing", "الإسكان", "Housing")
        for name in ("saad", "omar"):
            create_user(session, name, "password-123", "entity_user", email=f"{name}@housing.example",
                        entity_code="housing")
        queue(session, None, "test:1", "reminder", None, "housing", {})
    with db.transaction() as session:
        assert nd.fan_out(session).deliveries == 4  # in-app (sent at once) and email, for each
        first = min(session.scalars(Delivery.__table__.select().with_only_columns(Delivery.id)
                                    .where(Delivery.channel == nd.EMAIL)))
        session.execute(update(Delivery).where(Delivery.id == first)
                        .values(status=nd.FAILED, next_attempt_at=None, last_error="550 no such user"))
        queue(session, None, "test:2", "reminder", None, "housing", {})


def _report_runs(db: Database) -> None:
    with db.transaction() as session:
        def begin(kind: str) -> int:
            return runs.start(session, kind, date(2026, 5, 19), date(2026, 5, 19), season_id=None, trigger="cli",
                              requested_by="test", formats=["pdf"], languages=["ar"]).id
        runs.succeed(session, begin("daily"), [], {})
        runs.succeed(session, begin("daily"), [], {})
        runs.fail(session, begin("daily"), "WeasyPrint is missing")
        begin("periodic")


# --- /metrics in process -----------------------------------------------------------------------------

def test_metrics_gauges_read_the_database(db, tmp_path, monkeypatch):
    _due_timer(db)
    _incident(db)
    _outbox(db, monkeypatch)
    _report_runs(db)
    clock.set_now(DEADLINE - timedelta(minutes=30))  # the reminder is 30 minutes late
    client = _client(db, tmp_path)
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.text)
    assert _value(samples, "tansiq_database_up") == 1
    assert _value(samples, "tansiq_timer_lag_seconds") == pytest.approx(1800, abs=1)
    assert _value(samples, "tansiq_timers_due") == 1
    assert _value(samples, "tansiq_incidents_open") == 1
    assert _value(samples, "tansiq_notification_deliveries_pending") == 1
    assert _value(samples, "tansiq_notification_deliveries_failed") == 1
    assert _value(samples, "tansiq_notifications_pending_fan_out") == 1
    assert _value(samples, "tansiq_report_runs", kind="daily", status="succeeded") == 2
    assert _value(samples, "tansiq_report_runs", kind="daily", status="failed") == 1
    assert _value(samples, "tansiq_report_runs", kind="periodic", status="running") == 1
    assert _value(samples, "tansiq_report_runs", kind="seasonal", status="failed") == 0
    assert ("process_cpu_seconds_total", ()) in samples or sys.platform != "linux"


def test_the_histogram_is_per_route_template_method_and_status_class(db, tmp_path):
    client = _client(db, tmp_path)
    before = _samples(client.get("/metrics").text)
    for task_id in (7, 8, 9):
        client.post(f"/api/v1/tasks/{task_id}/claim")  # 401: nobody signed in
    client.get("/no/such/page/12345")
    client.request("BREW", "/livez")
    client.get("/livez")
    after = _samples(client.get("/metrics").text)
    claim = "/api/v1/tasks/{task_id}/claim"
    assert _request_count(after, claim, "POST", "4xx") - _request_count(before, claim, "POST", "4xx") == 3
    assert _request_count(after, "/livez") - _request_count(before, "/livez") == 1
    assert _request_count(after, "unmatched", status="4xx") - _request_count(before, "unmatched", status="4xx") == 1
    assert _request_count(after, "/livez", "other", "4xx") >= 1  # an unknown method is not a label value
    routes = {dict(labels)["route"] for name, labels in after if name.startswith("tansiq_http_request_duration")}
    assert not any(str(n) in route for route in routes for n in (7, 8, 9, 12345)), routes
    buckets = [v for (name, labels), v in after.items() if name == "tansiq_http_request_duration_seconds_bucket"
               and dict(labels)["route"] == claim]
    assert max(buckets) >= 3


def test_metrics_answer_when_the_database_is_down(tmp_path):
    down = Database("postgresql+psycopg://postgres@127.0.0.1:9/nothing?connect_timeout=2")
    client = _client(down, tmp_path)
    samples = _samples(client.get("/metrics").text)
    assert _value(samples, "tansiq_database_up") == 0
    assert ("tansiq_timers_due", ()) not in samples
    assert any(name.startswith("process_") or name.startswith("python_") for name, _ in samples)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
    assert ready.json()["failing"] == ["database", "schema", "timer_lag"]
    assert client.get("/livez").status_code == 200
    assert client.get("/healthz").status_code == 503


# --- /livez, /readyz ----------------------------------------------------------------------------------

def test_livez_and_readyz_answer_200_with_each_check(db, tmp_path):
    client = _client(db, tmp_path)
    live = client.get("/livez")
    assert live.status_code == 200 and live.json()["status"] == "alive" and live.json()["version"]
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and set(body["checks"]) == {"database", "schema", "timer_lag"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["schema"]["value"] == migrate.head_revision()
    assert client.get("/healthz").json() == {"database": "ok", "timer_lag_seconds": 0.0}


def test_readyz_is_503_when_the_timers_are_too_far_behind(db, tmp_path):
    _due_timer(db)
    clock.set_now(DEADLINE)  # the reminder is an hour late
    client = _client(db, tmp_path, ready_max_timer_lag_seconds=600)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["content-type"].startswith("application/problem+json")
    body = ready.json()
    assert body["type"].endswith("/service-unavailable") and body["failing"] == ["timer_lag"]
    assert "timer_lag" in body["detail"] and body["checks"]["timer_lag"]["value"] == pytest.approx(3600)
    assert ready.headers["retry-after"] == "5"
    assert client.get("/healthz").status_code == 200  # healthz only asks for the database


@pytest.fixture
def old_schema_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of the same kind, migrated to the revision before head."""
    from tests.conftest import _create_pg_database, _drop_pg_database

    head = migrate.head_revision()
    previous = migrate.alembic_config("").attributes.get("x")  # noqa: F841 - placeholder to keep config import
    from alembic.script import ScriptDirectory

    before_head = ScriptDirectory.from_config(migrate.alembic_config("")).get_revision(head).down_revision
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'old.db'}"
        migrate.upgrade(url, before_head)
        yield url
        return
    name, url = _create_pg_database()
    try:
        migrate.upgrade(url, before_head)
        yield url
    finally:
        _drop_pg_database(name)


def test_readyz_is_503_when_the_schema_is_behind_head(old_schema_url, tmp_path):
    old = Database(old_schema_url)
    try:
        client = _client(old, tmp_path)
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["failing"] == ["schema"] and migrate.head_revision() in body["detail"]
        assert body["checks"]["schema"]["value"] == migrate.current_revision(old_schema_url)
        assert client.get("/livez").status_code == 200
    finally:
        old.dispose()


# --- the request id ----------------------------------------------------------------------------------

@pytest.mark.parametrize("incoming, kept", [
    (NGINX_ID, True),
    ("7f3c9a1e-5b2d-4c8f-9e6a-1d2b3c4d5e6f", True),
    ("short", False),
    ("has space inside it", False),
    ("x" * 65, False),
    ('quote"injection"here', False),
    ("line\\nbreak-injected", False),
])
def test_the_request_id_is_echoed_only_when_safe(db, tmp_path, incoming, kept):
    client = _client(db, tmp_path)
    response = client.get("/livez", headers={"X-Request-ID": incoming})
    echoed = response.headers["x-request-id"]
    if kept:
        assert echoed == incoming
    else:
        assert echoed != incoming and len(echoed) == 32 and int(echoed, 16) >= 0


def test_every_response_gets_a_fresh_request_id(db, tmp_path):
    client = _client(db, tmp_path)
    ids = {client.get(path).headers["x-request-id"] for path in ("/livez", "/livez", "/no/such", "/metrics")}
    assert len(ids) == 4
    too_large = client.post("/api/v1/directives", content=b"x" * 2_000_000, headers={"X-Request-ID": NGINX_ID,
                                                                                      "content-type": "text/plain"})
    assert too_large.status_code == 413 and too_large.headers["x-request-id"] == NGINX_ID


def test_the_500_handler_logs_and_answers_with_the_request_id(db, tmp_path, monkeypatch):
    from api import middleware

    client = _client(db, tmp_path)

    @client.app.get("/boom-for-the-test")
    def boom() -> None:
        raise RuntimeError("kaboom")

    with structlog.testing.capture_logs() as logs:
        # A fresh logger: the module's own may be cached with the configuration of an earlier test.
        monkeypatch.setattr(middleware, "log", structlog.get_logger("api.middleware"))
        response = client.get("/boom-for-the-test", headers={"X-Request-ID": NGINX_ID})
    assert response.status_code == 500 and NGINX_ID in response.json()["detail"]
    [line] = [entry for entry in logs if entry["event"] == "unhandled error"]
    assert line["request_id"] == NGINX_ID and line["incident"] in response.json()["detail"]


# --- the middleware's cost ---------------------------------------------------------------------------

def _asgi_seconds(app: Any, rounds: int) -> float:
    import asyncio

    scope = {"type": "http", "method": "GET", "path": "/x", "raw_path": b"/x", "query_string": b"",
             "headers": [(b"x-request-id", NGINX_ID.encode())], "root_path": ""}

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        return None

    async def run() -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            await app(dict(scope), receive, send)
        return time.perf_counter() - started

    return asyncio.run(run())


def test_the_timing_middleware_costs_microseconds():
    from api.metrics import MetricsMiddleware

    async def endpoint(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    rounds = 20_000
    bare = min(_asgi_seconds(endpoint, rounds) for _ in range(3))
    timed = min(_asgi_seconds(MetricsMiddleware(endpoint), rounds) for _ in range(3))
    per_request_us = (timed - bare) / rounds * 1e6
    print(f"timing middleware: {per_request_us:.2f} us a request")
    assert per_request_us < 50


# --- real processes ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    migrate.upgrade(url)
    return url


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TANSIQ_", "PROMETHEUS_", "PREFECT_"))}
    env.update(TANSIQ_HOME=str(tmp_path), TANSIQ_DATABASE_URL=url, TANSIQ_SECRET_KEY="k" * 48,
               PYTHONPATH=str(ROOT), DO_NOT_TRACK="1", PREFECT_HOME=str(tmp_path / "prefect"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)
    return env


def _serve(port: int, env: dict[str, str], *, prepare: Path | None = None) -> subprocess.Popen[str]:
    code = textwrap.dedent(f"""
        from pathlib import Path
        import uvicorn
        from api.metrics import prepare_multiprocess
        from engine.foundation.logs import uvicorn_log_config
        if {str(prepare) if prepare else ""!r}:
            prepare_multiprocess(Path({str(prepare)!r}))
        uvicorn.run("api.app:create_app", factory=True, host="127.0.0.1", port={port}, log_level="info",
                    log_config=uvicorn_log_config("INFO", "json"))
    """)
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_live(port: int, process: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.stderr.read()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the server did not answer /livez")


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


def test_uvicorn_lines_are_json_with_the_request_id(tmp_path):
    port = _free_port()
    server = _serve(port, _env(tmp_path, _sqlite(tmp_path)))
    try:
        _wait_live(port, server)
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Request-ID": NGINX_ID}, timeout=10)
        assert response.status_code == 200 and response.headers["x-request-id"] == NGINX_ID
        generated = httpx.get(f"http://127.0.0.1:{port}/readyz", headers={"X-Request-ID": "no good"}, timeout=10)
    finally:
        _, stderr = _stop(server)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "uvicorn logged nothing"
    records = []
    for line in lines:
        record = json.loads(line)  # every line, uvicorn's start and stop lines included
        assert {"timestamp", "level", "logger", "event"} <= set(record), record
        records.append(record)
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    [mine] = [r for r in access if r.get("path") == "/healthz"]
    assert mine["request_id"] == NGINX_ID and mine["status"] == 200 and mine["method"] == "GET"
    [other] = [r for r in access if r.get("path") == "/readyz"]
    assert other["request_id"] == generated.headers["x-request-id"] != "no good"
    assert any(r["logger"] == "uvicorn.error" and "startup complete" in r["event"] for r in records)


def test_two_processes_add_up_in_one_scrape(tmp_path):
    url = _sqlite(tmp_path)
    shared = tmp_path / "prometheus"
    first_port, second_port = _free_port(), _free_port()
    first = _serve(first_port, _env(tmp_path, url), prepare=shared)
    second = None
    try:
        _wait_live(first_port, first)
        second = _serve(second_port, _env(tmp_path, url, PROMETHEUS_MULTIPROC_DIR=str(shared)))
        _wait_live(second_port, second)
        for port, times in ((first_port, 3), (second_port, 5)):
            for _ in range(times):
                assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        scrapes = [_samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
                   for port in (first_port, second_port)]
    finally:
        for process in (first, second):
            if process is not None:
                _stop(process)
    pids = {path.name for path in shared.glob("histogram_*.db")}
    assert len(pids) == 2, pids
    for samples in scrapes:  # whichever process answers, it adds both up
        assert _request_count(samples, "/healthz") == 8
        assert _value(samples, "tansiq_database_up") == 1  # once per scrape, not once per process
        assert _value(samples, "tansiq_timers_due") == 0


def test_uvicorn_workers_share_the_multiprocess_directory(tmp_path):
    """`tansiq serve --workers 2`: two uvicorn worker processes started by uvicorn itself."""
    url, shared, port = _sqlite(tmp_path), tmp_path / "prometheus", _free_port()
    code = textwrap.dedent(f"""
        from pathlib import Path
        import uvicorn
        from api.metrics import prepare_multiprocess
        from engine.foundation.logs import uvicorn_log_config
        prepare_multiprocess(Path({str(shared)!r}))
        uvicorn.run("api.app:create_app", factory=True, host="127.0.0.1", port={port}, workers=2,
                    log_level="warning", log_config=uvicorn_log_config("WARNING", "json"))
    """)
    server = subprocess.Popen([sys.executable, "-c", code], env=_env(tmp_path, url), cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_live(port, server)
        sent = 0
        deadline = time.monotonic() + 60
        while len(list(shared.glob("histogram_*.db"))) < 2 and time.monotonic() < deadline:
            with httpx.Client() as fresh:  # a new connection each time: the kernel picks a worker
                assert fresh.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
            sent += 1
        samples = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    finally:
        _stop(server)
    if len(list(shared.glob("histogram_*.db"))) < 2:
        pytest.skip("the kernel gave every connection to one worker")
    assert _request_count(samples, "/healthz") == sent


def test_prefect_lines_are_json(tmp_path):
    env = _env(tmp_path, _sqlite(tmp_path))
    env.update(prefect_logging_env(tmp_path / "prefect-config", "INFO", "json"))
    code = textwrap.dedent("""
        import logging
        from prefect.logging.configuration import setup_logging
        setup_logging()
        from prefect.logging import get_logger
        get_logger("tansiq.check").info("hello from prefect")
        get_logger("flow_runs").warning("a flow-run line")
        logging.getLogger("sqlalchemy.engine").warning("a library line")
        from engine.foundation.logs import get_logger as tansiq_logger
        tansiq_logger("engine.reports").info("a report was archived", run_id=12)
    """)
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    events = {r["event"]: r for r in records}
    assert events["hello from prefect"]["logger"] == "prefect.tansiq.check"
    assert events["hello from prefect"]["level"] == "info" and "timestamp" in events["hello from prefect"]
    assert events["a library line"]["logger"] == "sqlalchemy.engine"
    assert events["a report was archived"]["run_id"] == 12
    assert Path(env["PREFECT_LOGGING_SETTINGS_PATH"]).is_file()


def test_uvicorn_log_config_is_a_dictconfig():
    import logging.config

    config = uvicorn_log_config("INFO", "console")
    logging.config.dictConfig(config)  # what uvicorn does with it
    assert logging.getLogger("uvicorn.access").propagate
    assert logging.getLogger("sqlalchemy").level == logging.WARNING
