"""What every report shares: its period (Gregorian and Hijri), when and from what data it was made,
entity references, duration statistics, and the helpers the report queries use.

Report days are local days in the reports' time zone (Asia/Riyadh unless configured): the day
2026-05-20 is [2026-05-20 00:00, 2026-05-21 00:00) Riyadh time, i.e. [19 May 21:00, 20 May 21:00) UTC.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import metadata
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, inspect, literal, select, text, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from engine.calendar.formatting import HijriDate as HijriDate  # the reports name Hijri days with it
from engine.calendar.seasons import Season
from engine.foundation.errors import N_, InvalidInput
from engine.storage.audit import AuditHead
from engine.storage.db import UTCDateTime

DAILY, PERIODIC, SEASONAL = "daily", "periodic", "seasonal"
KINDS = (DAILY, PERIODIC, SEASONAL)


@dataclass(frozen=True)
class ReportPeriod:
    """Local days `start`..`end` (both included); `starts_at`/`ends_at` bound them in UTC (end excluded).

    `as_of` is the moment the snapshot figures (open, overdue, escalation level) describe: the end of
    the period, or the moment the report was made if the period has not ended yet.
    """

    start: date
    end: date
    starts_at: datetime
    ends_at: datetime
    as_of: datetime
    timezone: str
    hijri_start: HijriDate
    hijri_end: HijriDate

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def single_day(self) -> bool:
        return self.start == self.end


@dataclass(frozen=True)
class DataSource:
    """From what data a report was made: the database, its schema revision, and the audit chain's head
    when the data was read (every change to the data appends to that chain, so the head pins the data)."""

    database: str
    schema_revision: str | None
    audit_event_id: int
    audit_hash: str
    tansiq_version: str


@dataclass(frozen=True)
class SeasonRef:
    id: int
    hijri_year: int
    name_ar: str
    name_en: str
    starts_on: date
    ends_on: date

    @classmethod
    def of(cls, season: Season) -> SeasonRef:
        return cls(season.id, season.hijri_year, season.name_ar, season.name_en, season.starts_on, season.ends_on)


@dataclass(frozen=True)
class DurationStats:
    """Durations in hours: how many, their mean and 90th percentile (nearest rank), None when there are none."""

    count: int
    mean_hours: float | None
    p90_hours: float | None

    @classmethod
    def of(cls, hours: Sequence[float]) -> DurationStats:
        if not hours:
            return cls(0, None, None)
        return cls(len(hours), round(sum(hours) / len(hours), 2), round(percentile(hours, 90), 2))


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q% of the values at or below it.

    Computed here rather than in SQL so that SQLite (which has no percentile function) and PostgreSQL
    give the same figure; one column of one query, sorted in memory, is fine for 100k rows.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def make_period(start: date, end: date, zone: ZoneInfo, now: datetime) -> ReportPeriod:
    if end < start:
        raise InvalidInput(N_("a report period ends on or after it starts (%(start)s .. %(end)s)"),
                           params={"start": start.isoformat(), "end": end.isoformat()})
    if (end - start).days > 400:
        raise InvalidInput(N_("a report period is at most %(limit)s days"), params={"limit": 400})
    starts_at, ends_at = local_midnight(start, zone), local_midnight(end + timedelta(days=1), zone)
    if starts_at > now:
        raise InvalidInput(N_("the period starting %(start)s has not begun yet"), params={"start": start.isoformat()})
    return ReportPeriod(start, end, starts_at, ends_at, min(ends_at, now), zone.key,
                        HijriDate.of(start), HijriDate.of(end))


def day_windows(period: ReportPeriod, zone: ZoneInfo) -> Subquery:
    """One row per day of the period: (idx, starts_at, ends_at, as_of), as a subquery to join on.

    `as_of` is the end of the day, or the period's `as_of` for a day not over yet. Built as a UNION ALL
    of literal rows so it works on SQLite and PostgreSQL alike.
    """
    rows = []
    for index, day in enumerate(period.days):
        starts_at, ends_at = local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)
        rows.append(select(
            literal(index, Integer).label("idx"),
            literal(starts_at, UTCDateTime).label("starts_at"),
            literal(ends_at, UTCDateTime).label("ends_at"),
            literal(min(ends_at, period.as_of), UTCDateTime).label("as_of"),
        ))
    return (rows[0] if len(rows) == 1 else union_all(*rows)).subquery("days")


def data_source(session: Session) -> DataSource:
    bind = session.get_bind()
    head = session.get(AuditHead, 1)
    revision = None
    if inspect(bind).has_table("alembic_version"):
        revision = session.scalar(text("SELECT version_num FROM alembic_version"))
    try:
        version = metadata.version("tansiq")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        version = "unknown"
    return DataSource(
        database=bind.engine.url.render_as_string(hide_password=True),
        schema_revision=revision,
        audit_event_id=head.last_id if head else 0,
        audit_hash=(head.last_hash[:16] if head else ""),
        tansiq_version=version,
    )


def as_dict(value: Any) -> Any:
    """A report as plain JSON-ready data (dates and moments as ISO strings)."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: as_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, HijriDate):
            out["iso"] = value.iso
        return out
    if isinstance(value, list | tuple):
        return [as_dict(v) for v in value]
    if isinstance(value, dict):
        return {str(k): as_dict(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
