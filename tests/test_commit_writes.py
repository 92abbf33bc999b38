"""What a commit writes (engine/storage/commit_writes.py): on PostgreSQL a request's few events and kept counts
go in one statement after the head's lock, past the limits each in its own; the figures are the same either
way, a rolled back savepoint's additions are taken back, and a commit that fails writes none of it. On
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select, text

from engine.directives import tallies
from engine.directives.tallies import FIGURES
from engine.storage import audit, commit_writes
from engine.storage.db import Database
from tests.helpers import season_1447
from tests.test_insight import _kept as _kept_step_figures
from tests.test_insight import _recounted as _recounted_step_figures
from tests.test_shipped_models import FILES, STANDARD, deploy, launch, seed_world
from tests.test_tallies import _assert_kept_as_counted, _kept, _season_1447_id

HOUSING = ("housing", "الإسكان", "Housing")


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements sent meanwhile, in their order (no BEGIN or COMMIT)."""
    sent: list[str] = []

    def keep(_conn, _cursor, statement: str, *_args) -> None:
        if not statement.startswith("BEGIN"):
            sent.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)


def _season(db: Database) -> int:
    season_1447(db, HOUSING)
    return _season_1447_id(db)


def _commit(db: Database, season_id: int, entities: list[str], events: int) -> list[str]:
    """One transaction adding to the tally of each entity, with `events` events; what its commit sends."""
    with statements(db) as sent, db.transaction() as session:
        for entity in entities:
            tallies.add(session, season_id, entity, "business", active=1, completion_hours=1.5)
        for n in range(events):
            audit.record(session, "officer", "step.completed", f"directive:{n}", {"n": n})
        sent.clear()  # what the commit sends, not what recording read
    return sent


def _chained(db: Database) -> int:
    """How many events the chain holds, checking that it holds."""
    with db.reading() as session:
        result = audit.verify(session)
    assert result.ok, result
    return result.checked


def _written(sent: list[str]) -> list[str]:
    """The tables the statements write, in their order (inside a WITH too)."""
    return [table for statement in sent for table in re.findall(r"(?:INSERT INTO|(?<!DO )UPDATE) (\w+)", statement)]


def _is_head_lock(statement: str) -> bool:  # (SQLite has one writer, and no FOR UPDATE)
    return statement.startswith("SELECT audit_head.last_id") and ("FOR UPDATE" in statement or "?" in statement)


def test_a_few_events_and_kept_counts_go_in_one_statement_after_the_heads_lock(db):
    season_id = _season(db)
    before = _chained(db)
    sent = _commit(db, season_id, ["housing", "transport"], events=3)
    if db.is_postgresql:
        head, [folded] = sent[0], sent[1:]
        assert _is_head_lock(head)
        assert folded.startswith("WITH audit_events AS (INSERT INTO audit_event")
        assert "kept_tally_0 AS (INSERT INTO tally" in folded
        assert folded.endswith("WHERE audit_head.id = %(id_1)s::INTEGER")
    else:  # no INSERT inside WITH: the head, the upsert, the events and the head's move
        assert len(sent) == 4 and sent[1].startswith("INSERT INTO tally") and sent[2].startswith("INSERT INTO audit")
    sent = _commit(db, season_id, ["housing"], events=1)  # the rows are there now: the upsert adds to them
    assert len(sent) == (2 if db.is_postgresql else 4)
    figures = dict.fromkeys(FIGURES, 0)
    assert _kept(db) == {(season_id, "housing", "business"): {**figures, "active": 2, "completion_hours": 3.0},
                         (season_id, "transport", "business"): {**figures, "active": 1, "completion_hours": 1.5}}
    assert _chained(db) == before + 4


def test_a_launch_writes_both_tables_of_kept_counts_in_the_heads_statement_as_they_are_recounted(db):
    seed_world(db)
    deploy(db, FILES[STANDARD])
    with statements(db) as sent:
        launch(db, STANDARD)
    kept_rows = [s for s in sent if "INTO tally" in s or "INTO step_tally" in s]
    if db.is_postgresql:
        [folded] = kept_rows
        assert folded.startswith("WITH audit_events AS")
        # given in reverse: PostgreSQL runs them the last first, in the tables' name order as every writer
        assert folded.index("kept_tally_0 AS") < folded.index("kept_step_tally_0 AS")
    else:
        assert _written(kept_rows) == ["step_tally", "tally"]
    assert _kept_step_figures(db) == _recounted_step_figures(db) != {}
    assert _assert_kept_as_counted(db)


