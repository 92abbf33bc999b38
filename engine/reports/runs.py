"""Report runs: one row per production of a report (by a Prefect flow, the CLI or the API), with its
period, status, archived files and, when Prefect ran it, the flow run's id.

    queued ──► running ──► succeeded
  (asked to Prefect)  └──► failed (error kept)

A run asked for through Prefect (the API's or the page's "run now") is recorded as queued with its flow
run's id before the flow starts, so the user sees it at once; the flow moves it to running.

`files` lists what was archived; the content is in the file store under its sha256 (`archive.locate`), and
the path, relative to the reports folder (see `settings.archive_dir`), names it (and holds it, for runs
archived with the disk backend):
    [{"format": "pdf", "language": "ar", "path": "daily/2026-05-20/run-000012/daily-2026-05-20.ar.pdf",
      "bytes": 48211, "sha256": "..."}, ...]
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import Date

from engine.foundation import clock
from engine.foundation.errors import N_, InvalidInput, NotFound
from engine.reports.common import KINDS
from engine.storage import audit
from engine.storage.db import Base, JSONType, UTCDateTime

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED)
TRIGGERS = ("schedule", "flow", "cli", "api", "web")


class ReportRun(Base):
    __tablename__ = "report_run"
    __table_args__ = (Index("ix_report_run_kind_period", "kind", "period_start", "period_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # daily | periodic | seasonal
    period_start: Mapped[date] = mapped_column(Date)  # local days, both included
    period_end: Mapped[date] = mapped_column(Date)
    season_id: Mapped[int | None] = mapped_column(ForeignKey("season.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)  # running | succeeded | failed
    trigger: Mapped[str] = mapped_column(String(20))  # schedule | flow | cli | api
    requested_by: Mapped[str] = mapped_column(String(200))
    formats: Mapped[list[str]] = mapped_column(JSONType)  # asked for, e.g. ["pdf", "xlsx"]
    languages: Mapped[list[str]] = mapped_column(JSONType)  # asked for, e.g. ["ar", "en"]
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # headline figures, for lists
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)

    def file(self, fmt: str, language: str | None = None) -> dict[str, Any] | None:
        """The archived file of a format (and language; the first one when None)."""
        for entry in self.files or []:
            if entry["format"] == fmt and (language is None or entry.get("language") == language):
                return entry
        return None


def subject(run_id: int) -> str:
    return f"report_run:{run_id}"


def start(session: Session, kind: str, period_start: date, period_end: date, *, season_id: int | None,
          trigger: str, requested_by: str, formats: list[str], languages: list[str],
          prefect_flow_run_id: str | None = None, status: str = RUNNING) -> ReportRun:
    if kind not in KINDS:
        raise InvalidInput(N_("unknown report kind %(value)s (known: %(known)s)"),
                           params={"value": repr(kind), "known": ", ".join(KINDS)})
    if trigger not in TRIGGERS:
        raise InvalidInput(N_("unknown trigger %(value)s (known: %(known)s)"),
                           params={"value": repr(trigger), "known": ", ".join(TRIGGERS)})
    if status not in (QUEUED, RUNNING):
        raise InvalidInput(N_("a run starts queued or running, not %(value)s"), params={"value": repr(status)})
    run = ReportRun(kind=kind, period_start=period_start, period_end=period_end, season_id=season_id,
                    status=status, trigger=trigger, requested_by=requested_by[:200], formats=list(formats),
                    languages=list(languages), files=[], prefect_flow_run_id=prefect_flow_run_id,
                    started_at=clock.now())
    session.add(run)
    session.flush()
    return run


def begin(session: Session, run_id: int, prefect_flow_run_id: str | None) -> ReportRun:
    """The flow asked for by "run now" starts on the run recorded for it. Its own retry may start it again;
    a run that belongs to another flow run, or has succeeded, is refused."""
    run = get(session, run_id)
    if run.status == SUCCEEDED or (run.prefect_flow_run_id and prefect_flow_run_id
                                   and run.prefect_flow_run_id != prefect_flow_run_id):
        raise InvalidInput(N_("report run %(run)s is %(status)s and belongs to another flow run"),
                           params={"run": str(run_id), "status": run.status})
    run.status, run.error, run.finished_at = RUNNING, None, None
    run.prefect_flow_run_id = prefect_flow_run_id or run.prefect_flow_run_id
    session.flush()
    return run


def attach_flow_run(session: Session, run_id: int, prefect_flow_run_id: str) -> None:
    get(session, run_id).prefect_flow_run_id = prefect_flow_run_id
    session.flush()


def succeed(session: Session, run_id: int, files: list[dict[str, Any]], summary: dict[str, Any]) -> ReportRun:
    run = get(session, run_id)
    run.status, run.files, run.summary, run.finished_at = SUCCEEDED, files, summary, clock.now()
    audit.record(session, run.requested_by, "report.generated", subject(run.id), {
        "kind": run.kind, "period": [run.period_start.isoformat(), run.period_end.isoformat()],
        "files": [{"path": f["path"], "sha256": f["sha256"]} for f in files],
        "prefect_flow_run_id": run.prefect_flow_run_id,
    })
    session.flush()
    return run


def fail(session: Session, run_id: int, error: str) -> ReportRun:
    run = get(session, run_id)
    run.status, run.error, run.finished_at = FAILED, error[:10_000], clock.now()
    audit.record(session, run.requested_by, "report.failed", subject(run.id),
                 {"kind": run.kind, "error": error[:500], "prefect_flow_run_id": run.prefect_flow_run_id})
    session.flush()
    return run


def get(session: Session, run_id: int) -> ReportRun:
    run = session.get(ReportRun, run_id)
    if run is None:
        raise NotFound(N_("no report run %(run)s"), params={"run": str(run_id)})
    return run


def count_runs(session: Session, *, kind: str | None = None, status: str | None = None) -> int:
    query = select(func.count()).select_from(ReportRun)
    if kind is not None:
        query = query.where(ReportRun.kind == kind)
    if status is not None:
        query = query.where(ReportRun.status == status)
    return session.execute(query).scalar_one()


def list_runs(session: Session, *, kind: str | None = None, status: str | None = None, limit: int = 50,
              offset: int = 0) -> list[ReportRun]:
    if kind is not None and kind not in KINDS:
        raise InvalidInput(N_("unknown report kind %(value)s (known: %(known)s)"),
                           params={"value": repr(kind), "known": ", ".join(KINDS)})
    if status is not None and status not in STATUSES:
        raise InvalidInput(N_("unknown status %(value)s (known: %(known)s)"),
                           params={"value": repr(status), "known": ", ".join(STATUSES)})
    query = select(ReportRun).order_by(ReportRun.started_at.desc(), ReportRun.id.desc()).limit(limit).offset(offset)
    if kind is not None:
        query = query.where(ReportRun.kind == kind)
    if status is not None:
        query = query.where(ReportRun.status == status)
    return list(session.scalars(query))
