"""Counts kept in the transaction of each change: additions that wait in the session and are written at
its commit, one upsert per table.

A table of kept counts (`engine.directives.tallies` for the dashboard, `engine.work.step_figures` for the heatmap
and the forecast) has key columns and additive figures. Additions wait in `session.info` and are written when the
transaction commits (`engine.storage.commit_writes`, with the audit chain), rows in key order and tables in name
order: a row's lock is held only for the commit (a bulk import does not hold its rows for its whole run) and two
writers cannot deadlock on them. What a savepoint added is taken back when it rolls back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CTE, Connection, Table, bindparam, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction

Key = tuple[Any, ...]
Pending = dict[Key, dict[str, float]]


@dataclass(frozen=True)
class KeptCounts:
    """One table of kept counts. `before_write` may turn the pending additions into others (resolving
    what a key needs from the database, once per commit) before they are written."""

    name: str
    table: Table
    keys: tuple[str, ...]
    figures: tuple[str, ...]
    before_write: Callable[[Session, Pending], Pending] | None = None
    accepts: tuple[str, ...] | None = None  # what `add` takes, when `before_write` turns it into `figures`

    @property
    def _info_key(self) -> str:
        return f"tansiq.kept.{self.name}"

    def add(self, session: Session, key: Key, **changes: float) -> None:
        """Add `changes` (figure -> amount, negative to take away) to the row of `key` at the commit."""
        unknown = set(changes) - set(self.accepts or self.figures)
        if unknown:
            raise ValueError(f"no such figure: {', '.join(sorted(unknown))}")
        row = self.pending(session).setdefault(key, {})
        for name, amount in changes.items():
            row[name] = row.get(name, 0) + amount

    def pending(self, session: Session) -> Pending:
        pending: Pending = session.info.setdefault(self._info_key, {})
        return pending

    def take(self, session: Session) -> Upsert | None:
        """The additions waiting in `session` (turned by `before_write`) as one upsert, no longer waiting; None
        when they add nothing."""
        pending = session.info.pop(self._info_key, None)
        if pending and self.before_write is not None:
            pending = self.before_write(session, pending)
        if not pending:
            return None
        rows = [{**dict(zip(self.keys, key, strict=True)), **{name: changes.get(name, 0) for name in self.figures}}
                for key, changes in sorted(pending.items()) if any(changes.values())]
        if not rows:
            return None
        return Upsert(self, rows, tuple(sorted({name for row in rows for name in self.figures if row[name]})))

    def _upsert(self, dialect: str, changed: tuple[str, ...]) -> Any:
        """INSERT the row, or add to the figures of the one there: one statement, built once per shape."""
        cache_key = (self.name, dialect, changed)
        if cache_key not in _UPSERTS:
            _UPSERTS[cache_key] = self._adding(_insert(dialect, self.table), changed)
        return _UPSERTS[cache_key]

    def _upsert_many(self, dialect: str, changed: tuple[str, ...], rows: list[dict[str, Any]]) -> Any:
        return self._adding(_insert(dialect, self.table).values(rows), changed)

    def _adding(self, insert: Any, changed: tuple[str, ...]) -> Any:
        return insert.on_conflict_do_update(index_elements=[self.table.c[name] for name in self.keys],
                                            set_={name: self.table.c[name] + insert.excluded[name] for name in changed})


@dataclass(frozen=True)
class Upsert:
    """One table's additions of a commit, in key order (as every writer takes its rows: no deadlock on them),
    with the figures they change."""

    counts: KeptCounts
    rows: list[dict[str, Any]]
    changed: tuple[str, ...]

    def execute(self, connection: Connection) -> None:
        """Write the rows: one statement (one row: the statement built once for its shape)."""
        dialect = connection.dialect.name
        if len(self.rows) == 1:
            connection.execute(self.counts._upsert(dialect, self.changed), self.rows[0])
        else:
            connection.execute(self.counts._upsert_many(dialect, self.changed, self.rows))

    def as_ctes(self) -> list[tuple[CTE, dict[str, Any]]]:
        """The upsert as data-modifying WITHs of another PostgreSQL statement, one a row in key order, each
        with its parameters: built once for their shape and position, their values named parameters (a
        multi-row VALUES has no cache key, and was compiled at every commit)."""
        table, ctes = self.counts.table, []
        for position, row in enumerate(self.rows):
            name = f"kept_{table.name}_{position}"
            key = (self.counts.name, self.changed, position)
            cte = _BOUND_UPSERTS.get(key)
            if cte is None:
                insert = _insert("postgresql", table).values(
                    {column: bindparam(f"{name}_{column}", type_=table.c[column].type) for column in row})
                cte = _BOUND_UPSERTS[key] = self.counts._adding(insert, self.changed).cte(name)
            ctes.append((cte, {f"{name}_{column}": value for column, value in row.items()}))
        return ctes


def take_all(session: Session) -> list[Upsert]:
    """Every table's additions waiting in `session`, in the order of their tables' names (every writer takes
    the tables in this order, whatever order this process imported them in)."""
    upserts = (counts.take(session) for counts in sorted(_REGISTERED, key=lambda counts: counts.table.name))
    return [upsert for upsert in upserts if upsert is not None]


def _insert(dialect: str, table: Table) -> Any:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


_UPSERTS: dict[tuple[str, str, tuple[str, ...]], Any] = {}
_BOUND_UPSERTS: dict[tuple[str, tuple[str, ...], int], CTE] = {}
_REGISTERED: list[KeptCounts] = []
_SAVED = "tansiq.kept.saved"  # session.info: open savepoint -> every table's pending additions when it began


def register(counts: KeptCounts) -> KeptCounts:
    _REGISTERED.append(counts)
    return counts


def _all_pending(session: Session) -> dict[str, Pending]:
    return {counts._info_key: copy.deepcopy(session.info.get(counts._info_key, {})) for counts in _REGISTERED}


@event.listens_for(Session, "after_transaction_create")
def _remember_at_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_SAVED, {})[transaction] = _all_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _take_back(session: Session, transaction: SessionTransaction) -> None:
    """A savepoint rolled back: its additions go (SQLAlchemy calls this after the savepoint's end)."""
    if transaction.nested:
        saved = session.info.get(_SAVED, {}).pop(transaction, None)
        if saved is not None:
            session.info.update(saved)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (written), rolled back or closed: nothing stays pending
        for counts in _REGISTERED:
            session.info.pop(counts._info_key, None)
        session.info.pop(_SAVED, None)
