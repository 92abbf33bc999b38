"""Login attempts, kept to throttle guessing across every API process sharing the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Boolean, Index, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine import clock
from engine.db import Base, UTCDateTime

WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10


class LoginAttempt(Base):
    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_username_at", "username", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(60))
    client: Mapped[str | None] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def record(session: Session, username: str, client: str | None, success: bool) -> None:
    session.add(LoginAttempt(username=username[:60], client=(client or "")[:64] or None, success=success,
                             at=clock.now()))
    session.flush()


def throttled(session: Session, username: str) -> bool:
    """Too many failures for this username in the window: refuse without checking the password."""
    since = clock.now() - WINDOW
    failures = session.scalar(
        select(func.count()).select_from(LoginAttempt)
        .where(LoginAttempt.username == username, LoginAttempt.at >= since, LoginAttempt.success.is_(False))
    )
    return failures >= MAX_FAILURES


def retry_after(session: Session, username: str) -> timedelta:
    """How long until the throttle on `username` lifts: when enough failures of the window have aged
    out of it. Zero when the username is not throttled."""
    now = clock.now()
    failures = list(session.scalars(
        select(LoginAttempt.at)
        .where(LoginAttempt.username == username[:60], LoginAttempt.at >= now - WINDOW,
               LoginAttempt.success.is_(False))
        .order_by(LoginAttempt.at)
    ))
    if len(failures) < MAX_FAILURES:
        return timedelta(0)
    lifting = failures[len(failures) - MAX_FAILURES]
    return max(timedelta(0), lifting + WINDOW - now)
