"""The audit trail: an append-only, hash-chained event for every state change.

Each event is written in the transaction of the change it records. Its hash covers its position,
content and the previous event's hash, and a one-row head keeps the last position and hash, so
`verify` finds an edited, inserted, deleted or reordered row and names the first one that breaks.
Writers take the head's row lock: the chain has one order, the order of commits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine import clock
from engine.db import Base, JSONType, UTCDateTime

GENESIS = "0" * 64


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(String(120), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


def event_hash(event_id: int, at: datetime, actor: str, action: str, subject: str, payload: Any, prev: str) -> str:
    canonical = json.dumps(
        [event_id, clock.as_utc(at).isoformat(timespec="microseconds"), actor, action, subject, payload, prev],
        ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session, actor: str, action: str, subject: str, payload: dict[str, Any] | None = None
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction."""
    head = _locked_head(session)
    payload = json.loads(json.dumps(payload or {}, default=str))
    at = clock.now()
    event_id = head.last_id + 1
    digest = event_hash(event_id, at, actor, action, subject, payload, head.last_hash)
    event = AuditEvent(id=event_id, at=at, actor=actor[:200], action=action, subject=subject, payload=payload,
                       prev_hash=head.last_hash, hash=digest)
    session.add(event)
    head.last_id, head.last_hash = event_id, digest
    session.flush()
    return event


def _locked_head(session: Session) -> AuditHead:
    head = session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    if head is None:  # the migration creates it; a database emptied by hand gets it back here
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def timeline(session: Session, *subjects: str, limit: int = 500) -> list[AuditEvent]:
    return list(session.scalars(
        select(AuditEvent).where(AuditEvent.subject.in_(subjects)).order_by(AuditEvent.id).limit(limit)
    ))


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    problem: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.checked} events"
        return f"audit trail broken at event {self.first_broken_id}: {self.problem} ({self.checked} checked)"


def verify(session: Session, batch: int = 5000) -> Verification:
    """Walk the whole chain in order; stop at the first event that does not hold."""
    previous_hash, expected_id, checked, last_id = GENESIS, 1, 0, 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id >= expected_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        for event in rows:
            problem = _check(event, expected_id, previous_hash)
            if problem:
                return Verification(False, checked, event.id if event.id != expected_id else expected_id, problem)
            previous_hash, expected_id, last_id = event.hash, event.id + 1, event.id
            checked += 1
        if len(rows) < batch:
            break
    head = session.get(AuditHead, 1)
    head_id, head_hash = (head.last_id, head.last_hash) if head else (0, GENESIS)
    if head_id != last_id or head_hash != previous_hash:
        return Verification(False, checked, last_id + 1,
                            f"the chain ends at event {last_id} but the head says {head_id}: events were removed")
    return Verification(True, checked)


def _check(event: AuditEvent, expected_id: int, previous_hash: str) -> str | None:
    if event.id != expected_id:
        return f"event {expected_id} is missing (next is {event.id}): a row was deleted"
    if event.prev_hash != previous_hash:
        return "its previous-hash does not match the event before it: a row was inserted, removed or reordered"
    recomputed = event_hash(event.id, event.at, event.actor, event.action, event.subject, event.payload,
                            event.prev_hash)
    if recomputed != event.hash:
        return "its content does not match its hash: the row was edited"
    return None
