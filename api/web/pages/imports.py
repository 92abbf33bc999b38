"""The Excel import (issue 9): the template (Arabic or English), an upload that is first only validated
(every problem by row and column, in the user's language), then the user's choice: import every valid row,
or import only if every row is valid; optionally launch what was imported.

A workbook of 10,000 rows takes a few seconds, so each step runs in a background thread of the server
process as an *import job*, and the page polls its progress with htmx (a `<progress>` bar; without
scripts the page refreshes itself). The import itself is `engine.directive_import.import_directives` in
one transaction: the job reports "done" only after that transaction committed.

Jobs live in the server's memory (one process, as `tansiq serve` runs it): each belongs to the user who
uploaded it (anyone else is told it does not exist), is run at most once, and is forgotten after two hours.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.datastructures import UploadFile

from api.problems import content_disposition
from api.web import i18n
from api.web.core import WebRoute, is_htmx, redirect, render
from api.web.labels import N_
from api.web.session import form_of, require_user
from engine import access, directive_import
from engine.db import Database
from engine.directive_import import ImportReport, RowError
from engine.errors import Conflict, InvalidInput, NotFound, TansiqError
from engine.logs import get_logger
from engine.seasons import Season

router = APIRouter(route_class=WebRoute)
log = get_logger(__name__)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JOB_TTL_SECONDS = 2 * 3600
MAX_JOBS = 50  # running at once
MAX_HELD_BYTES = 200_000_000  # workbooks kept between validation and import, all jobs together
ERRORS_SHOWN = 200
SUMMARY_FROM = 20  # problems: from this many on, a table of them by kind and column comes first
ROWS_SHOWN = 200
VALIDATING, VALIDATED, IMPORTING, DONE, FAILED = "validating", "validated", "importing", "done", "failed"
RUNNING = (VALIDATING, IMPORTING)
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


@dataclass
class ImportJob:
    """One uploaded workbook: validated first, imported at most once, by its owner only."""

    id: str
    owner_id: int
    filename: str
    data: bytes
    season: int | None
    created: float = field(default_factory=time.monotonic)
    phase: str = VALIDATING
    stage: str = "start"
    done: int = 0
    total: int = 0
    mode: str | None = None
    launch: bool = False
    report: ImportReport | None = None
    error: str | None = None

    def hear(self, stage: str, done: int, total: int) -> None:
        """The engine's progress callback."""
        self.stage, self.done, self.total = stage, done, total


class ImportJobs:
    """The server's import jobs (in memory, thread-safe)."""

    def __init__(self) -> None:
        self._jobs: dict[str, ImportJob] = {}
        self._lock = threading.Lock()

    def add(self, owner_id: int, filename: str, data: bytes, season: int | None) -> ImportJob:
        with self._lock:
            self._forget_old()
            if sum(job.phase in RUNNING for job in self._jobs.values()) >= MAX_JOBS:
                raise Conflict("too many imports are running; try again in a minute")
            job = ImportJob(secrets.token_urlsafe(16), owner_id, filename, data, season)
            self._jobs[job.id] = job
            return job

    def get(self, job_id: str, owner_id: int) -> ImportJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.owner_id != owner_id:
            raise NotFound("no such import; it may have expired, upload the workbook again")
        return job

    def claim_for_import(self, job: ImportJob, mode: str, launch: bool) -> None:
        """Move a validated job to importing, once (a second click is refused)."""
        with self._lock:
            if job.phase != VALIDATED:
                raise Conflict("this workbook was imported already, or is still being checked")
            job.phase, job.mode, job.launch, job.stage, job.done, job.total = IMPORTING, mode, launch, "start", 0, 0

    def _forget_old(self) -> None:
        now = time.monotonic()
        for job_id in [j.id for j in self._jobs.values() if now - j.created > JOB_TTL_SECONDS
                       and j.phase not in RUNNING]:
            del self._jobs[job_id]
        while len(self._jobs) >= MAX_JOBS * 4 or sum(len(j.data) for j in self._jobs.values()) > MAX_HELD_BYTES:
            oldest = min((j for j in self._jobs.values() if j.phase not in RUNNING), key=lambda j: j.created,
                         default=None)
            if oldest is None:
                break
            del self._jobs[oldest.id]