@pytest.mark.parametrize("past", ["events", "rows"])
def test_past_the_limits_each_goes_in_its_own_statement_with_the_same_figures(db, past):
    season_id = _season(db)
    rows = commit_writes._ROWS_IN_ONE_STATEMENT + 1 if past == "rows" else 2
    events = audit._EVENTS_IN_ONE_STATEMENT + 1 if past == "events" else 2
    entities = [f"entity{n:02}" for n in range(rows)]
    before = _chained(db)
    sent = _commit(db, season_id, entities, events)
    # the head first, as when folded: a writer holding the head never waits for one holding kept rows and the head
    assert _is_head_lock(sent[0])
    assert _written(sent) == ["tally", "audit_event", "audit_head"]
    assert len(sent) == (3 if db.is_postgresql and past == "rows" else 4)
    kept = _kept(db)
    assert sorted(kept) == [(season_id, entity, "business") for entity in entities]
    assert {row["active"] for row in kept.values()} == {1}
    assert _chained(db) == before + events


def test_kept_counts_without_events_take_no_head(db):
    season_id = _season(db)
    sent = _commit(db, season_id, ["housing"], events=0)
    assert _written(sent) == ["tally"] and len(sent) == 1
    assert _kept(db)[(season_id, "housing", "business")]["active"] == 1


def test_a_rolled_back_savepoint_is_taken_back_from_the_one_statement(db):
    season_id = _season(db)
    key = (season_id, "housing", "business")
    before = _chained(db)
    with statements(db) as sent, db.transaction() as session:
        tallies.add(session, *key, active=1)
        audit.record(session, "officer", "directive.launched", "directive:1")
        with pytest.raises(RuntimeError), session.begin_nested():
            tallies.add(session, *key, active=5, completed=1)
            tallies.add(session, season_id, "transport", "business", active=1)
            raise RuntimeError("the savepoint rolls back")
        with session.begin_nested():
            tallies.add(session, *key, completed=1, completion_hours=2.5)
    if db.is_postgresql:
        assert sum("kept_tally_0 AS" in s for s in sent) == 1
    assert _kept(db) == {key: {**dict.fromkeys(FIGURES, 0), "active": 1, "completed": 1, "completion_hours": 2.5}}
    assert _chained(db) == before + 1


def test_a_commit_whose_kept_counts_fail_writes_none_of_its_events(db):
    season_id = _season(db)
    _commit(db, season_id, ["housing"], events=1)
    before = _chained(db)
    with pytest.raises(Exception, match=r"(?i)foreign key"), db.transaction() as session:
        tallies.add(session, season_id, "housing", "business", active=1)
        tallies.add(session, season_id + 1000, "housing", "business", active=1)  # no such season
        audit.record(session, "officer", "step.completed", "directive:1")
    assert _kept(db)[(season_id, "housing", "business")]["active"] == 1
    assert _chained(db) == before
    with db.reading() as session:
        assert session.scalars(select(audit.AuditHead.last_id)).one() == before


def test_postgresql_runs_a_statements_withs_after_it_the_last_first(db):
    """What the lock order of the one statement rests on (engine/storage/commit_writes.py): the WITHs are given
    in reverse for their tables' rows to be locked in name order."""
    if not db.is_postgresql:
        pytest.skip("SQLite has no INSERT inside WITH")
    with db.engine.connect() as connection:
        connection.execute(text("CREATE TEMP TABLE noted (n serial, what text)"))
        connection.execute(text("CREATE TEMP TABLE kept (k int PRIMARY KEY, v int)"))
        connection.execute(text("CREATE TEMP TABLE head AS SELECT 1 AS id, 0 AS v"))
        connection.execute(text("CREATE FUNCTION pg_temp.note(what text) RETURNS int LANGUAGE sql AS "
                                "'INSERT INTO noted (what) VALUES (what) RETURNING 1'"))
        connection.execute(text(
            "WITH first AS (INSERT INTO kept VALUES (1, pg_temp.note('first'))),"
            " second AS (INSERT INTO kept VALUES (2, pg_temp.note('second')), (3, pg_temp.note('second, row 2'))"
            " ON CONFLICT (k) DO UPDATE SET v = kept.v + excluded.v)"
            " UPDATE head SET v = pg_temp.note('main') WHERE id = 1"))
        noted = connection.execute(text("SELECT what FROM noted ORDER BY n")).scalars().all()
        connection.rollback()
    assert noted == ["main", "second", "second, row 2", "first"]
