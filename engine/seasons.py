"""Seasons: one Hajj season, named by its Hijri year, with editable dates (moon sighting can move
them a day) and the business calendar its deadlines are computed with."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import Date

from engine import clock
from engine.business_calendar import MODES, SEASON, BusinessCalendar
from engine.db import Base, JSONType, UTCDateTime
from engine.errors import Conflict, InvalidInput, NotFound


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
        return BusinessCalendar(self.calendar_mode, frozenset(date.fromisoformat(d) for d in self.holidays or []))


def create_season(session: Session, hijri_year: int, starts_on: date, ends_on: date, *,
                  calendar_mode: str = SEASON, holidays: list[str] | None = None) -> Season:
    _validate(hijri_year, starts_on, ends_on, calendar_mode, holidays or [])
    if session.scalar(select(Season.id).where(Season.hijri_year == hijri_year)) is not None:
        raise Conflict(f"the season {hijri_year} exists already")
    season = Season(hijri_year=hijri_year, name_ar=f"موسم حج {hijri_year}هـ", name_en=f"Hajj {hijri_year}",
                    starts_on=starts_on, ends_on=ends_on, calendar_mode=calendar_mode,
                    holidays=sorted(holidays or []), created_at=clock.now())
    session.add(season)
    session.flush()
    return season


def update_season(session: Session, season: Season, **changes: Any) -> Season:
    merged = {k: changes.get(k, getattr(season, k)) for k in ("starts_on", "ends_on", "calendar_mode", "holidays")}
    _validate(season.hijri_year, merged["starts_on"], merged["ends_on"], merged["calendar_mode"], merged["holidays"])
    for key, value in merged.items():
        setattr(season, key, value)
    session.flush()
    return season


def _validate(hijri_year: int, starts_on: date, ends_on: date, mode: str, holidays: list[str]) -> None:
    if not isinstance(hijri_year, int) or not 1343 <= hijri_year <= 1500:
        raise InvalidInput("a season's Hijri year is from 1343 to 1500")
    if ends_on < starts_on:
        raise InvalidInput("a season ends after it starts")
    if mode not in MODES:
        raise InvalidInput(f"unknown calendar mode {mode!r} (known: {', '.join(MODES)})")
    for day in holidays:
        try:
            date.fromisoformat(day)
        except (TypeError, ValueError):
            raise InvalidInput(f"a holiday is an ISO date, not {day!r}") from None


def get_season(session: Session, hijri_year: int) -> Season:
    season = session.scalar(select(Season).where(Season.hijri_year == hijri_year))
    if season is None:
        raise NotFound(f"no season {hijri_year}")
    return season


def season_for(session: Session, moment: datetime) -> Season:
    """The season whose dates hold `moment`, else the latest that started before it."""
    day = moment.date()
    season = session.scalar(
        select(Season).where(Season.starts_on <= day).order_by(Season.starts_on.desc()).limit(1)
    )
    if season is None:
        raise NotFound("no season covers this date; create one first")
    return season
