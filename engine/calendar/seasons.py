"""Seasons: one Hajj season, named by its Hijri year, with editable dates (moon sighting can move
them a day) and the business calendar its deadlines are computed with."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, String, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import Date

from engine.calendar.business_calendar import MODES, SEASON, BusinessCalendar, calendar_of
from engine.foundation import clock
from engine.foundation.errors import N_, Conflict, FieldProblems, NotFound
from engine.storage import audit
from engine.storage.db import Base, JSONType, UTCDateTime

EDITABLE = ("starts_on", "ends_on", "calendar_mode", "holidays")


class Season(Base):
    __tablename__ = "season"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hijri_year: Mapped[int] = mapped_column(Integer, unique=True)
    name_ar: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    calendar_mode: Mapped[str] = mapped_column(String(20), default=SEASON)
    holidays: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def calendar(self) -> BusinessCalendar:
        return calendar_of(self.calendar_mode, self.holidays)


def subject(hijri_year: int) -> str:
    return f"season:{hijri_year}"


def create_season(session: Session, hijri_year: int, starts_on: date, ends_on: date, *,
                  calendar_mode: str = SEASON, holidays: list[str] | None = None, actor: str = "system") -> Season:
    """Create a season; `actor` (who creates it) is recorded in the audit trail."""
    _validate(hijri_year, starts_on, ends_on, calendar_mode, holidays or [])
    if session.scalar(select(Season.id).where(Season.hijri_year == hijri_year)) is not None:
        raise Conflict(N_("the season %(season)s exists already"), params={"season": str(hijri_year)})
    season = Season(hijri_year=hijri_year, name_ar=f"موسم حج {hijri_year}هـ", name_en=f"Hajj {hijri_year}",
                    starts_on=starts_on, ends_on=ends_on, calendar_mode=calendar_mode,
                    holidays=sorted(holidays or []), created_at=clock.now())
    session.add(season)
    session.flush()
    audit.record(session, actor, "season.created", subject(season.hijri_year),
                 {"starts_on": season.starts_on, "ends_on": season.ends_on, "mode": season.calendar_mode})
    return season


def update_season(session: Session, season: Season, *, actor: str = "system", **changes: Any) -> Season:
    """Move a season's dates (moon sighting), its calendar mode or its holidays; the changes are audited."""
    merged = {k: changes.get(k, getattr(season, k)) for k in EDITABLE}  # other keys are ignored
    _validate(season.hijri_year, merged["starts_on"], merged["ends_on"], merged["calendar_mode"], merged["holidays"])
    for key, value in merged.items():
        setattr(season, key, value)
    session.flush()
    recorded = {k: changes[k] for k in EDITABLE if k in changes}
    if recorded:
        audit.record(session, actor, "season.updated", subject(season.hijri_year), recorded)
    return season


def _validate(hijri_year: int, starts_on: date, ends_on: date, mode: str, holidays: list[str]) -> None:
    problems = FieldProblems()
    if not isinstance(hijri_year, int) or not 1343 <= hijri_year <= 1500:
        problems.add("hijri_year", "range", N_("a season's Hijri year is from 1343 to 1500"))
    if ends_on < starts_on:
        problems.add("ends_on", "minimum", N_("a season ends after it starts"))
    if mode not in MODES:
        problems.add("calendar_mode", "enum", N_("unknown calendar mode %(value)s (known: %(known)s)"),
                     value=repr(mode), known=", ".join(MODES))
    for day in holidays:
        try:
            date.fromisoformat(day)
        except (TypeError, ValueError):
            problems.add("holidays", "format", N_("a holiday is an ISO date, not %(value)s"), value=repr(day))
            break
    problems.raise_if_any()


def get_season(session: Session, hijri_year: int) -> Season:
    season = session.scalar(select(Season).where(Season.hijri_year == hijri_year))
    if season is None:
        raise NotFound(N_("no season %(season)s"), params={"season": str(hijri_year)})
    return season


def list_seasons(session: Session) -> list[Season]:
    """Every season, the newest first."""
    return list(session.scalars(select(Season).order_by(Season.hijri_year.desc())))


_LATEST_STARTED = select(Season).where(Season.starts_on <= bindparam("day")).order_by(Season.starts_on.desc()).limit(1)


def season_for(session: Session, moment: datetime) -> Season:
    """The season whose dates hold `moment`, else the latest that started before it."""
    day = moment.date()
    season = session.scalar(_LATEST_STARTED, {"day": day})
    if season is None:
        raise NotFound("no season covers this date; create one first")
    return season
