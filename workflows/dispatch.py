"""Report "run now" (the API, the reports page and `tansiq reports run`): through the Prefect deployment whenever
a Prefect API is there, so that every run shows in Prefect's UI with its artifacts; in the caller's process
when none is configured.

    run = request_run(db, "daily", day=date(2026, 5, 20), trigger="api", requested_by="secretariat")

With TANSIQ_PREFECT_API_URL set (`tansiq serve` sets it for its API processes when it starts the embedded
scheduler): the period is resolved and checked here (bad input is refused before anything is recorded), the
run is recorded as queued, and a flow run of the kind's deployment is created with the run's id as a
parameter; the flow then fills that same run (workflows/reports.py). The caller gets the queued run at once
and follows it by its id. If Prefect cannot be reached at all, the report is made here, as without Prefect,
and a warning is logged: the user asked for a report, and gets it. If Prefect answers but refuses the flow
run, the queued run is recorded as failed with Prefect's reason and the error is raised.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import httpx

from engine.calendar import seasons
from engine.foundation.errors import TansiqError
from engine.foundation.logs import get_logger
from engine.foundation.settings import get_settings
from engine.reports import archive, runs
from engine.reports.archive import ReportRequest
from engine.storage.db import Database

log = get_logger(__name__)
REACHABLE_SECONDS = 3.0


class SchedulerRefused(TansiqError):
    """The Prefect API answered but would not create the flow run (for example, no such deployment)."""

    code = "service-unavailable"


def request_run(db: Database, kind: str, *, day: date | None = None, start: date | None = None,
                end: date | None = None, season_year: int | None = None, formats: list[str] | None = None,
                languages: list[str] | None = None, trigger: str, requested_by: str) -> runs.ReportRun:
    """A report run asked for now: queued on Prefect when it is there, else made here (see the module)."""
    with db.reading() as session:
        request = archive.resolve(session, kind, day=day, start=start, end=end, season_year=season_year,
                                  formats=formats, languages=languages)
    api_url = get_settings().prefect_api_url
    if api_url and _reachable(api_url):
        return _queue_on_prefect(db, api_url, request, trigger, requested_by)
    if api_url:
        log.warning("the Prefect API cannot be reached; the report is made in this process", api_url=api_url,
                    kind=kind)
    return archive.produce(db, kind, day=day, start=start, end=end, season_year=season_year, formats=formats,
                           languages=languages, trigger=trigger, requested_by=requested_by).run


def _reachable(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=REACHABLE_SECONDS).status_code == 200
    except httpx.HTTPError:
        return False


def flow_parameters(request: ReportRequest, run_id: int) -> dict[str, Any]:
    """The flow's parameters for exactly the period resolved here (the flow resolves them the same way)."""
    common: dict[str, Any] = {"formats": request.formats, "languages": request.languages, "run_id": run_id}
    if request.kind == "daily":
        return {**common, "day": request.start.isoformat(), "season_year": request.season_year}
    if request.kind == "periodic":
        return {**common, "start": request.start.isoformat(), "end": request.end.isoformat(),
                "season_year": request.season_year}
    return {**common, "season_year": request.season_year}


def _queue_on_prefect(db: Database, api_url: str, request: ReportRequest, trigger: str,
                      requested_by: str) -> runs.ReportRun:
    from workflows.serve import deployment_name

    with db.transaction() as session:
        season_id = seasons.get_season(session, request.season_year).id if request.season_year else None
        run_id = runs.start(session, request.kind, request.start, request.end, season_id=season_id,
                            trigger=trigger, requested_by=requested_by, formats=request.formats,
                            languages=request.languages, status=runs.QUEUED).id
    try:
        flow_run_id = asyncio.run(_create_flow_run(api_url, deployment_name(request.kind),
                                                   flow_parameters(request, run_id)))
    except Exception as exc:
        with db.transaction() as session:
            runs.fail(session, run_id, f"the report scheduler refused the run: {exc}")
        raise SchedulerRefused(f"the report scheduler at {api_url} refused the run: {exc}") from exc
    with db.transaction() as session:
        runs.attach_flow_run(session, run_id, flow_run_id)
        return runs.get(session, run_id)


async def _create_flow_run(api_url: str, name: str, parameters: dict[str, Any]) -> str:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(name)
            flow_run = await client.create_flow_run_from_deployment(
                deployment.id, parameters=parameters, tags=["tansiq", "run-now"])
    return str(flow_run.id)
