"""Login attempts, kept to throttle guessing across every API process sharing the database.

Failures are counted in three scopes over a sliding window. The narrow one, a username from one address,
stops a guesser early; it does not reach the user's other addresses, so nobody can lock a user out by
failing to sign in as them from elsewhere. Two wider caps bound what the narrow one leaves open: one
address trying many usernames, and many addresses trying one username (a distributed guesser can still
hold a username's sign-in at that cap, the price of capping guessing at 400 an hour per account). The
per-address cap is high because an office behind one NAT address shares it: 100 typos in 15 minutes
from the whole office hold its sign-ins until the oldest ages out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.foundation import clock
from engine.storage.db import Base, UTCDateTime

WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10  # one username from one address
MAX_CLIENT_FAILURES = 100  # one address, any username
MAX_USERNAME_FAILURES = 100  # one username, any address


class LoginAttempt(Base):
    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_username_at", "username", "at"),
                      Index("ix_login_attempt_client_at", "client", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(60))
    client: Mapped[str | None] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def record(session: Session, username: str, client: str | None, success: bool) -> None:
    session.add(LoginAttempt(username=username[:60], client=_client(client), success=success, at=clock.now()))
    session.flush()


def throttled(session: Session, username: str, client: str | None) -> bool:
    """Too many failures in one of the scopes: refuse without checking the password."""
    return retry_after(session, username, client) > timedelta(0)


def retry_after(session: Session, username: str, client: str | None) -> timedelta:
    """How long until every scope's throttle has lifted (when enough of its failures have aged out of the
    window); zero when none holds."""
    now = clock.now()
    address = _client(client)
    by_address = LoginAttempt.client.is_(None) if address is None else LoginAttempt.client == address
    by_username = LoginAttempt.username == username[:60]
    scopes = ((MAX_FAILURES, [by_username, by_address]), (MAX_CLIENT_FAILURES, [by_address]),
              (MAX_USERNAME_FAILURES, [by_username]))
    return max(_wait(session, now, cap, conditions) for cap, conditions in scopes)


def _wait(session: Session, now: datetime, cap: int, conditions: list[Any]) -> timedelta:
    latest = list(session.scalars(
        select(LoginAttempt.at).where(*conditions, LoginAttempt.at >= now - WINDOW, LoginAttempt.success.is_(False))
        .order_by(LoginAttempt.at.desc()).limit(cap)
    ))
    if len(latest) < cap:
        return timedelta(0)
    return max(timedelta(0), latest[-1] + WINDOW - now)  # the oldest of the newest `cap` failures lifts it


def _client(client: str | None) -> str | None:
    return (client or "")[:64] or None
