"""The Excel import (issue 9): the template (Arabic or English), an upload that is first only validated
(every problem by row and column, in the user's language), then the user's choice: import every valid row,
or import only if every row is valid; optionally launch what was imported.

A workbook of 10,000 rows takes a few seconds, so each step runs in a background thread of the server
process as an *import job*, and the page polls its progress with htmx (a `<progress>` bar; without
scripts the page refreshes itself). The import itself is `engine.directives.directive_import.import_directives` in
one transaction: the job reports "done" only after that transaction committed.

Jobs live in the `import_job` table (`engine.system.import_jobs`) and their workbooks in the file store, so any
node shows a job's page and progress: each belongs to the user who uploaded it (anyone else is told it does
not exist), is run at most once, shows as interrupted when the node running it stopped, and is forgotten two
hours after it finished.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.problems import content_disposition
from api.web import i18n
from api.web.core import WebRoute, form_errors, is_htmx, on_fields, redirect, render
from api.web.labels import N_
from api.web.session import form_of, require_user
from engine.calendar.seasons import Season
from engine.directives import access, directive_import
from engine.directives.directive_import import ImportReport, RowError
from engine.foundation.errors import InvalidInput, NotFound, TansiqError
from engine.foundation.logs import get_logger
from engine.system import import_jobs

router = APIRouter(route_class=WebRoute)
log = get_logger(__name__)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ERRORS_SHOWN = 200
SUMMARY_FROM = 20  # problems: from this many on, a table of them by kind and column comes first
ROWS_SHOWN = 200
VALIDATING, VALIDATED, IMPORTING, DONE, FAILED = (import_jobs.VALIDATING, import_jobs.VALIDATED, import_jobs.IMPORTING,
                                                  import_jobs.DONE, import_jobs.FAILED)
RUNNING = import_jobs.RUNNING
UPLOAD_TARGETS = {"file": ("import-file", N_("The workbook"))}
STAGE_WORDS = {"start": N_("Starting"), "read": N_("Reading the workbook"), "validate": N_("Checking every row"),
               "import": N_("Importing the directives"), "launch": N_("Launching the directives"),
               "commit": N_("Saving")}
ERROR_WORDS = {  # RowError.code -> the problem, in words the page translates
    "required": N_("A value is required"), "bad_choice": N_("Not one of the choices of the list"),
    "unknown_entity": N_("Unknown or inactive entity"), "duplicate_entity": N_("The same entity twice"),
    "bad_date": N_("Not a date, or not a valid Hijri or Gregorian date"),
    "deadline_passed": N_("The deadline has already passed"), "bad_reference": N_("Not a valid reference"),
    "duplicate_reference": N_("The same reference appears twice in the file"),
    "reference_taken": N_("The reference is already used by a directive"),
    "unknown_meeting": N_("No meeting with this number in the season"), "bad_meeting": N_("Not a meeting number"),
    "bad_tag": N_("Not a valid tag"), "too_long": N_("Too long"), "model_missing": N_("No process model for it"),
    "bad_file": N_("The file is not an Excel workbook (.xlsx) that can be read"), "empty": N_("No directives found"),
    "too_many_rows": N_("Too many rows in one file"), "unknown_header": N_("Unknown column header"),
    "duplicate_header": N_("The same column appears twice"), "missing_column": N_("A required column is missing"),
    "launch_failed": N_("It could not be launched"),
}
ROW_WORDS = {"valid": N_("Valid"), "invalid": N_("Invalid"), "imported": N_("Imported"), "launched": N_("Launched"),
             "not_imported": N_("Not imported"), "launch_failed": N_("Launch failed")}


@dataclass(frozen=True)
class JobView:
    """What the job's pages show: the row, with this node's fresher progress when it is the one running it."""

    id: str
    filename: str
    phase: str
    stage: str
    done: int
    total: int
    error: str | None
    report: ImportReport | None


def _view(job: import_jobs.ImportJob) -> JobView:
    live = import_jobs.live(job.id) if job.phase in RUNNING else None
    stage, done, total = (live.stage, live.done, live.total) if live else (job.stage, job.done, job.total)
    return JobView(job.id, job.filename, job.phase, stage, done, total, job.error, job.import_report)


def _job(request: Request, job_id: str, owner_id: int) -> import_jobs.ImportJob:
    with request.app.state.tansiq.db.transaction() as session:
        return import_jobs.get(session, job_id[:40], owner_id)


def _node() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _create_job(request: Request, owner_id: int, upload_file: UploadFile, season: int | None) -> str:
    """The job and its workbook (in the file store, the same transaction); off the event loop, as it hashes
    and writes up to 20 MB."""
    state = request.app.state.tansiq
    with state.db.transaction() as session:
        return import_jobs.create(session, state.settings.home, owner_id, (upload_file.filename or "")[:200],
                                  upload_file.file, season, max_bytes=directive_import.MAX_BYTES,
                                  backend=state.settings.files_backend, node=_node()).id


def _start(request: Request, job_id: str, actor: str, *, dry_run: bool) -> None:
    state = request.app.state.tansiq
    thread = threading.Thread(target=import_jobs.run, args=(state.db, state.settings.home, job_id, actor),
                              kwargs={"dry_run": dry_run, "importer": directive_import.import_directives},
                              name=f"web-import-{job_id[:6]}", daemon=True)
    thread.start()


def _importer(request: Request) -> Any:
    user = require_user(request)
    access.require(user, "directive.create")
    return user


# --- the upload page --------------------------------------------------------------------------------------

def _upload_page(request: Request, *, error: TansiqError | None = None) -> Response:
    with request.app.state.tansiq.db.reading() as session:
        seasons_list = list(session.scalars(select(Season).order_by(Season.hijri_year.desc())))
    return render(request, "import.html", {"columns": directive_import.COLUMNS, "seasons": seasons_list,
                                           "error": form_errors(request, error, UPLOAD_TARGETS) if error else None},
                  status=422 if error else 200)


@router.get("/import")
def upload_page(request: Request) -> Response:
    _importer(request)
    return _upload_page(request)


@router.get("/import/template.xlsx")
def template(request: Request, lang: str = "ar") -> Response:
    _importer(request)
    if lang not in i18n.LANGUAGES:
        raise NotFound("the template is in ar or en")
    with request.app.state.tansiq.db.reading() as session:
        content = directive_import.template(session, lang)
    return Response(content, media_type=XLSX, headers={
        "Content-Disposition": content_disposition(f"tansiq-directives-template-{lang}.xlsx"),
        "Cache-Control": "private, no-store"})


@router.post("/import")
async def upload(request: Request) -> Response:
    user = _importer(request)
    form = await form_of(request)
    upload_file = form.get("file")
    season = str(form.get("season") or "")
    try:
        if not isinstance(upload_file, UploadFile) or not upload_file.filename:
            raise InvalidInput(N_("choose the workbook (.xlsx) to import"))
        job_id = await run_in_threadpool(_create_job, request, user.id, upload_file,
                                         int(season) if season.isdigit() else None)
    except InvalidInput as exc:
        return _upload_page(request, error=on_fields(exc, {exc.message_id: "file"}))
    except TansiqError as exc:
        return _upload_page(request, error=exc)
    _start(request, job_id, user.username, dry_run=True)
    return redirect(f"/import/{job_id}")


# --- one job: progress, report, choice ----------------------------------------------------------------------

@dataclass(frozen=True)
class ProblemKind:
    """Problems of one kind in one column, for the summary of a big report."""

    code: str
    header_ar: str
    header_en: str
    column: str
    count: int
    first_row: int


def problem_kinds(errors: list[RowError]) -> list[ProblemKind]:
    grouped: dict[tuple[str, str, str], list[RowError]] = {}
    for error in errors:
        grouped.setdefault((error.code, error.field, error.column), []).append(error)
    kinds = [ProblemKind(code, same[0].header_ar, same[0].header_en, column, len(same), min(e.row for e in same))
             for (code, _field, column), same in grouped.items()]
    return sorted(kinds, key=lambda k: (-k.count, k.first_row))


def _job_context(job: JobView) -> dict[str, Any]:
    report = job.report
    errors: list[RowError] = report.errors if report else []
    return {"job": job, "report": report, "errors": errors[:ERRORS_SHOWN], "more_errors": max(0, len(errors)
                                                                                               - ERRORS_SHOWN),
            "rows": report.rows[:ROWS_SHOWN] if report else [],
            "kinds": problem_kinds(errors) if len(errors) >= SUMMARY_FROM else [], "stage_words": STAGE_WORDS,
            "error_words": ERROR_WORDS, "row_words": ROW_WORDS, "running": job.phase in RUNNING,
            "refused": bool(report and job.phase == DONE and report.imported == 0 and report.errors)}


@router.get("/import/{job_id}")
def job_page(request: Request, job_id: str) -> Response:
    user = _importer(request)
    job = _view(_job(request, job_id, user.id))
    status = 422 if job.phase == FAILED else 200
    return render(request, "import_job.html", _job_context(job), status=status)


@router.get("/import/{job_id}/progress")
def job_progress(request: Request, job_id: str) -> Response:
    """The progress bar, polled by htmx; once the step has finished, the whole page is reloaded."""
    user = _importer(request)
    job = _view(_job(request, job_id, user.id))
    if job.phase in RUNNING and is_htmx(request):
        return render(request, "partials/import_progress.html", _job_context(job))
    return redirect(f"/import/{job.id}", htmx=is_htmx(request))


@router.post("/import/{job_id}/run")
async def run_import(request: Request, job_id: str) -> Response:
    user = _importer(request)
    form = await form_of(request)
    mode = str(form.get("mode") or "")
    if mode not in directive_import.MODES:
        raise InvalidInput("choose how to import: every valid row, or only if every row is valid")
    launch = form.get("launch") == "yes"
    if launch:
        access.require(user, "directive.launch")
    with request.app.state.tansiq.db.transaction() as session:
        job = import_jobs.get(session, job_id[:40], user.id)
        import_jobs.claim_for_import(session, job, mode, launch)
    _start(request, job.id, user.username, dry_run=False)
    return redirect(f"/import/{job.id}")
