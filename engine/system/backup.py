"""Backup and restore of everything Tansiq keeps, while it runs: the database and the files on disk.

`backup` writes one tar archive: `manifest.json` (format version, database kind, schema revision, and
every member with its SHA-256 and size), the database dump, and every file the file store keeps on
disk (content-addressed files under TANSIQ_HOME/evidence, report run folders under the reports folder).
Files kept in the database (the default backend) come with the dump.

SQLite: the online backup API copies a consistent snapshot page by page without stopping writers.
PostgreSQL: `pg_dump` in its custom format (one consistent snapshot) and `pg_restore --clean`.

`restore` checks every member's checksum before it replaces anything, then restores the database and
the files. Backups of the older format (a bare SQLite file, or a pg_dump custom-format file) still restore.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.engine import make_url

from engine.foundation import clock
from engine.foundation.errors import InvalidInput, TansiqError
from engine.storage import file_store

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
FORMAT = "tansiq-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CONTENT, REPORT = "content", "report"  # a content-addressed file, a file of a report run's folder


class BackupFailed(TansiqError):
    code = "backup-failed"


@dataclass(frozen=True)
class DiskFile:
    """A file on disk to back up: `kind` says where it goes back (content-addressed or a report folder)."""

    kind: str
    relative: str  # the digest for CONTENT, the path under the reports folder for REPORT
    path: Path


def disk_files(home: Path | None, reports: Path | None) -> list[DiskFile]:
    """Every file the file store keeps on disk (content-addressed), and every archived report file."""
    found = []
    if home is not None:
        found += [DiskFile(CONTENT, sha, file_store.disk_path(home, sha)) for sha in file_store.disk_digests(home)]
    if reports is not None and reports.is_dir():
        found += [DiskFile(REPORT, path.relative_to(reports).as_posix(), path) for path in sorted(reports.rglob("*"))
                  if path.is_file() and not any(part.startswith(".") for part in path.relative_to(reports).parts)]
    return found


def backup(database_url: str, target: Path, *, home: Path | None = None, reports: Path | None = None) -> Path:
    """Write the database and the files on disk to one new archive `target` (never overwrites a file)."""
    if target.exists():
        raise InvalidInput(f"{target} exists already; choose a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    kind = _kind(database_url)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tansiq-backup-") as scratch:
        dump = Path(scratch) / ("database.sqlite" if kind == "sqlite" else "database.pgdump")
        _dump(database_url, dump)
        members = [_member(dump.name, dump, "database")]
        files = disk_files(home, reports)
        members += [_member(f"files/{f.kind}/{f.relative}", f.path, f.kind, f.relative) for f in files]
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "database": kind,
                    "revision": _revision(database_url), "created_at": clock.now().isoformat(), "members": members}
        partial = Path(scratch) / "backup.tar"
        _write_tar(partial, manifest, {m["name"]: p for m, p in zip(members, [dump, *(f.path for f in files)],
                                                                     strict=True)})
        os.replace(partial, target)
    return target


def _member(name: str, path: Path, kind: str, relative: str | None = None) -> dict[str, Any]:
    sha256, size = file_store.hash_chunks(file_store.disk_chunks(path))
    return {"name": name, "kind": kind, "relative": relative, "sha256": sha256, "bytes": size}


def _write_tar(target: Path, manifest: dict[str, Any], paths: dict[str, Path]) -> None:
    body = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
    with target.open("wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(body), int(clock.now().timestamp()), 0o640
            tar.addfile(info, _BytesReader(body))
            for name, path in paths.items():
                tar.add(path, arcname=name, recursive=False)
        raw.flush()  # the archive's end blocks too, written when the tar closes
        os.fsync(raw.fileno())


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.at + size
        chunk, self.at = self.data[self.at:end], min(end, len(self.data))
        return chunk


def _dump(database_url: str, target: Path) -> None:
    if _kind(database_url) == "sqlite":
        _sqlite_copy(_sqlite_path(database_url), target)
    else:
        _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(target), _libpq(database_url)],
             database_url)


def _revision(database_url: str) -> str | None:
    from engine.system import migrate

    return migrate.current_revision(database_url)


def _kind(database_url: str) -> str:
    return "sqlite" if make_url(database_url).get_backend_name() == "sqlite" else "postgresql"


# --- restore ------------------------------------------------------------------------------------------------

def restore(database_url: str, source: Path, *, home: Path | None = None, reports: Path | None = None) -> None:
    """Replace the database's content (the schema comes with it) and put the backup's files back on disk.
    Every checksum is checked first: a damaged or foreign archive changes nothing."""
    if not source.is_file():
        raise InvalidInput(f"no backup file {source}")
    with source.open("rb") as handle:
        head = handle.read(16)
    if head == SQLITE_MAGIC or head.startswith(PG_MAGIC):
        _restore_database(database_url, source, head)  # the older format: a bare database dump
        return
    if not tarfile.is_tarfile(source):
        raise InvalidInput(f"{source} is not a Tansiq backup")
    with tarfile.open(source, "r") as tar:
        manifest = _manifest(tar, source)
        if manifest["database"] != _kind(database_url):
            raise InvalidInput(f"{source} is a backup of a {manifest['database']} database, not of this "
                               f"{_kind(database_url)} one")
        for member in manifest["members"]:
            _check_member(tar, member)
        targets = [_target_of(m, home, reports) for m in manifest["members"][1:]]
        with tempfile.TemporaryDirectory(prefix=".tansiq-restore-") as scratch:
            database = Path(scratch) / "database"
            _extract(tar, manifest["members"][0], database)
            with database.open("rb") as handle:
                _restore_database(database_url, database, handle.read(16))
        for member, target in zip(manifest["members"][1:], targets, strict=True):
            _put_back(tar, member, target)


def _manifest(tar: tarfile.TarFile, source: Path) -> dict[str, Any]:
    try:
        handle = tar.extractfile(MANIFEST)
        manifest = json.loads(handle.read(10_000_000)) if handle else None
    except (KeyError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"{source} is not a Tansiq backup (no manifest)")
    if manifest.get("version") != FORMAT_VERSION:
        raise InvalidInput(f"{source} is a backup of format {manifest.get('version')}; this Tansiq reads "
                           f"format {FORMAT_VERSION}")
    members = manifest.get("members") or []
    if not members or members[0].get("kind") != "database":
        raise InvalidInput(f"{source} holds no database")
    return manifest


def _member_chunks(tar: tarfile.TarFile, member: dict[str, Any]) -> Iterator[bytes]:
    try:
        handle = tar.extractfile(str(member["name"]))
    except KeyError:
        handle = None
    if handle is None:
        raise InvalidInput(f"the backup lacks {member['name']}")
    while chunk := handle.read(file_store.CHUNK_SIZE):
        yield chunk


def _check_member(tar: tarfile.TarFile, member: dict[str, Any]) -> None:
    sha256, size = file_store.hash_chunks(_member_chunks(tar, member))
    if sha256 != member.get("sha256") or size != member.get("bytes"):
        raise InvalidInput(f"{member['name']} in the backup does not match its checksum; nothing was restored")


def _target_of(member: dict[str, Any], home: Path | None, reports: Path | None) -> Path:
    """Where a file goes back: never outside TANSIQ_HOME/evidence or the reports folder."""
    relative = str(member.get("relative") or "")
    if member["kind"] == CONTENT:
        if home is None:
            raise InvalidInput("the backup holds files; say where TANSIQ_HOME is")
        if relative != member["sha256"]:
            raise InvalidInput(f"{member['name']} in the backup is not named by its checksum")
        return file_store.disk_path(home, relative)
    if member["kind"] == REPORT and reports is not None:
        parts = PurePosixPath(relative).parts
        if not parts or relative.startswith("/") or any(p in ("..", ".", "") for p in parts):
            raise InvalidInput(f"{member['name']} in the backup has an unsafe path")
        return reports.joinpath(*parts)
    raise InvalidInput(f"{member['name']} in the backup is of an unknown kind, or the reports folder is unknown")


def _extract(tar: tarfile.TarFile, member: dict[str, Any], target: Path) -> None:
    file_store.write_atomically(target, _member_chunks(tar, member), member["sha256"])


def _put_back(tar: tarfile.TarFile, member: dict[str, Any], target: Path) -> None:
    if target.is_file() and file_store.verify_disk(target, member["sha256"]):
        return
    target.unlink(missing_ok=True)
    _extract(tar, member, target)


def _restore_database(database_url: str, source: Path, head: bytes) -> None:
    if _kind(database_url) == "sqlite":
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
