"""Committee meetings: periodic meetings whose recommendations become directives."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine import clock
from engine.db import Base, UTCDateTime
from engine.errors import Conflict, InvalidInput, NotFound


class Meeting(Base):
    __tablename__ = "meeting"
    __table_args__ = (UniqueConstraint("season_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("season.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title_ar: Mapped[str] = mapped_column(String(300))
    title_en: Mapped[str | None] = mapped_column(String(300))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime)
    chair: Mapped[str | None] = mapped_column(String(200))
    minutes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def create_meeting(session: Session, season_id: int, number: int, title_ar: str, held_at: datetime, actor: str, *,
                   title_en: str | None = None, chair: str | None = None, minutes: str | None = None) -> Meeting:
    if not isinstance(number, int) or number < 1:
        raise InvalidInput("a meeting number is a positive whole number")
    if not title_ar or len(title_ar) > 300:
        raise InvalidInput("a meeting needs an Arabic title of at most 300 characters")
    exists = session.scalar(select(Meeting.id).where(Meeting.season_id == season_id, Meeting.number == number))
    if exists is not None:
        raise Conflict(f"meeting {number} of this season exists already")
    meeting = Meeting(season_id=season_id, number=number, title_ar=title_ar, title_en=title_en,
                      held_at=clock.as_utc(held_at), chair=chair, minutes=minutes, created_by=actor,
                      created_at=clock.now())
    session.add(meeting)
    session.flush()
    return meeting


def get_meeting(session: Session, meeting_id: int) -> Meeting:
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound(f"no meeting {meeting_id}")
    return meeting
