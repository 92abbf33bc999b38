"""The audit chain finds an edited, inserted, deleted or reordered row, and names the first one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select, text

from engine.storage import audit
from engine.storage.db import Database


def _seed(db: Database, events: int = 6) -> None:
    for n in range(events):
        with db.transaction() as session:
            audit.record(session, f"user{n}", "step.completed", f"directive:{n % 2}", {"n": n, "نص": "تم"})


def _verify(db: Database) -> audit.Verification:
    with db.reading() as session:
        return audit.verify(session)


def _sql(db: Database, *statements: str) -> None:
    with db.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def test_an_untouched_chain_verifies(db):
    _seed(db)
    result = _verify(db)
    assert result.ok and result.checked == 6


@pytest.mark.parametrize("count", [5, audit._EVENTS_IN_ONE_STATEMENT + 1, 9000])
def test_several_events_of_one_commit_are_chained_in_their_order(db, count):
    """A few events go in one multi-row INSERT inside the head's UPDATE (PostgreSQL); more, in the batched
    INSERT (9,000 events are 72,000 values: past PostgreSQL's 65,535 parameters for one statement)."""
    _seed(db, events=2)
    with db.transaction() as session:
        for n in range(count):
            audit.record(session, "officer", "step.completed", f"directive:{n}", {"n": n, "نص": "تم"})
    result = _verify(db)
    assert result.ok and result.checked == count + 2
    with db.reading() as session:
        events = session.scalars(select(audit.AuditEvent).order_by(audit.AuditEvent.id)).all()
        head = session.get(audit.AuditHead, 1)
    assert [e.payload["n"] for e in events[2:]] == list(range(count))
    assert (head.last_id, head.last_hash) == (events[-1].id, events[-1].hash)


@pytest.mark.parametrize("column_change", [
    "actor = 'someone else'",
    "action = 'step.returned'",
    "subject = 'directive:9'",
    "payload = '{\"n\": 99}'",
])
def test_an_edited_row_is_named(db, column_change):
    _seed(db)
    if db.is_postgresql and column_change.startswith("payload"):
        column_change = "payload = '{\"n\": 99}'::jsonb"
    _sql(db, f"UPDATE audit_event SET {column_change} WHERE id = 3")
    result = _verify(db)
    assert not result.ok and result.first_broken_id == 3 and "edited" in result.problem


def test_an_edited_time_is_named(db):
    _seed(db)
    shift = "at = datetime(at, '+1 second')" if db.is_sqlite else "at = at + interval '1 second'"
    _sql(db, f"UPDATE audit_event SET {shift} WHERE id = 4")
    assert _verify(db).first_broken_id == 4


def test_a_deleted_row_is_named(db):
    _seed(db)
    _sql(db, "DELETE FROM audit_event WHERE id = 2")
    result = _verify(db)
    assert not result.ok and result.first_broken_id == 2 and "deleted" in result.problem


def test_deleting_the_newest_rows_is_found(db):
    _seed(db)
    _sql(db, "DELETE FROM audit_event WHERE id >= 5")
    result = _verify(db)
    assert not result.ok and result.first_broken_id == 5 and "removed" in result.problem


def test_an_inserted_row_is_named(db):
    _seed(db)
    _sql(db, "UPDATE audit_event SET id = id + 1000 WHERE id >= 4",
         "UPDATE audit_event SET id = id - 999 WHERE id >= 1000")
    with db.engine.begin() as connection:
        row = connection.execute(text("SELECT at, prev_hash, hash FROM audit_event WHERE id = 3")).one()
        connection.execute(text(
            "INSERT INTO audit_event (id, at, actor, action, subject, payload, prev_hash, hash) "
            "VALUES (4, :at, 'intruder', 'step.completed', 'directive:0', :payload, :prev, :hash)"
        ), {"at": row.at, "payload": "{}", "prev": row.hash, "hash": "f" * 64})
    result = _verify(db)
    assert not result.ok and result.first_broken_id == 4


def test_reordered_rows_are_named(db):
    _seed(db)
    _sql(db, "UPDATE audit_event SET id = -1 WHERE id = 2", "UPDATE audit_event SET id = 2 WHERE id = 5",
         "UPDATE audit_event SET id = 5 WHERE id = -1")
    result = _verify(db)
    assert not result.ok and result.first_broken_id == 2


def test_the_cli_exits_non_zero_naming_the_row(db, database_url):
    _seed(db)
    env = dict(os.environ, TANSIQ_DATABASE_URL=database_url)
    command = [sys.executable, "-m", "api.cli", "audit", "verify"]
    intact = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert intact.returncode == 0 and intact.stdout.strip() == "audit trail intact: 6 events"
    _sql(db, "UPDATE audit_event SET actor = 'x' WHERE id = 5")
    broken = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert broken.returncode == 1
    assert broken.stderr.strip().startswith("error: audit trail broken at event 5")


def test_an_edited_row_whose_hash_was_recomputed_breaks_the_link_to_the_next(db):
    """Someone who edits a row and stores its new hash still breaks the chain at the row after it."""
    _seed(db)
    with db.reading() as session:
        row = session.get(audit.AuditEvent, 3)
        forged = audit.event_hash(row.id, row.at, "someone else", row.action, row.subject, row.payload, row.prev_hash)
    _sql(db, f"UPDATE audit_event SET actor = 'someone else', hash = '{forged}' WHERE id = 3")
    result = _verify(db)
    assert not result.ok and result.first_broken_id == 4 and "previous-hash" in result.problem
