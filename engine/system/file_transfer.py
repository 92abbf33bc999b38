"""Moving every stored file between the file store's backends, and checking them all (`tansiq files`).

A move copies one file, reads the copy back and compares its SHA-256 with the file's name before the
source copy is removed: at any moment each file is whole in at least one backend, so an interrupted move
loses nothing and can simply be run again. Files on disk are the content-addressed ones under
TANSIQ_HOME/evidence and, for report runs archived before the database backend, the run folders under
the reports folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.directives.evidence import Evidence
from engine.directives.meetings import MeetingDocument
from engine.foundation.errors import InvalidInput
from engine.reports import archive, runs
from engine.reports.settings import get_report_settings
from engine.storage import file_store
from engine.storage.db import Database
from engine.storage.file_store import DATABASE, DISK, CorruptFile, FileBlob
from engine.system.import_jobs import ImportJob


@dataclass(frozen=True)
class StoredFile:
    """One stored copy: its digest, its size, and its disk path (None: in the database)."""

    sha256: str
    size: int
    path: Path | None = None

    @property
    def label(self) -> str:
        return str(self.path) if self.path is not None else f"database:{self.sha256}"


def report_files_on_disk(session: Session, reports_root: Path | None = None) -> list[StoredFile]:
    """Archived report files still in their run folders (the disk layout of report archives)."""
    settings = get_report_settings()
    found = []
    for entries in session.scalars(select(runs.ReportRun.files).where(runs.ReportRun.status == runs.SUCCEEDED)):
        for entry in entries or []:
            path = archive.path_of(entry, settings) if reports_root is None else (reports_root / entry["path"])
            if path.is_file() and len(entry.get("sha256", "")) == 64:
                found.append(StoredFile(entry["sha256"], path.stat().st_size, path))
    return found


def on_disk(session: Session, home: Path) -> list[StoredFile]:
    content = [StoredFile(sha, (p := file_store.disk_path(home, sha)).stat().st_size, p)
               for sha in file_store.disk_digests(home)]
    return content + report_files_on_disk(session)


def in_database(session: Session) -> list[StoredFile]:
    return [StoredFile(sha, size) for sha, size in session.execute(
        select(FileBlob.sha256, FileBlob.size).order_by(FileBlob.sha256))]


def to_move(db: Database, home: Path, to: str) -> list[StoredFile]:
    """The copies a move to backend `to` would move (every copy in the other backend)."""
    if to not in file_store.BACKENDS:
        raise InvalidInput(f"unknown files backend {to!r} (known: {', '.join(file_store.BACKENDS)})")
    with db.reading() as session:
        return on_disk(session, home) if to == DATABASE else in_database(session)


def move_one(db: Database, home: Path, item: StoredFile, to: str) -> None:
    """Copy, read back, compare, then remove the source copy; CorruptFile (source kept) when any check fails."""
    if to == DATABASE:
        _disk_to_database(db, item)
    else:
        _database_to_disk(db, home, item)


def _disk_to_database(db: Database, item: StoredFile) -> None:
    assert item.path is not None
    try:
        with db.transaction() as session, item.path.open("rb") as source:
            file_store.put(session, source, home=item.path.parent, backend=DATABASE, sha256=item.sha256)
    except CorruptFile:
        raise CorruptFile(f"{item.path} does not hash to its SHA-256 {item.sha256}; it was left where it is") from None
    with db.reading() as session:
        if not file_store.verify_database(session, item.sha256):
            raise CorruptFile(f"the database copy of {item.path} does not match its SHA-256; the file was kept")
    item.path.unlink()


def _database_to_disk(db: Database, home: Path, item: StoredFile) -> None:
    target = file_store.disk_path(home, item.sha256)
    try:
        with db.reading() as session:
            file_store.put_disk_chunks(home, file_store.session_chunks(session, item.sha256), item.sha256)
    except CorruptFile:
        raise CorruptFile(f"the database copy of {item.sha256} does not hash to its SHA-256; it was kept in the "
                          "database") from None
    if not file_store.verify_disk(target, item.sha256):
        raise CorruptFile(f"{target} does not match its SHA-256 {item.sha256}; the database copy was kept")
    with db.transaction() as session:
        file_store.remove_database(session, item.sha256)


# --- verify -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    label: str
    reason: str

    def __str__(self) -> str:
        return f"{self.label}: {self.reason}"


def everything(db: Database, home: Path) -> list[StoredFile]:
    with db.reading() as session:
        return in_database(session) + on_disk(session, home)


def check_one(db: Database, item: StoredFile) -> Problem | None:
    """Re-compute one copy's checksum."""
    if item.path is None:
        with db.reading() as session:
            ok = file_store.verify_database(session, item.sha256)
    else:
        ok = file_store.verify_disk(item.path, item.sha256)
    return None if ok else Problem(item.label, "its content does not match its SHA-256")


def missing(db: Database, home: Path) -> Iterator[Problem]:
    """Files that rows name but no backend holds."""
    with db.reading() as session:
        named = [(f"evidence {i}", sha) for i, sha in session.execute(select(Evidence.id, Evidence.sha256))]
        named += [(f"meeting document {i}", sha) for i, sha in session.execute(
            select(MeetingDocument.id, MeetingDocument.sha256))]
        named += [(f"import job {i}", sha) for i, sha in session.execute(
            select(ImportJob.id, ImportJob.sha256).where(ImportJob.sha256.is_not(None))) if sha is not None]
        for run_id, entries in session.execute(select(runs.ReportRun.id, runs.ReportRun.files)
                                               .where(runs.ReportRun.status == runs.SUCCEEDED)):
            named += [(f"report run {run_id} {e['path']}", e) for e in entries or []]
        for label, ref in named:
            if isinstance(ref, dict):
                found = file_store.locate(session, home, ref["sha256"], also=archive.path_of(ref))
                sha = ref["sha256"]
            else:
                found, sha = file_store.locate(session, home, ref), ref
            if found is None:
                yield Problem(label, f"its file {sha} is missing from every backend")


__all__ = ["DATABASE", "DISK", "Problem", "StoredFile", "check_one", "everything", "missing", "move_one", "to_move"]
