"""What a transaction writes at its commit: the kept counts' additions (`kept_counts`) and the audit chain's
events (`audit`). On PostgreSQL a request's few go in one statement: after the head's SELECT ... FOR UPDATE,
the head's UPDATE with the events' INSERT and each table's upsert as data-modifying WITHs (issue 23).

Locks, in the order every writer takes them at its commit: the rows of its other changes (flushed first),
the audit head's row, then the kept counts' rows, table by table in name order and row by row in key order
(in the one statement too: PostgreSQL runs its WITHs after the UPDATE, the last first, so they are given in
reverse). A writer with events takes the head before any kept count's row, so two of them serialize on the
head and never wait for each other's kept rows. A writer with kept counts and no events (which takes no head)
or a `recount` (which locks a table of kept counts, takes no head and writes nothing else) may hold kept rows
that a writer holding the head waits for; it waits for nothing more than other kept rows, in the same order,
and then commits: no cycle. The kept rows are the last locks of every transaction, taken only at its commit.
"""

from __future__ import annotations

from sqlalchemy import Connection, event
from sqlalchemy.orm import Session

from engine.storage import audit, kept_counts

# Per table of kept counts, as the events' `_EVENTS_IN_ONE_STATEMENT`: a request adds to a few rows; more take
# their own statements. (16 rows of step_tally's 35 columns are 560 parameters, far from PostgreSQL's 65,535.)
_ROWS_IN_ONE_STATEMENT = 16


@event.listens_for(Session, "before_commit")
def _write_at_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # SQLAlchemy also calls this when a savepoint is released: write only at the real commit
    session.flush()  # every other change first: the head's and kept rows' locks are the last ones taken
    upserts = kept_counts.take_all(session)  # their `before_write` may read: before the head's lock
    pending = audit.take_pending(session)
    if not pending:
        _write_each(session, upserts)
        return
    chained = audit.chain(session, pending)
    connection = session.connection()
    if upserts and _fold(connection, chained, upserts):
        parts = [part for upsert in upserts for part in upsert.as_ctes()]  # tables by name, rows by key
        connection.execute(*chained.one_statement(*reversed(parts)))  # run last first: in that order
        return
    _write_each(session, upserts)
    chained.write(connection)


def _fold(connection: Connection, chained: audit.Chained, upserts: list[kept_counts.Upsert]) -> bool:
    """Whether the kept counts go in the audit chain's one statement."""
    return (chained.fits_one_statement(connection.dialect.name)
            and all(len(upsert.rows) <= _ROWS_IN_ONE_STATEMENT for upsert in upserts))


def _write_each(session: Session, upserts: list[kept_counts.Upsert]) -> None:
    for upsert in upserts:
        upsert.execute(session.connection())
