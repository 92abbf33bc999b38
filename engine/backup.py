"""Backup and restore of the whole database, while Tansiq runs.

SQLite: the online backup API copies a consistent snapshot page by page without stopping writers.
PostgreSQL: `pg_dump` in its custom format (one consistent snapshot) and `pg_restore --clean`.
Files kept outside the database (evidence, archived reports) are copied by the operator with the
folder under TANSIQ_HOME; their names are content hashes, so copying them twice is harmless.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from engine.errors import InvalidInput, TansiqError

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"


class BackupFailed(TansiqError):
    code = "backup-failed"


def backup(database_url: str, target: Path) -> Path:
    """Write a consistent copy of the database to `target` (refuses to overwrite a file)."""
    if target.exists():
        raise InvalidInput(f"{target} exists already; choose a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        _sqlite_copy(_sqlite_path(database_url), target)
    else:
        _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(target), _libpq(database_url)],
             database_url)
    return target


def restore(database_url: str, source: Path) -> None:
    """Replace the database's content with the backup's (the schema comes with it)."""
    if not source.is_file():
        raise InvalidInput(f"no backup file {source}")
    head = source.read_bytes()[:16]
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if head != SQLITE_MAGIC:
            raise InvalidInput(f"{source} is not a SQLite backup")
        _sqlite_copy(source, _sqlite_path(database_url))
    else:
        if not head.startswith(PG_MAGIC):
            raise InvalidInput(f"{source} is not a PostgreSQL backup (pg_dump custom format)")
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
              "--dbname", _libpq(database_url), str(source)], database_url)


def _sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise InvalidInput("an in-memory database has nothing to back up")
    return Path(database)


def _sqlite_copy(source: Path, target: Path) -> None:
    """sqlite3's online backup: a consistent snapshot even while others write."""
    source_connection = sqlite3.connect(source)
    target_connection = sqlite3.connect(target)
    try:
        with target_connection:
            source_connection.backup(target_connection, pages=1024)
    finally:
        target_connection.close()
        source_connection.close()


def _libpq(database_url: str) -> str:
    """The SQLAlchemy URL as a libpq one (no driver suffix)."""
    url = make_url(database_url).set(drivername="postgresql", password=None)  # the password goes in PGPASSWORD
    return url.render_as_string(hide_password=False)


def _run(command: list[str], database_url: str) -> None:
    env = dict(os.environ)
    password = make_url(database_url).password
    if password:
        env["PGPASSWORD"] = str(password)
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600, check=False)
    except FileNotFoundError:
        raise BackupFailed(f"{command[0]} is not installed (Debian: postgresql-client)") from None
    if done.returncode != 0:
        raise BackupFailed(f"{command[0]} failed: {done.stderr.strip().splitlines()[-1] if done.stderr else '?'}")
