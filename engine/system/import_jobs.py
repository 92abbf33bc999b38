"""Excel import jobs (web UI): one row per uploaded workbook, so any API node can show its page and progress.

    validating ──► validated ──► importing ──► done
         └──────────┴──────────────┴─────────► failed (error kept; "interrupted" when its node stopped)

The workbook is kept in the file store (`engine.storage.file_store`) until the job is done or failed. The node
running a step writes its progress and a heartbeat (`updated_at`) to the row; a running job whose
heartbeat is older than INTERRUPTED_AFTER is closed as failed ("interrupted"). Nothing was half-written:
an import is one transaction, and the job is marked done inside that transaction only if it is still
`importing` (so an import closed as interrupted meanwhile rolls back instead of committing).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.directives.directive_import import ImportReport, RowError, RowResult
from engine.foundation import clock
from engine.foundation.errors import N_, Conflict, InvalidInput, NotFound
from engine.storage import file_store
from engine.storage.db import Base, Database, GzipJSON, UTCDateTime, rowcount

VALIDATING, VALIDATED, IMPORTING, DONE, FAILED = "validating", "validated", "importing", "done", "failed"
RUNNING = (VALIDATING, IMPORTING)
INTERRUPTED_AFTER = timedelta(minutes=5)
HEARTBEAT_SECONDS = 1.0  # progress is written at most this often
JOB_TTL = timedelta(hours=2)  # finished jobs are forgotten after this
MAX_RUNNING = 50
INTERRUPTED = "the server handling this import stopped before it finished; nothing was imported, upload it again"


class ImportJob(Base):
    __tablename__ = "import_job"
    __table_args__ = (Index("ix_import_job_phase_updated", "phase", "updated_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str | None] = mapped_column(String(64))  # the workbook in the file store, until finished
    size: Mapped[int] = mapped_column(Integer, default=0)
    season: Mapped[int | None] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(20), default=VALIDATING)
    stage: Mapped[str] = mapped_column(String(20), default="start")
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    mode: Mapped[str | None] = mapped_column(String(20))
    launch: Mapped[bool] = mapped_column(Boolean, default=False)
    report: Mapped[dict[str, Any] | None] = mapped_column(GzipJSON)
    error: Mapped[str | None] = mapped_column(Text)
    node: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def import_report(self) -> ImportReport | None:
        return report_from_json(self.report) if self.report is not None else None


# --- reports as JSON ------------------------------------------------------------------------------------

def report_to_json(report: ImportReport) -> dict[str, Any]:
    return asdict(report)


def report_from_json(data: dict[str, Any]) -> ImportReport:
    rows = [RowResult(**{**row, "errors": [RowError(**e) for e in row["errors"]]}) for row in data["rows"]]
    return ImportReport(**{**data, "rows": rows, "file_errors": [RowError(**e) for e in data["file_errors"]]})


# --- creating and finding ---------------------------------------------------------------------------------

def create(session: Session, home: Path, owner_id: int, filename: str, source: BinaryIO, season: int | None, *,
           max_bytes: int, backend: str | None = None, node: str | None = None) -> ImportJob:
    """A new job holding the uploaded workbook (in the file store, in this transaction)."""
    forget_old(session)
    running = session.execute(select(func.count()).select_from(ImportJob)
                              .where(ImportJob.phase.in_(RUNNING))).scalar_one()
    if running >= MAX_RUNNING:
        raise Conflict("too many imports are running; try again in a minute")
    source = file_store.seekable(source)
    sha256, size = file_store.digest(source, max_bytes)
    if size > max_bytes:
        raise InvalidInput(N_("a workbook may be at most %(limit)s bytes"), params={"limit": max_bytes})
    if not size:
        raise InvalidInput(N_("the file is empty"))
    file_store.put(session, source, home=home, backend=backend, sha256=sha256)
    now = clock.now()
    job = ImportJob(id=secrets.token_urlsafe(16), owner_id=owner_id, filename=filename[:200], sha256=sha256,
                    size=size, season=season, phase=VALIDATING, stage="start", done=0, total=0, launch=False,
                    node=(node or "")[:100] or None, created_at=now, updated_at=now)
    session.add(job)
    session.flush()
    return job


def get(session: Session, job_id: str, owner_id: int) -> ImportJob:
    """The owner's job (anyone else is told it does not exist); a running job without a heartbeat for
    INTERRUPTED_AFTER is closed as interrupted first."""
    job = session.get(ImportJob, job_id[:40]) if job_id else None
    if job is None or job.owner_id != owner_id:
        raise NotFound("no such import; it may have expired, upload the workbook again")
    if job.phase in RUNNING and live(job.id) is None and job.updated_at < clock.now() - INTERRUPTED_AFTER:
        close_interrupted(session, job)
    return job


def close_interrupted(session: Session, job: ImportJob) -> None:
    workbook = job.sha256
    changed = session.execute(update(ImportJob).where(
        ImportJob.id == job.id, ImportJob.phase == job.phase, ImportJob.updated_at == job.updated_at,
    ).values(phase=FAILED, error=INTERRUPTED, sha256=None, updated_at=clock.now()))
    if rowcount(changed) == 0:
        session.refresh(job)
        return
    release_workbook(session, workbook)
    _set(job, phase=FAILED, error=INTERRUPTED, sha256=None)


def release_workbook(session: Session, sha256: str | None) -> None:
    """Drop a finished job's workbook from the database unless something else stores the same content
    (evidence, minutes, another job, a report run): workbooks of up to 20 MB must not pile up."""
    if sha256 is None or _still_used(session, sha256):
        return
    file_store.remove_database(session, sha256)


def _still_used(session: Session, sha256: str) -> bool:
    from engine.directives.evidence import Evidence
    from engine.directives.meetings import MeetingDocument
    from engine.reports.runs import ReportRun

    for column in (Evidence.sha256, MeetingDocument.sha256, ImportJob.sha256):
        if session.scalar(select(column).where(column == sha256).limit(1)) is not None:
            return True
    return any(sha256 in str(files) for files in session.scalars(select(ReportRun.files)))


def _set(job: ImportJob, **values: Any) -> None:
    from sqlalchemy.orm.attributes import set_committed_value

    for name, value in values.items():
        set_committed_value(job, name, value)


def claim_for_import(session: Session, job: ImportJob, mode: str, launch: bool) -> None:
    """Move a validated job to importing, once, whichever node is asked (a second click is refused)."""
    changed = session.execute(update(ImportJob).where(ImportJob.id == job.id, ImportJob.phase == VALIDATED).values(
        phase=IMPORTING, mode=mode, launch=launch, stage="start", done=0, total=0, updated_at=clock.now()))
    if rowcount(changed) != 1:
        raise Conflict("this workbook was imported already, or is still being checked")


def forget_old(session: Session) -> None:
    """Finished jobs older than JOB_TTL go (their workbooks went when they finished)."""
    cutoff = clock.now() - JOB_TTL
    old = list(session.scalars(select(ImportJob).where(ImportJob.phase.not_in(RUNNING),
                                                        ImportJob.created_at < cutoff).limit(500)))
    for job in old:
        session.delete(job)


# --- progress -------------------------------------------------------------------------------------------

class Progress:
    """The engine's progress callback for one job: kept in memory for this node's pages and written to the
    row (with the heartbeat) at most every HEARTBEAT_SECONDS, except on SQLite while the import's own
    transaction holds the write lock (the row then shows the start of the step until it commits)."""

    def __init__(self, db: Database, job_id: str, *, write: bool = True) -> None:
        self.db, self.job_id, self.write = db, job_id, write
        self.stage, self.done, self.total = "start", 0, 0
        self._last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, total
        if self.write and time.monotonic() - self._last >= HEARTBEAT_SECONDS:
            self.beat()

    def beat(self) -> None:
        self._last = time.monotonic()
        with self.db.transaction() as session:
            session.execute(update(ImportJob).where(ImportJob.id == self.job_id, ImportJob.phase.in_(RUNNING))
                            .values(stage=self.stage, done=self.done, total=self.total, updated_at=clock.now()))


_live: dict[str, Progress] = {}
_live_lock = threading.Lock()


def live(job_id: str) -> Progress | None:
    """This node's in-memory progress of a job it is running (fresher than the row)."""
    with _live_lock:
        return _live.get(job_id)


