"""The three report flows: daily, periodic, seasonal. Thin wrappers around `engine.reports.archive`:
each step is a task (with retries and a timeout), each run is recorded as a report run carrying the
Prefect flow-run id, and each run leaves three artifacts: a markdown summary, a table, and a link
to the archived files.

The flows read the Tansiq database from the same environment as the rest of Tansiq
(TANSIQ_DATABASE_URL, or the SQLite file under TANSIQ_HOME), so a worker on another machine only
needs that environment to produce reports into the same database.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from prefect import Flow, flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from engine.calendar.durations import RIYADH
from engine.foundation.errors import TansiqError
from engine.foundation.settings import get_settings
from engine.reports import archive
from engine.reports.archive import Archive, ReportRequest
from engine.reports.common import DAILY, PERIODIC, SEASONAL
from engine.reports.runs import SUCCEEDED
from engine.reports.settings import get_report_settings
from engine.storage.db import get_database

FLOW_NAMES = {DAILY: "tansiq-daily-report", PERIODIC: "tansiq-periodic-report", SEASONAL: "tansiq-seasonal-report"}
DIGEST_FLOW_NAME = "tansiq-daily-digest"


def retry_unless_refused(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed task unless Tansiq refused the request (bad period, unknown season, ...): that
    error would only come back."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            error = state.result(raise_on_failure=False)
        except Exception:
            return True
    return not isinstance(error, TansiqError)


TASK_OPTIONS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False,
                                "retry_condition_fn": retry_unless_refused}


@task(name="resolve the period", retries=2, retry_delay_seconds=[2, 10], timeout_seconds=60, **TASK_OPTIONS)
def resolve_request(kind: str, day: date | None, start: date | None, end: date | None, season_year: int | None,
                    formats: list[str] | None, languages: list[str] | None, reference: datetime | None
                    ) -> ReportRequest:
    with get_database().reading() as session:
        return archive.resolve(session, kind, day=day, start=start, end=end, season_year=season_year,
                               formats=formats, languages=languages, reference=reference)


@task(name="record the run", retries=2, retry_delay_seconds=[2, 10], timeout_seconds=60, **TASK_OPTIONS)
def open_run(request: ReportRequest, trigger: str, flow_run_id: str | None, run_id: int | None = None) -> int:
    """A new run, or the one "run now" recorded as queued for this flow run (`run_id`)."""
    if run_id is None:
        return archive.open_run(get_database(), request, trigger, "prefect", prefect_flow_run_id=flow_run_id)
    from engine.reports import runs

    with get_database().transaction() as session:
        return runs.begin(session, run_id, flow_run_id).id


@task(name="compute the report data", retries=2, retry_delay_seconds=[5, 30], timeout_seconds=900, **TASK_OPTIONS)
def compute_data(request: ReportRequest) -> Any:
    with get_database().reading() as session:
        return archive.compute(session, request)


@task(name="render", task_run_name="render {fmt} {language}", retries=1, retry_delay_seconds=5,
      timeout_seconds=600, **TASK_OPTIONS)
def render_file(report: Any, fmt: str, language: str | None) -> bytes:
    return archive.render(report, fmt, language)


@task(name="archive the files", retries=2, retry_delay_seconds=[2, 10], timeout_seconds=300, **TASK_OPTIONS)
def archive_files(request: ReportRequest, run_id: int, rendered: list[tuple[str, str | None, bytes]]
                  ) -> list[dict[str, Any]]:
    store = Archive(request, run_id)
    try:
        for fmt, language, content in rendered:
            store.add(request.file_name(fmt, language), fmt, language, content)
        return store.commit()
    except BaseException:
        store.discard()
        raise


@task(name="close the run", retries=2, retry_delay_seconds=[2, 10], timeout_seconds=60, **TASK_OPTIONS)
def close_run(run_id: int, files: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    from engine.reports import runs

    with get_database().transaction() as session:
        runs.succeed(session, run_id, files, summary)


def produce(kind: str, *, day: date | None = None, start: date | None = None, end: date | None = None,
            season_year: int | None = None, formats: list[str] | None = None,
            languages: list[str] | None = None, run_id: int | None = None) -> dict[str, Any]:
    """The body of every report flow; `run_id` is the run "run now" recorded for it (workflows/dispatch.py)."""
    from prefect.runtime import flow_run

    logger = get_run_logger()
    flow_run_id = flow_run.get_id()
    trigger = "schedule" if "auto-scheduled" in (flow_run.get_tags() or []) else "flow"
    reference = flow_run.get_scheduled_start_time() if trigger == "schedule" else None
    request = resolve_request(kind, day, start, end, season_year, formats, languages, reference)
    run_id = open_run(request, trigger, flow_run_id, run_id)
    try:
        report = compute_data(request)
        rendered = [(fmt, language, render_file(report, fmt, language)) for fmt, language in request.outputs()]
        files = archive_files(request, run_id, rendered)
        figures = archive.summary(report)
        close_run(run_id, files, figures)
    except BaseException as exc:
        archive.close_failed(get_database(), run_id, exc)
        raise
    _artifacts(request, run_id, files, figures)
    logger.info("report run %s: %s %s archived %d files", run_id, kind, request.label, len(files))
    return {"run_id": run_id, "status": SUCCEEDED, "kind": kind, "period": request.label,
            "files": [str(archive.path_of(f)) for f in files], "summary": figures}


def _artifacts(request: ReportRequest, run_id: int, files: list[dict[str, Any]], figures: dict[str, Any]) -> None:
    key = f"tansiq-{request.kind}-report"
    settings = get_report_settings()
    public_url = settings.public_url or get_settings().public_url
    rows = [{"measure": name, "value": value} for name, value in figures.items()
            if isinstance(value, int | float) and not isinstance(value, bool)]
    lines = [f"# Tansiq {request.kind} report — {request.label}", "",
             f"Report run **{run_id}**, period {figures['period'][0]} to {figures['period'][1]} "
             f"(Hijri {figures['hijri'][0]} to {figures['hijri'][1]}), figures as of {figures['as_of']}.", "",
             "| measure | value |", "| --- | --- |", *[f"| {r['measure']} | {r['value']} |" for r in rows], "",
             "Archived files:", *[f"- `{f['path']}` ({f['bytes']:,} bytes)" for f in files]]
    create_markdown_artifact("\n".join(lines), key=key, description=f"{request.kind} report {request.label}")
    create_table_artifact(rows, key=f"{key}-figures", description="headline figures")
    if public_url:
        link = f"{public_url.rstrip('/')}/reports#run-{run_id}"
    else:
        main = next((f for f in files if f["format"] == "pdf"), files[0] if files else None)
        link = archive.path_of(main).as_uri() if main else settings.archive_dir.as_uri()
    create_link_artifact(link, link_text=f"{request.kind} report {request.label} (run {run_id})",
                         key=f"{key}-files", description="the archived report")


@flow(name=FLOW_NAMES[DAILY], retries=1, retry_delay_seconds=60, timeout_seconds=3600, validate_parameters=True)
def daily_report(day: date | None = None, formats: list[str] | None = None, languages: list[str] | None = None,
                 season_year: int | None = None, run_id: int | None = None) -> dict[str, Any]:
    """التقرير اليومي: one local day (default: the day before the run's scheduled time)."""
    return produce(DAILY, day=day, season_year=season_year, formats=formats, languages=languages, run_id=run_id)


@flow(name=FLOW_NAMES[PERIODIC], retries=1, retry_delay_seconds=60, timeout_seconds=3600, validate_parameters=True)
def periodic_report(start: date | None = None, end: date | None = None, formats: list[str] | None = None,
                    languages: list[str] | None = None, season_year: int | None = None,
                    run_id: int | None = None) -> dict[str, Any]:
    """التقرير الدوري: a range of local days (default: the 7 days before the run's scheduled time)."""
    return produce(PERIODIC, start=start, end=end, season_year=season_year, formats=formats, languages=languages,
                   run_id=run_id)


@flow(name=FLOW_NAMES[SEASONAL], retries=1, retry_delay_seconds=60, timeout_seconds=3600, validate_parameters=True)
def seasonal_report(season_year: int | None = None, formats: list[str] | None = None,
                    languages: list[str] | None = None, run_id: int | None = None) -> dict[str, Any]:
    """التقرير الموسمي: one season, as of the run (default: the season of the day before)."""
    return produce(SEASONAL, season_year=season_year, formats=formats, languages=languages, run_id=run_id)


@flow(name=DIGEST_FLOW_NAME, retries=2, retry_delay_seconds=60, timeout_seconds=600, validate_parameters=True)
def daily_digest(day: date | None = None) -> dict[str, Any]:
    """الملخص اليومي: each entity's digest of its open steps, queued for the notification worker (once per entity
    and day, so a retry or a second run of the same day sends nothing twice). `day`: the Riyadh day of the run's
    scheduled time by default."""
    from prefect.runtime import flow_run

    from engine.delivery import notification_delivery

    if day is None:
        scheduled = flow_run.get_scheduled_start_time()
        day = scheduled.astimezone(RIYADH).date() if scheduled else notification_delivery.riyadh_today()
    with get_database().transaction() as session:
        queued = notification_delivery.daily_digest(session, day)
        entities = sorted(n.recipient_entity or "" for n in queued)
    get_run_logger().info("daily digest %s: queued for %d entities", day.isoformat(), len(entities))
    create_markdown_artifact(f"# Tansiq daily digest — {day.isoformat()}\n\nQueued for {len(entities)} "
                             f"entities: {', '.join(entities) or 'none (already queued, or no open steps)'}.",
                             key="tansiq-daily-digest", description=f"daily digest {day.isoformat()}")
    return {"day": day.isoformat(), "entities": entities}


FLOWS: dict[str, Flow[..., dict[str, Any]]] = {
    DAILY: daily_report, PERIODIC: periodic_report, SEASONAL: seasonal_report}
