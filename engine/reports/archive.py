"""Producing a report end to end, without Prefect: resolve the period, compute the data, render each
format and language, archive the files, and record the report run. The Prefect flows (workflows/)
run the same steps as tasks; the CLI and the API call `produce` directly.

Archive layout, under the reports folder (TANSIQ_REPORTS_DIR, default $TANSIQ_HOME/reports):

    daily/2026-05-20/run-000012/daily-2026-05-20.ar.pdf
    periodic/2026-05-14_2026-05-20/run-000013/periodic-2026-05-14_2026-05-20.en.xlsx
    seasonal/1447/run-000014/seasonal-1447.json

With the database files backend (the default) a run's files go to the file store (`engine.storage.file_store`)
in the transaction that records the run as succeeded; the layout above then only names them. With the
disk backend they are written to a hidden staging folder and renamed into place at the end, so a run
folder holds either all of its files or none.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from engine.calendar import seasons
from engine.foundation import clock
from engine.foundation.errors import N_, InvalidInput, NotFound
from engine.foundation.settings import get_settings
from engine.reports import runs
from engine.reports.common import DAILY, KINDS, PERIODIC, SEASONAL, as_dict
from engine.reports.daily import daily
from engine.reports.periodic import periodic
from engine.reports.seasonal import seasonal
from engine.reports.settings import FORMATS, LANGUAGES, ReportSettings, get_report_settings
from engine.storage import file_store
from engine.storage.db import Database, get_database

# The days a report may cover: those of the Umm al-Qura calendar (1343-1500 AH) its Hijri dates come from.
FIRST_DAY, LAST_DAY = date(1924, 8, 1), date(2077, 11, 16)
EXTENSIONS = {"pdf": "pdf", "html": "html", "xlsx": "xlsx", "csv": "csv", "json": "json"}
MEDIA_TYPES = {
    "pdf": "application/pdf", "html": "text/html; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8", "json": "application/json",
}


@dataclass(frozen=True)
class ReportRequest:
    """Which report: its kind and period (local days, both included), and for seasonal its season."""

    kind: str
    start: date
    end: date
    season_year: int | None = None
    formats: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.kind == SEASONAL:
            return str(self.season_year)
        if self.start == self.end:
            return self.start.isoformat()
        return f"{self.start.isoformat()}_{self.end.isoformat()}"

    def file_name(self, fmt: str, language: str | None) -> str:
        middle = f".{language}" if language else ""
        return f"{self.kind}-{self.label}{middle}.{EXTENSIONS[fmt]}"

    def outputs(self) -> list[tuple[str, str | None]]:
        """(format, language) pairs to render; JSON data has no language."""
        pairs: list[tuple[str, str | None]] = []
        for fmt in self.formats:
            if fmt == "json":
                pairs.append((fmt, None))
            else:
                pairs.extend((fmt, language) for language in self.languages)
        return pairs


def resolve(session: Session, kind: str, *, day: date | None = None, start: date | None = None,
            end: date | None = None, season_year: int | None = None, formats: list[str] | None = None,
            languages: list[str] | None = None, reference: datetime | None = None,
            settings: ReportSettings | None = None) -> ReportRequest:
    """Fill in the defaults: the last complete local day before `reference` (now) for a daily report,
    the 7 days ending then for a periodic one, and the season of that day for a seasonal one."""
    settings = settings or get_report_settings()
    if kind not in KINDS:
        raise InvalidInput(N_("unknown report kind %(value)s (known: %(known)s)"),
                           params={"value": repr(kind), "known": ", ".join(KINDS)})
    formats = list(formats or settings.formats)
    languages = list(languages or settings.languages)
    for fmt in formats:
        if fmt not in FORMATS:
            raise InvalidInput(N_("unknown format %(value)s (known: %(known)s)"),
                               params={"value": repr(fmt), "known": ", ".join(FORMATS)})
    for language in languages:
        if language not in LANGUAGES:
            raise InvalidInput(N_("unknown language %(value)s (known: %(known)s)"),
                               params={"value": repr(language), "known": ", ".join(LANGUAGES)})
    for given in (day, start, end):
        if given is not None and not FIRST_DAY <= given <= LAST_DAY:
            raise InvalidInput(N_("%(date)s is outside the Umm al-Qura calendar the reports are dated in "
                                  "(%(first)s to %(last)s)"),
                               params={"date": given.isoformat(), "first": FIRST_DAY.isoformat(),
                                       "last": LAST_DAY.isoformat()})
    yesterday = (reference or clock.now()).astimezone(settings.zone).date() - timedelta(days=1)
    if kind == DAILY:
        if start is not None or end is not None:
            raise InvalidInput("a daily report takes one day (--date), not a range")
        day = day or yesterday
        return ReportRequest(DAILY, day, day, season_year, formats, languages)
    if kind == PERIODIC:
        if day is not None:
            raise InvalidInput("a periodic report takes a range (--from, --to), not one day")
        end = end or yesterday
        start = start or end - timedelta(days=6)
        if end < start:
            raise InvalidInput("the period ends before it starts")
        return ReportRequest(PERIODIC, start, end, season_year, formats, languages)
    season = (seasons.get_season(session, season_year) if season_year
              else seasons.season_for(session, datetime.combine(day or yesterday, datetime.min.time())))
    return ReportRequest(SEASONAL, season.starts_on, season.ends_on, season.hijri_year, formats, languages)


def compute(session: Session, request: ReportRequest) -> Any:
    season = seasons.get_season(session, request.season_year) if request.season_year else None
    if request.kind == DAILY:
        return daily(session, request.start, season)
    if request.kind == PERIODIC:
        return periodic(session, request.start, request.end, season)
    if season is None:
        raise InvalidInput("a seasonal report needs its season")
    return seasonal(session, season)


def render(report: Any, fmt: str, language: str | None, settings: ReportSettings | None = None) -> bytes:
    if fmt == "json":
        return json.dumps(as_dict(report), ensure_ascii=False, indent=1).encode()
    if fmt == "html":
        from engine.reports.render_html import render_html

        return render_html(report, language or "ar", settings).encode()
    if fmt == "pdf":
        from engine.reports.render_pdf import render_pdf

        return render_pdf(report, language or "ar", settings)
    if fmt == "xlsx":
        from engine.reports.render_xlsx import render_xlsx

        return render_xlsx(report, language or "ar", settings)
    if fmt == "csv":
        from engine.reports.render_csv import render_csv

        return render_csv(report, language or "ar", settings)
    raise InvalidInput(N_("unknown format %(value)s"), params={"value": repr(fmt)})


def summary(report: Any) -> dict[str, Any]:
    """Headline figures kept with the run, for lists and artifacts."""
    base = {"kind": report.kind, "period": [report.period.start.isoformat(), report.period.end.isoformat()],
            "hijri": [report.period.hijri_start.iso, report.period.hijri_end.iso],
            "as_of": report.period.as_of.isoformat(), "audit_event_id": report.source.audit_event_id}
    if report.kind == DAILY:
        c = report.counts
        base.update(received=c.received, launched=c.launched, completed=c.completed, cancelled=c.cancelled,
                    open=c.open, overdue=c.overdue, on_time_rate=c.on_time_rate,
                    escalations_raised=c.escalations_raised, escalations_resolved=c.escalations_resolved)
    elif report.kind == PERIODIC:
        base.update(report.totals, on_time_rate=report.on_time_rate,
                    acknowledge_mean_hours=report.acknowledge.mean_hours,
                    acknowledge_p90_hours=report.acknowledge.p90_hours,
                    complete_mean_hours=report.complete.mean_hours, complete_p90_hours=report.complete.p90_hours)
    else:
        t = report.current.totals
        base.update(season=report.season.hijri_year, total=t.total, completed=t.completed, overdue=t.overdue,
                    escalated=t.escalated, on_time_rate=t.on_time_rate,
                    previous_season=report.previous.season.hijri_year if report.previous else None)
    return base


class Archive:
    """The files of one run. With the disk backend they go to a staging folder that is renamed into place
    at the end (a run folder holds all of its files or none); with the database backend (the default) they
    go to the file store at `commit`, in the caller's transaction when it passes its session."""

    def __init__(self, request: ReportRequest, run_id: int, settings: ReportSettings | None = None, *,
                 backend: str | None = None, db: Database | None = None) -> None:
        self.root = (settings or get_report_settings()).archive_dir
        self.relative = Path(request.kind) / request.label / f"run-{run_id:06d}"
        self.final = self.root / self.relative
        self.staging = self.final.parent / f".{self.final.name}.partial"
        self.backend = file_store.backend_or_default(backend)
        self.db = db
        self.entries: list[dict[str, Any]] = []
        self._pending: list[bytes] = []

    def add(self, name: str, fmt: str, language: str | None, content: bytes) -> dict[str, Any]:
        if self.backend == file_store.DISK:
            self.staging.mkdir(parents=True, exist_ok=True)
            (self.staging / name).write_bytes(content)
        else:
            self._pending.append(content)
        entry = {"format": fmt, "language": language or "", "path": str(self.relative / name),
                 "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
        self.entries.append(entry)
        return entry

    def commit(self, session: Session | None = None) -> list[dict[str, Any]]:
        if self.backend == file_store.DATABASE:
            if session is not None:
                self._put(session)
            else:
                with (self.db or get_database()).transaction() as own:
                    self._put(own)
            return self.entries
        if self.final.exists():  # a retried task of the same run: replace what it left
            shutil.rmtree(self.final)
        self.staging.rename(self.final)
        return self.entries

    def _put(self, session: Session) -> None:
        home = get_settings().home
        for entry, content in zip(self.entries, self._pending, strict=True):
            file_store.put(session, content, home=home, backend=file_store.DATABASE, sha256=entry["sha256"])
        self._pending = []

    def discard(self) -> None:
        self._pending = []
        shutil.rmtree(self.staging, ignore_errors=True)


def path_of(entry: dict[str, Any], settings: ReportSettings | None = None) -> Path:
    """The absolute path of an archived file in the reports folder (entries keep paths relative to it); the
    file is there only for runs archived with the disk backend."""
    root = (settings or get_report_settings()).archive_dir
    path = (root / str(entry["path"])).resolve()
    if root not in path.parents:
        raise InvalidInput("an archived file lies outside the reports folder")
    return path


def locate(session: Session, entry: dict[str, Any], settings: ReportSettings | None = None,
           home: Path | None = None) -> file_store.Located:
    """Where an archived file's content is: the file store (database, disk) or the run's folder."""
    found = file_store.locate(session, home or get_settings().home, entry["sha256"], also=path_of(entry, settings))
    if found is None:
        raise NotFound("the archived file is missing")
    return found


@dataclass
class Produced:
    run: runs.ReportRun
    report: Any
    paths: list[Path]


def produce(db: Database, kind: str, *, day: date | None = None, start: date | None = None, end: date | None = None,
            season_year: int | None = None, formats: list[str] | None = None, languages: list[str] | None = None,
            trigger: str = "cli", requested_by: str = "cli", reference: datetime | None = None,
            progress: Callable[[str], None] | None = None) -> Produced:
    """Make one report now, archive it and record the run; on failure the run is recorded as failed and
    the error raised again."""
    settings = get_report_settings()
    with db.reading() as session:
        request = resolve(session, kind, day=day, start=start, end=end, season_year=season_year, formats=formats,
                          languages=languages, reference=reference, settings=settings)
    run_id = open_run(db, request, trigger, requested_by)
    archive = Archive(request, run_id, settings, db=db)
    try:
        with db.reading() as session:
            report = compute(session, request)
        for fmt, language in request.outputs():
            if progress:
                progress(f"{fmt} {language or ''}".strip())
            archive.add(request.file_name(fmt, language), fmt, language, render(report, fmt, language, settings))
        with db.transaction() as session:  # the files and the run that names them commit together
            files = archive.commit(session)
            run = runs.succeed(session, run_id, files, summary(report))
    except BaseException as exc:
        archive.discard()
        close_failed(db, run_id, exc)
        raise
    return Produced(run, report, [path_of(f, settings) for f in files])


def open_run(db: Database, request: ReportRequest, trigger: str, requested_by: str,
             prefect_flow_run_id: str | None = None) -> int:
    with db.transaction() as session:
        season_id = seasons.get_season(session, request.season_year).id if request.season_year else None
        return runs.start(session, request.kind, request.start, request.end, season_id=season_id, trigger=trigger,
                          requested_by=requested_by, formats=request.formats, languages=request.languages,
                          prefect_flow_run_id=prefect_flow_run_id).id


def close_failed(db: Database, run_id: int, exc: BaseException) -> None:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    with db.transaction() as session:
        runs.fail(session, run_id, text)