def _track(progress: Progress | None, job_id: str) -> None:
    with _live_lock:
        if progress is None:
            _live.pop(job_id, None)
        else:
            _live[job_id] = progress


# --- running a step -----------------------------------------------------------------------------------

def run(db: Database, home: Path, job_id: str, actor: str, *, dry_run: bool,
        importer: Any) -> None:
    """Validate (dry run) or import the job's workbook with `importer` (directive_import.import_directives);
    the row says done only in the import's own transaction. Errors are kept in the row (never raised)."""
    from engine.foundation.errors import TansiqError
    from engine.foundation.logs import get_logger

    progress = Progress(db, job_id, write=dry_run or not db.is_sqlite)
    _track(progress, job_id)
    try:
        with db.reading() as session:
            job = session.get(ImportJob, job_id)
            if job is None or job.phase not in RUNNING or job.sha256 is None:
                return  # closed meanwhile (as interrupted): nothing to do
            data = file_store.read_bytes(session, home, job.sha256)
            mode, launch, season = job.mode, job.launch, job.season
        if dry_run:
            with db.reading() as session:
                report = importer(session, data, actor, mode=mode or "all_or_nothing", launch=launch, dry_run=True,
                                  season_year=season, progress=progress)
            _finish(db, job_id, VALIDATING, VALIDATED, report)
        else:
            with db.transaction() as session:
                report = importer(session, data, actor, mode=mode or "all_or_nothing", launch=launch,
                                  dry_run=False, season_year=season, progress=progress)
                progress.stage = "commit"
                _close(session, job_id, IMPORTING, DONE, report=report_to_json(report))
    except TansiqError as exc:
        _fail(db, job_id, exc.message)
    except Exception:  # the page must not poll forever; the log keeps the details
        get_logger(__name__).exception("web import job failed", job=job_id)
        _fail(db, job_id, "the import failed unexpectedly; nothing was imported")
    finally:
        _track(None, job_id)


