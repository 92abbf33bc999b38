"""Prometheus metrics at `/metrics`: request latency per route template, and the database's state.

`/metrics` needs no sign-in: it says how busy the service is and how far behind its workers are, nothing
about directives or people. It is meant for the scraper on the private network; the nginx site in front
of Tansiq denies `/metrics` (and `/livez`, `/readyz`) from outside.

- `tansiq_http_request_duration_seconds{method, route, status}`: a histogram timed by `MetricsMiddleware`;
  `route` is the route's template (`/api/v1/tasks/{task_id}/claim`) or `unmatched`, `method` one of the
  HTTP methods (others are `other`) and `status` the class (`2xx`...), so the series stay few whatever
  addresses clients send.
- Gauges read from the database at scrape time by `DatabaseCollector` (indexed queries, one read
  transaction): `tansiq_database_up`, `tansiq_timer_lag_seconds`, `tansiq_timers_due`,
  `tansiq_notifications_pending_fan_out`, `tansiq_notification_deliveries_pending`,
  `tansiq_notification_deliveries_failed`, `tansiq_incidents_open`, `tansiq_report_runs{kind, status}`,
  plus `tansiq_build_info{version}` and `tansiq_metrics_database_seconds` (what the queries cost).
  When the database cannot be reached, only `tansiq_database_up 0` (with the process metrics) is given.

Several API processes (`tansiq serve --workers N`): the parent calls `prepare_multiprocess(directory)` before
it starts the workers; every process then keeps its histogram in files there (prometheus_client's
multiprocess mode) and whichever process answers a scrape adds them all up. The database gauges are
computed once, by that process, and so never summed. The `process_*` metrics are then the answering
process's own.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.delivery.notification_delivery import EMAIL, FAILED, PENDING, PENDING_NOTIFICATION
from engine.foundation import clock
from engine.foundation.logs import get_logger
from engine.foundation.version import installed_version
from engine.reports.common import KINDS
from engine.reports.runs import STATUSES, ReportRun
from engine.storage.db import Database
from engine.work import instances
from engine.work.instances import ProcessInstance
from engine.work.notifications import Delivery, Notification
from engine.work.timers import timer_lag_seconds

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# Pages and API calls take milliseconds; report downloads and imports seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

router = APIRouter(tags=["health"])
log = get_logger(__name__)


# --- several processes ------------------------------------------------------------------------------

def multiprocess_directory() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())
    return Path(value) if value else None


def prepare_multiprocess(directory: Path) -> None:
    """Call in the parent before starting API workers: an empty `directory` (files of an earlier run would
    be added to this one's) and PROMETHEUS_MULTIPROC_DIR pointing at it, which the workers inherit."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)


def mark_process_dead(pid: int) -> None:
    """For a supervisor's worker-exit hook: drop the live-gauge files of a dead worker (its histograms stay,
    counts must not go down)."""
    directory = multiprocess_directory()
    if directory is not None:
        multiprocess.mark_process_dead(pid, str(directory))


# --- request timing ---------------------------------------------------------------------------------

class _Timing:
    """The histogram and its children by label values (a dict lookup is cheaper than `.labels()`'s lock)."""

    def __init__(self) -> None:
        if multiprocess_directory() is not None and values.ValueClass is values.MutexValue:
            # prometheus_client chose its value class when first imported, maybe before the variable was set.
            values.ValueClass = values.MultiProcessValue()
        self.histogram = Histogram("tansiq_http_request_duration_seconds", "Time to answer a request, by route "
                                   "template, method and status class.", ("method", "route", "status"),
                                   buckets=BUCKETS)
        self.children: dict[tuple[str, str, str], Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in METHODS else "other", route, _STATUS_CLASSES.get(status // 100, "other"))
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = self.histogram.labels(*key)
        child.observe(seconds)


_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_timing: _Timing | None = None


def _get_timing() -> _Timing:
    """One histogram per process, made at the first app (so PROMETHEUS_MULTIPROC_DIR set by then counts)."""
    global _timing
    if _timing is None:
        _timing = _Timing()
    return _timing


def _route_of(scope: Scope, root_path: str) -> str:
    """The template of the route that answered: FastAPI keeps an included router's full template (with its
    prefix) in its effective route context, an app-level route is `scope["route"]`, and a mount (static
    files) only lengthens `root_path`. Private to FastAPI 0.150's routing: tests/test_observability.py
    checks the templates, so an upgrade that moves them fails there, not silently."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    if template:
        return template
    mounted = scope.get("root_path", "")
    if len(mounted) > len(root_path) and mounted.startswith(root_path):
        return mounted[len(root_path):] + "/{path}"
    return UNMATCHED


class MetricsMiddleware:
    """Times every HTTP request to the end of its body; pure ASGI, about a microsecond of work."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.timing = _get_timing()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        status = 500  # what the client gets if the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.timing.observe(scope["method"], _route_of(scope, root_path), status, time.perf_counter() - started)


# --- the database's state -------------------------------------------------------------------------

def _count(session: Session, query: Any) -> int:
    return int(session.scalar(query) or 0)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _state_gauges(session: Session, now: datetime) -> Iterator[GaugeMetricFamily]:
    yield _gauge("tansiq_timer_lag_seconds", "How overdue the oldest due timer of a running instance is.",
                 timer_lag_seconds(session, now))
    yield _gauge("tansiq_timers_due", "Running instances whose next timer is due (the timer worker's backlog).",
                 _count(session, select(func.count()).select_from(ProcessInstance).where(
                     ProcessInstance.status == instances.RUNNING, ProcessInstance.next_timer_at <= now)))
    yield _gauge("tansiq_incidents_open", "Process instances in incident.",
                 _count(session, select(func.count()).select_from(ProcessInstance).where(
                     ProcessInstance.status == instances.INCIDENT)))
    yield _gauge("tansiq_notifications_pending_fan_out", "Notifications in the outbox not yet fanned out.",
                 _count(session, select(func.count()).select_from(Notification).where(
                     Notification.status == PENDING_NOTIFICATION)))
    # A pending email delivery always has next_attempt_at set (sent and failed ones have it cleared): the
    # condition on it lets the database count from that column's index.
    yield _gauge("tansiq_notification_deliveries_pending", "Email deliveries waiting to be sent (or retried).",
                 _count(session, select(func.count()).select_from(Delivery).where(
                     Delivery.next_attempt_at.is_not(None), Delivery.status == PENDING, Delivery.channel == EMAIL)))
    yield _gauge("tansiq_notification_deliveries_failed", "Email deliveries that failed for good "
                 "(`tansiq notifications requeue-failed` sends them again).",
                 _count(session, select(func.count()).select_from(Delivery).where(
                     Delivery.status == FAILED, Delivery.channel == EMAIL)))
    yield _report_runs(session)


def _report_runs(session: Session) -> GaugeMetricFamily:
    family = GaugeMetricFamily("tansiq_report_runs", "Report runs recorded, by kind and status.",
                               labels=("kind", "status"))
    found = {(kind, status): n for kind, status, n in session.execute(
        select(ReportRun.kind, ReportRun.status, func.count()).group_by(ReportRun.kind, ReportRun.status))}
    for kind, status in sorted({*((k, s) for k in KINDS for s in STATUSES), *found}):
        family.add_metric((kind, status), found.get((kind, status), 0))
    return family


class DatabaseCollector(Collector):
    """The gauges, read when scraped (never stored in the multiprocess files, so never summed)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.version = installed_version()

    def describe(self) -> list[Any]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Any]:
        info = GaugeMetricFamily("tansiq_build_info", "The running Tansiq version.", labels=("version",))
        info.add_metric((self.version,), 1)
        yield info
        started = time.perf_counter()
        try:
            with self.db.reading() as session:
                gauges = list(_state_gauges(session, clock.now()))
        except SQLAlchemyError as exc:
            log.warning("metrics: the database cannot be reached", error_type=type(exc).__name__)
            yield _gauge("tansiq_database_up", "1 when the database answered this scrape.", 0)
            return
        yield _gauge("tansiq_database_up", "1 when the database answered this scrape.", 1)
        yield from gauges
        yield _gauge("tansiq_metrics_database_seconds", "What the database queries of this scrape took.",
                     time.perf_counter() - started)


class _Delegate(Collector):
    """The process-wide metrics (or every process's, in multiprocess mode) inside a per-app registry."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        return iter(self.source.collect())


def build_registry(db: Database) -> CollectorRegistry:
    """What one scrape reads: this process's metrics, or all processes' when PROMETHEUS_MULTIPROC_DIR is set
    (plus the answering process's own process_* metrics), and the database gauges."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_directory()
    if directory is None:
        registry.register(_Delegate(REGISTRY))
    else:
        multiprocess.MultiProcessCollector(registry, path=str(directory))
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    registry.register(DatabaseCollector(db))
    return registry


def install(app: Any) -> None:
    """The timing middleware and the /metrics route; the registry is per app (its database), the histogram
    per process."""
    app.add_middleware(MetricsMiddleware)
    app.state.metrics_registry = build_registry(app.state.tansiq.db)
    app.include_router(router)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format 0.0.4 (what Debian's Prometheus 2.42 reads); no sign-in (the proxy denies it
    from outside)."""
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)