def jobs_of(request: Request) -> ImportJobs:
    jobs = getattr(request.app.state, "web_import_jobs", None)
    if jobs is None:
        jobs = request.app.state.web_import_jobs = ImportJobs()
    return jobs


def run_job(db: Database, job: ImportJob, actor: str, *, dry_run: bool) -> None:
    """Validate (dry run) or import in one transaction; the job says `done` only after the commit.

    A dry run writes nothing, so it reads (on SQLite a writing transaction would hold the database's
    write lock for the seconds a big workbook takes to check)."""
    try:
        with db.reading() if dry_run else db.transaction() as session:
            report = directive_import.import_directives(
                session, job.data, actor, mode=job.mode or directive_import.ALL_OR_NOTHING, launch=job.launch,
                dry_run=dry_run, season_year=job.season, progress=job.hear)
            job.hear("commit", job.done, job.total)
        job.report = report
        job.phase = VALIDATED if dry_run else DONE
    except TansiqError as exc:
        job.error, job.phase = exc.message, FAILED
    except Exception:  # the page must not poll forever; the log keeps the details
        log.exception("web import job failed", job=job.id)
        job.error, job.phase = "the import failed unexpectedly; nothing was imported", FAILED
    finally:
        if job.phase in (DONE, FAILED):
            job.data = b""


def _start(request: Request, job: ImportJob, actor: str, *, dry_run: bool) -> None:
    thread = threading.Thread(target=run_job, args=(request.app.state.tansiq.db, job, actor),
                              kwargs={"dry_run": dry_run}, name=f"web-import-{job.id[:6]}", daemon=True)
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
                                           "error": error.message if error else None},
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
            raise InvalidInput("choose the workbook (.xlsx) to import")
        data = await upload_file.read(directive_import.MAX_BYTES + 1)
        if len(data) > directive_import.MAX_BYTES:
            raise InvalidInput(f"a workbook may be at most {directive_import.MAX_BYTES:,} bytes")
        if not data:
            raise InvalidInput("the file is empty")
        job = jobs_of(request).add(user.id, upload_file.filename[:200], data,
                                   int(season) if season.isdigit() else None)
    except TansiqError as exc:
        return _upload_page(request, error=exc)
    _start(request, job, user.username, dry_run=True)
    return redirect(f"/import/{job.id}")


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


def _job_context(job: ImportJob) -> dict[str, Any]:
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
    job = jobs_of(request).get(job_id[:40], user.id)
    status = 422 if job.phase == FAILED else 200
    return render(request, "import_job.html", _job_context(job), status=status)


@router.get("/import/{job_id}/progress")
def job_progress(request: Request, job_id: str) -> Response:
    """The progress bar, polled by htmx; once the step has finished, the whole page is reloaded."""
    user = _importer(request)
    job = jobs_of(request).get(job_id[:40], user.id)
    if job.phase in RUNNING and is_htmx(request):
        return render(request, "partials/import_progress.html", _job_context(job))
    return redirect(f"/import/{job.id}", htmx=is_htmx(request))


@router.post("/import/{job_id}/run")
async def run_import(request: Request, job_id: str) -> Response:
    user = _importer(request)
    form = await form_of(request)
    job = jobs_of(request).get(job_id[:40], user.id)
    mode = str(form.get("mode") or "")
    if mode not in directive_import.MODES:
        raise InvalidInput("choose how to import: every valid row, or only if every row is valid")
    launch = form.get("launch") == "yes"
    if launch:
        access.require(user, "directive.launch")
    jobs_of(request).claim_for_import(job, mode, launch)
    _start(request, job, user.username, dry_run=False)
    return redirect(f"/import/{job.id}")