def _finish(db: Database, job_id: str, expected: str, phase: str, report: ImportReport) -> None:
    with db.transaction() as session:
        _close(session, job_id, expected, phase, report=report_to_json(report))


def _close(session: Session, job_id: str, expected: str, phase: str, **values: Any) -> None:
    """Move the job on, unless it was closed (as interrupted) meanwhile: then this step's work is undone."""
    workbook = session.scalar(select(ImportJob.sha256).where(ImportJob.id == job_id))
    if phase in (DONE, FAILED):
        values["sha256"] = None
    changed = session.execute(update(ImportJob).where(ImportJob.id == job_id, ImportJob.phase == expected)
                              .values(phase=phase, stage="commit", updated_at=clock.now(), **values))
    if rowcount(changed) != 1:
        raise Conflict("this import was closed as interrupted meanwhile; nothing was imported")
    if phase in (DONE, FAILED):
        release_workbook(session, workbook)


def _fail(db: Database, job_id: str, message: str) -> None:
    with db.transaction() as session:
        workbook = session.scalar(select(ImportJob.sha256).where(ImportJob.id == job_id))
        changed = session.execute(update(ImportJob).where(ImportJob.id == job_id, ImportJob.phase.in_(RUNNING))
                                  .values(phase=FAILED, error=message, sha256=None, updated_at=clock.now()))
        if rowcount(changed):
            release_workbook(session, workbook)


TABLES = (ImportJob.__table__,)
