"""The timer worker: fires due timers of running instances, in batches.

Each instance keeps the moment of its earliest waiting timer in an indexed `next_timer_at`, so a
poll reads only what is due. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets several worker
processes share the work without two of them touching one instance; on SQLite the database write
lock does the same for one machine.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.foundation import clock
from engine.foundation.errors import TansiqError
from engine.foundation.logs import get_logger
from engine.storage import audit
from engine.storage.db import Database
from engine.work import instances
from engine.work.instances import ProcessInstance

log = get_logger(__name__)


@dataclass
class BatchResult:
    fired: int = 0
    incidents: list[int] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.fired + len(self.incidents)


def run_due_batch(db: Database, batch_size: int = 100, now: datetime | None = None) -> BatchResult:
    """Process one batch of due instances in one transaction; return what was done.

    A model's failure is an incident, recorded like any result. Anything else that goes wrong with one
    instance rolls the batch back, and so does a model failure after a service task wrote (the batch
    takes no savepoints to undo one); the batch runs again with each firing in a savepoint of its own,
    which skips that instance, and with savepoints around service tasks' writes, which makes that
    failure an incident: the savepoints, two statements each, are paid only then.
    """
    moment = now or clock.now()
    try:
        return _run_batch(db, batch_size, moment, _fire)
    except (TansiqError, IntegrityError) as exc:
        log.info("timer batch retried firing by firing", error=str(exc))
        return _run_batch(db, batch_size, moment, _fire_isolated)


def _run_batch(db: Database, batch_size: int, moment: datetime,
               fire: Callable[[Session, ProcessInstance], bool]) -> BatchResult:
    result = BatchResult()
    with db.transaction() as session:
        batch = instances.locked_instances(
            session, session.execute(instances.locking(due(moment, batch_size, skip_locked=db.is_postgresql))).all())
        instances.hold_open_steps(session, [instance.id for instance in batch])
        for instance in batch:
            if not fire(session, instance):
                continue
            if instance.status == instances.INCIDENT:
                result.incidents.append(instance.id)
            else:
                result.fired += 1
    return result


def due(moment: datetime, batch_size: int, *, skip_locked: bool) -> Select[ProcessInstance]:
    """The next `batch_size` running instances with a timer due before `moment`, earliest first (read from
    `ix_process_instance_due`); with `skip_locked`, locked for this transaction, skipping those another
    worker holds."""
    query = (
        select(ProcessInstance)
        .where(ProcessInstance.status == instances.RUNNING, ProcessInstance.next_timer_at < moment)
        .order_by(ProcessInstance.next_timer_at)
        .limit(batch_size)
    )
    return query.with_for_update(skip_locked=True, of=ProcessInstance) if skip_locked else query


def _fire(session: Session, instance: ProcessInstance) -> bool:
    instances.fire_timers(session, instance, savepoints=False)  # the batch runs again with them if need be
    return True


def _fire_isolated(session: Session, instance: ProcessInstance) -> bool:
    """One instance's trouble must not hold up the batch: skip it, log it, and try it next poll."""
    mark = audit.mark(session)
    try:
        with session.begin_nested():
            instances.fire_timers(session, instance)
        return True
    except (TansiqError, IntegrityError) as exc:
        audit.discard_since(session, mark)
        log.warning("timer firing skipped", instance=instance.id, error=str(exc))
        return False


def run_until_idle(db: Database, batch_size: int = 100, now: datetime | None = None) -> BatchResult:
    """Process batches until nothing is due (what `tansiq timers run --once` does)."""
    total = BatchResult()
    while True:
        batch = run_due_batch(db, batch_size, now)
        total.fired += batch.fired
        total.incidents.extend(batch.incidents)
        if batch.processed < batch_size:
            return total


def run_forever(db: Database, batch_size: int, poll_seconds: float, stop: threading.Event | None = None) -> None:
    """Poll until `stop` is set or SIGTERM/SIGINT arrives; finish the batch in hand first."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        started = time.monotonic()
        try:
            batch = run_due_batch(db, batch_size)
        except Exception:  # the database may be away for a moment; keep polling
            log.exception("timer batch failed")
            batch = BatchResult()
        if batch.processed:
            log.info("timers fired", fired=batch.fired, incidents=len(batch.incidents))
        if batch.processed < batch_size:
            stop.wait(max(0.0, poll_seconds - (time.monotonic() - started)))


def timer_lag_seconds(session: Session, now: datetime) -> float:
    """How overdue the oldest waiting timer of a running instance is (0 when none is due): min over
    ix_process_instance_due (status, next_timer_at)."""
    oldest = session.scalar(select(func.min(ProcessInstance.next_timer_at))
                            .where(ProcessInstance.status == instances.RUNNING))
    return 0.0 if oldest is None else max(0.0, (now - clock.as_utc(oldest)).total_seconds())
