"""The audit trail: an append-only, hash-chained event for every state change.

Each event is written in the transaction of the change it records. Its hash covers its position,
content and the previous event's hash, and a one-row head keeps the last position and hash, so
`verify` finds an edited, inserted, deleted or reordered row and names the first one that breaks.
Writers take the head's row lock at commit: the chain has one order, the order of commits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CTE, Connection, Integer, String, Update, bindparam, event, insert, select, union_all, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.foundation import clock
from engine.storage.db import Base, JSONType, UTCDateTime

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


@dataclass(frozen=True, eq=False)
class PendingEvent:
    at: datetime
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]


def record(
    session: Session, actor: str, action: str, subject: str, payload: dict[str, Any] | None = None
) -> PendingEvent:
    """Add an event to the caller's transaction; it is chained and written when the transaction commits.

    Writing at commit keeps the head's lock as short as possible, after every lock on instances, before
    only the kept counts' rows (`engine.storage.commit_writes`), so it cannot take part in a deadlock.
    """
    clean = json.loads(json.dumps(payload or {}, default=str, ensure_ascii=False))
    pending = PendingEvent(clock.now(), actor[:200], action, subject, clean)
    _pending(session).append(pending)
    return pending


def retract(session: Session, pending: PendingEvent) -> None:
    """Take back an event of this transaction that turned out not to happen."""
    events = _pending(session)
    for index, candidate in enumerate(events):
        if candidate is pending:
            del events[index]
            return


def mark(session: Session) -> int:
    """A position in the pending events, to `discard_since` when a savepoint rolls back."""
    return len(_pending(session))


def discard_since(session: Session, position: int) -> None:
    del _pending(session)[position:]


def _pending(session: Session) -> list[PendingEvent]:
    pending: list[PendingEvent] = session.info.setdefault("audit_pending", [])
    return pending


def take_pending(session: Session) -> list[PendingEvent]:
    """The events waiting in `session`, no longer waiting (`engine.storage.commit_writes` chains them)."""
    pending: list[PendingEvent] = session.info.pop("audit_pending", None) or []
    return pending


@dataclass(frozen=True)
class Chained:
    """Events chained on the head, whose row lock this transaction holds: their rows and where the head moves."""

    rows: list[dict[str, Any]]
    head: dict[str, Any]

    def fits_one_statement(self, dialect: str) -> bool:
        return dialect == "postgresql" and len(self.rows) <= _EVENTS_IN_ONE_STATEMENT

    def one_statement(self, *also: tuple[CTE, dict[str, Any]]) -> tuple[Update, dict[str, Any]]:
        """The head's UPDATE with the events' INSERT, and `also` (CTEs with their parameters), as data-modifying
        WITHs: one round trip, and its parameters. PostgreSQL runs each to completion whether or not the UPDATE
        reads it, after the UPDATE and the last first. (SQLite has no INSERT inside WITH.) Every value is a
        named parameter: a multi-row VALUES has no cache key, and was compiled anew at every commit."""
        params = {f"e{position}_{name}": value for position, row in enumerate(self.rows) for name, value in row.items()}
        params |= {"head_last_id": self.head["last_id"], "head_last_hash": self.head["last_hash"]}
        for _, cte_params in also:
            params |= cte_params
        statement = _MOVE_BOUND_HEAD.add_cte(_events_insert(len(self.rows)), *(cte for cte, _ in also))
        return statement, params

    def write(self, connection: Connection) -> None:
        # Core statements on the transaction's connection, not ORM objects: nothing reads these rows back in
        # this unit of work, and the ORM's bulk path cost four times as much per statement.
        if self.fits_one_statement(connection.dialect.name):
            connection.execute(*self.one_statement())
            return
        connection.execute(_INSERT_EVENTS, self.rows)
        connection.execute(_MOVE_HEAD, self.head)


def chain(session: Session, pending: list[PendingEvent]) -> Chained:
    """Chain `pending` on the head, taking the head's row lock (held to commit): the chain has one order, the
    order of commits."""
    last_id, last_hash = _locked_head(session)
    rows = []
    for item in pending:
        event_id = last_id + 1
        digest = event_hash(event_id, item.at, item.actor, item.action, item.subject, item.payload, last_hash)
        rows.append({"id": event_id, "at": item.at, "actor": item.actor, "action": item.action,
                     "subject": item.subject, "payload": item.payload, "prev_hash": last_hash, "hash": digest})
        last_id, last_hash = event_id, digest
    return Chained(rows, {"last_id": last_id, "last_hash": last_hash})


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop("audit_pending", None)


# A request records a few events; an import or a bulk action thousands, which in one statement would pass
# PostgreSQL's 65,535 parameters (8 an event) and build a statement for each count: those take the batched INSERT.
_EVENTS_IN_ONE_STATEMENT = 16
_INSERT_EVENTS = insert(AuditEvent.__table__)
_LOCK_HEAD = select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()
_MOVE_HEAD = update(AuditHead.__table__).where(AuditHead.id == 1)
_MOVE_BOUND_HEAD = _MOVE_HEAD.values(last_id=bindparam("head_last_id"), last_hash=bindparam("head_last_hash"))
_EVENT_COLUMNS = ("id", "at", "actor", "action", "subject", "payload", "prev_hash", "hash")
_EVENTS_INSERTS: dict[int, CTE] = {}


def _events_insert(count: int) -> CTE:
    """`INSERT INTO audit_event SELECT <event 0's parameters> UNION ALL ...` as a WITH, built once per count."""
    cte = _EVENTS_INSERTS.get(count)
    if cte is None:
        table = AuditEvent.__table__
        rows = [select(*(bindparam(f"e{position}_{name}", type_=table.c[name].type) for name in _EVENT_COLUMNS))
                for position in range(count)]
        source = rows[0] if count == 1 else union_all(*rows)
        cte = _EVENTS_INSERTS[count] = insert(table).from_select(list(_EVENT_COLUMNS), source).cte("audit_events")
    return cte


def _locked_head(session: Session) -> tuple[int, str]:
    """The last position and hash of the chain, with the head's row lock held to commit."""
    connection = session.connection()
    head = connection.execute(_LOCK_HEAD).one_or_none()
    if head is None:  # the migration creates it; a database emptied by hand gets it back here
        connection.execute(insert(AuditHead.__table__).values(id=1, last_id=0, last_hash=GENESIS))
        return 0, GENESIS
    return head.last_id, head.last_hash


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
        for row in rows:
            problem = _check(row, expected_id, previous_hash)
            if problem:
                return Verification(False, checked, expected_id, problem)
            previous_hash, expected_id, last_id = row.hash, row.id + 1, row.id
            checked += 1
        if len(rows) < batch:
            break
    head = session.get(AuditHead, 1)
    head_id, head_hash = (head.last_id, head.last_hash) if head else (0, GENESIS)
    if head_id != last_id or head_hash != previous_hash:
        return Verification(False, checked, last_id + 1,
                            f"the chain ends at event {last_id} but the head says {head_id}: events were removed")
    return Verification(True, checked)


def _check(row: AuditEvent, expected_id: int, previous_hash: str) -> str | None:
    if row.id != expected_id:
        return f"event {expected_id} is missing (next is {row.id}): a row was deleted"
    if row.prev_hash != previous_hash:
        return "its previous-hash does not match the event before it: a row was inserted, removed or reordered"
    recomputed = event_hash(row.id, row.at, row.actor, row.action, row.subject, row.payload, row.prev_hash)
    if recomputed != row.hash:
        return "its content does not match its hash: the row was edited"
    return None
