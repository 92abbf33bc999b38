"""The unit's reports over the API: list the runs, run one now, download an archived file."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse

from api.deps import CurrentUser, State, requires
from api.problems import attachment, documented, file_download
from api.schemas.common import MAX_ID, Page
from api.schemas.reports import ReportFileOut, ReportRunIn, ReportRunOut
from engine.foundation.errors import N_, NotFound
from engine.reports import archive, runs
from workflows import dispatch

router = APIRouter(tags=["reports"])
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _file_out(run_id: int, entry: dict[str, Any]) -> ReportFileOut:
    language = entry.get("language")
    query = f"?language={language}" if language else ""
    return ReportFileOut(format=entry["format"], language=language, size=entry.get("bytes"), sha256=entry.get("sha256"),
                         name=entry.get("name") or PurePosixPath(entry["path"]).name,
                         url=f"/api/v1/reports/{run_id}/{entry['format']}{query}")


def run_out(run: runs.ReportRun) -> ReportRunOut:
    files = [_file_out(run.id, entry) for entry in run.files or []]
    return ReportRunOut(id=run.id, kind=run.kind, period_start=run.period_start, period_end=run.period_end,
                        status=run.status, trigger=run.trigger, requested_by=run.requested_by,
                        started_at=run.started_at, finished_at=run.finished_at, error=run.error,
                        prefect_flow_run_id=run.prefect_flow_run_id, files=files)


@router.get("/reports", operation_id="listReportRuns",
            response_model=Page[ReportRunOut], responses=documented(401, 403, 422, 503))
def list_runs(
    state: State,
    caller: Annotated[CurrentUser, requires("report.read")],
    kind: Annotated[str | None, Query(pattern="^(daily|periodic|seasonal)$")] = None,
    status: Annotated[str | None, Query(pattern="^(queued|running|succeeded|failed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[ReportRunOut]:
    with state.db.reading() as session:
        items = [run_out(r) for r in runs.list_runs(session, kind=kind, status=status, limit=limit, offset=offset)]
        total = runs.count_runs(session, kind=kind, status=status)
    return Page[ReportRunOut](items=items, total=total, limit=limit, offset=offset)


@router.post("/reports/{kind}/run", operation_id="runReport", response_model=ReportRunOut, status_code=201,
             responses={**documented(401, 403, 404, 409, 422, 503),
                        202: {"model": ReportRunOut, "description": "Queued on the report scheduler (Prefect): "
                              "follow it with GET /api/v1/reports/{id} until it succeeds or fails."}})
def run_now(
    kind: Annotated[str, Path(pattern="^(daily|periodic|seasonal)$")],
    body: ReportRunIn,
    state: State,
    caller: Annotated[CurrentUser, requires("report.run")],
    response: Response,
) -> ReportRunOut:
    """Make one report now. With a Prefect API configured (TANSIQ_PREFECT_API_URL), a flow run of the report's
    deployment is created, so the run shows in Prefect's UI with its artifacts: 202 with the queued run.
    Without one, the report is made in this request and archived: 201 with the finished run."""
    run = dispatch.request_run(state.db, kind, day=body.day, start=body.start, end=body.end,
                               season_year=body.season, formats=list(body.formats) if body.formats else None,
                               languages=list(body.languages) if body.languages else None,
                               trigger="api", requested_by=caller.username)
    if run.status == runs.QUEUED:
        response.status_code = 202
    return run_out(run)


@router.get("/reports/{run_id}", operation_id="getReportRun",
            response_model=ReportRunOut, responses=documented(401, 403, 404, 422, 503))
def get_run(run_id: RunId, state: State, caller: Annotated[CurrentUser, requires("report.read")]) -> ReportRunOut:
    with state.db.reading() as session:
        return run_out(runs.get(session, run_id))


@router.get("/reports/{run_id}/{fmt}", operation_id="downloadReport", response_class=StreamingResponse,
            responses={**file_download(list(archive.MEDIA_TYPES.values()), "The archived file, as an attachment"),
                       **documented(401, 403, 404, 422, 503)})
def download(
    run_id: RunId,
    fmt: Annotated[str, Path(pattern="^(pdf|html|xlsx|csv|json)$")],
    state: State,
    caller: Annotated[CurrentUser, requires("report.read")],
    language: Annotated[str | None, Query(pattern="^(ar|en)$")] = None,
) -> StreamingResponse:
    with state.db.reading() as session:
        run = runs.get(session, run_id)
        entry: dict[str, Any] | None = run.file(fmt, language)
        if entry is None:
            missing = N_("report run %(run)s has no %(format)s file in %(language)s") if language else N_(
                "report run %(run)s has no %(format)s file")
            raise NotFound(missing, params={"run": str(run_id), "format": fmt, "language": language or ""})
        found = archive.locate(session, entry, home=state.settings.home)
    name = entry.get("name") or archive.path_of(entry).name
    return attachment(state.db, found, archive.MEDIA_TYPES.get(fmt, "application/octet-stream"), name)
