"""Database access: one `Database` per URL, SQLite (WAL) by default, PostgreSQL at scale.

Writers take the lock up front on SQLite (`BEGIN IMMEDIATE`) so that concurrent writers queue on
the busy timeout instead of failing on lock upgrade; on PostgreSQL they lock rows they change.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    LargeBinary,
    MetaData,
    Table,
    TypeDecorator,
    Update,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, CursorResult, Engine, Result, make_url
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

MAX_ID = 2_147_483_647  # the integer range of every id column: a larger id cannot exist

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    if TYPE_CHECKING:
        # Every mapped class here is declared on one Table; typing it so lets Core statements
        # (`insert(Model.__table__)`) type-check without a cast at each use.
        __table__: ClassVar[Table]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware values")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class GzipJSON(TypeDecorator[Any]):
    """JSON compressed with gzip: a directive's state is ~28 kB as JSON and ~4.2 kB compressed.

    Level 1, written on every step: 2.6 times as fast as level 5 (49 against 127 µs on that state) for
    10 % more bytes. (orjson would encode it in 13 µs instead of 200, but writes NaN and infinities, which
    expressions can compute, as null: a value would change between two steps.)
    """

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        if value is None:
            return None
        return gzip.compress(json.dumps(value, separators=(",", ":")).encode(), compresslevel=1)

    def process_result_value(self, value: bytes | None, dialect: Any) -> Any:
        return None if value is None else json.loads(gzip.decompress(value))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's begin hook below emits BEGIN itself
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    write = connection.get_execution_options().get("tansiq_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5) -> None:
        self.url = make_url(url)
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        self._write_bind = self.engine.execution_options(tansiq_write=True)
        # One statement needs no transaction: on PostgreSQL that saves the BEGIN and the ROLLBACK round trips.
        # (SQLite's connections begin through `_sqlite_on_begin`, and a read there costs no round trip.)
        self._single_reads = self.engine if self.is_sqlite else self.engine.execution_options(
            isolation_level="AUTOCOMMIT")
        self._writer = sessionmaker(bind=self._write_bind, expire_on_commit=False)
        self._reader = sessionmaker(bind=self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work that writes: committed when the block ends, rolled back on any error."""
        with self._writer() as session, session.begin():
            yield session

    def single_read(self) -> Connection:
        """A connection for one read statement, outside any transaction (use it as a context manager)."""
        return self._single_reads.connect()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


_databases: dict[str, Database] = {}


def get_database(url: str | None = None) -> Database:
    """One Database (and connection pool) per URL per process."""
    from engine.foundation.settings import get_settings

    url = url or get_settings().effective_database_url
    if url not in _databases:
        _databases[url] = Database(url)
    return _databases[url]


# --- writing a loaded row without the unit of work --------------------------------------------------

_WRITTEN = "tansiq.rows_written"  # session.info key: objects whose row `write_row` changed in this transaction
_updates: dict[tuple[Table, str | None], Update] = {}


def _row_id(obj: Base) -> int:
    row_id = getattr(obj, "id", None)
    if not isinstance(row_id, int):
        raise TypeError(f"a {type(obj).__name__} has no integer id to write its row by")
    return row_id


def rowcount(result: Result[*tuple[Any, ...]]) -> int:
    """The rows an INSERT, UPDATE or DELETE run with `Session.execute` matched (its CursorResult is typed
    as a plain Result)."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"a {type(result).__name__} has no row count: not the result of a write")
    return result.rowcount


def write_row(session: Session, obj: Base, changes: dict[str, Any], *, version: str | None = None) -> None:
    """UPDATE the row of a loaded object with `changes` and show them on the object as loaded.

    One Core statement on the transaction's connection: the unit of work took four to five times as
    long for the same UPDATE (bench/RESULTS.md). With `version`, the named integer column must still hold
    the object's value (else StaleDataError, as the ORM raises) and moves on by one. Pending ORM changes
    are flushed first. Should a savepoint of this transaction roll back, every object written here is
    expired and reloads from its row.
    """
    session.flush()  # returns at once when nothing is pending
    table = obj.__table__
    values = dict(changes)
    row_id = _row_id(obj)
    keys: dict[str, Any] = {"row_id": row_id}
    if version is not None:
        keys["seen_version"] = getattr(obj, version)
        values[version] = keys["seen_version"] + 1
    written = session.connection().execute(_update_by_id(table, version), {**values, **keys})
    if version is not None and written.rowcount != 1:
        raise StaleDataError(f"{table.name} {row_id} is no longer at version {keys['seen_version']}")
    for name, value in values.items():
        set_committed_value(obj, name, value)
    session.info.setdefault(_WRITTEN, set()).add(obj)


def _update_by_id(table: Table, version: str | None) -> Update:
    """`UPDATE table SET <the parameters' columns> WHERE id = :row_id [AND version = :seen_version]`, built once."""
    statement = _updates.get((table, version))
    if statement is None:
        condition = table.c.id == bindparam("row_id")
        if version is not None:
            condition &= table.c[version] == bindparam("seen_version")
        statement = _updates[(table, version)] = table.update().where(condition)
    return statement


@event.listens_for(Session, "after_soft_rollback")
def _expire_written(session: Session, previous: SessionTransaction) -> None:
    for obj in session.info.pop(_WRITTEN, ()):
        if obj in session:
            session.expire(obj)


@event.listens_for(Session, "after_transaction_end")
def _forget_written(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WRITTEN, None)
