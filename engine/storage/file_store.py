"""Every stored file (evidence, meeting documents, report archives, import uploads), one interface.

Files are content-addressed: a file is named by its SHA-256, so the same content is stored once and a
name typed by a user never becomes a path. Two backends (setting `files_backend`):

- database (default): a `file_blob` row (digest, size, chunk count) and its ordered `file_chunk` rows of
  256 KiB, written through the caller's session, so the file commits or rolls back with the row that
  names it, and every API node reaches every file. The file is read from a seekable file object and
  written chunk by chunk, and downloads stream chunk by chunk: a file is never whole in memory.
- disk: today's layout, `TANSIQ_HOME/evidence/<first two hex digits>/<sha256>` (atomic write, fsync),
  for one-node installations and for the files written before the database backend existed.

Readers look in both (the database first), so switching the backend never loses an old file;
`tansiq files move` moves everything from one to the other.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, bindparam, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.foundation import clock
from engine.foundation.checks import present
from engine.foundation.errors import N_, InvalidInput, NotFound, Sentence, Term
from engine.storage.db import Base, UTCDateTime, rowcount

if TYPE_CHECKING:
    from engine.storage.db import Database

DATABASE, DISK = "database", "disk"
BACKENDS = (DATABASE, DISK)
CHUNK_SIZE = 256 * 1024
_HEX = frozenset("0123456789abcdef")


class FileBlob(Base):
    """One stored content: its digest, size and how many chunks hold it."""

    __tablename__ = "file_blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunks: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FileChunk(Base):
    """Part `seq` (from 0) of a blob: at most CHUNK_SIZE bytes, so no row is ever a whole big file."""

    __tablename__ = "file_chunk"

    sha256: Mapped[str] = mapped_column(ForeignKey("file_blob.sha256", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class CorruptFile(InvalidInput):
    code = "corrupt-file"


@dataclass(frozen=True)
class Stored:
    """Where a file went: its digest, its size, and the backend that holds it."""

    sha256: str
    size: int
    backend: str


@dataclass(frozen=True)
class Located:
    """A stored file found for reading: in the database (path None) or on disk at `path`."""

    sha256: str
    size: int
    path: Path | None = None

    @property
    def backend(self) -> str:
        return DISK if self.path is not None else DATABASE

    def chunks(self, db: Database) -> Iterator[bytes]:
        """The content, CHUNK_SIZE bytes at a time; each database chunk is read by its own short statement,
        so a slow download holds no connection or transaction between chunks."""
        if self.path is not None:
            yield from disk_chunks(self.path)
            return
        yield from _database_chunks(db, self.sha256, self.size)


def check_digest(sha256: str) -> str:
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise InvalidInput("not a SHA-256 digest")
    return sha256


def backend_or_default(backend: str | None) -> str:
    if backend is None:
        from engine.foundation.settings import get_settings

        backend = get_settings().files_backend
    if backend not in BACKENDS:
        raise InvalidInput(N_("unknown files backend %(value)s (known: %(known)s)"),
                           params={"value": repr(backend), "known": ", ".join(BACKENDS)})
    return backend


def disk_path(home: Path, sha256: str) -> Path:
    """Today's layout on disk (the evidence folder holds every content-addressed file)."""
    check_digest(sha256)
    return Path(home) / "evidence" / sha256[:2] / sha256


# --- reading a source ---------------------------------------------------------------------------------

def seekable(source: BinaryIO | bytes) -> BinaryIO:
    """A file object that can be read twice; bytes are wrapped, a pipe is spooled to a temporary file."""
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    if source.seekable():
        return source
    spooled = tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE * 4)  # noqa: SIM115 (returned to the caller)
    shutil.copyfileobj(source, spooled, CHUNK_SIZE)
    spooled.seek(0)
    return spooled  # type: ignore[return-value]


def read_chunks(source: BinaryIO, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The source from its start, `size` bytes at a time."""
    source.seek(0)
    while chunk := source.read(size):
        yield chunk


def digest(source: BinaryIO, max_bytes: int | None = None) -> tuple[str, int]:
    """SHA-256 and size of a file object, read in chunks (past `max_bytes` it stops: size is then larger)."""
    hasher, total = hashlib.sha256(), 0
    for chunk in read_chunks(source):
        hasher.update(chunk)
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            break
    return hasher.hexdigest(), total


# --- writing ----------------------------------------------------------------------------------------------

def put(session: Session, source: BinaryIO | bytes, *, home: Path, backend: str | None = None,
        sha256: str | None = None) -> Stored:
    """Store a file once per content. In the database it joins the session's transaction (rolled back
    with it); on disk it is written atomically. `sha256`, when the caller hashed the file already, is
    checked again while writing."""
    backend = backend_or_default(backend)
    source = seekable(source)
    if sha256 is None:
        sha256, _ = digest(source)
    check_digest(sha256)
    if backend == DATABASE:
        return Stored(sha256, _put_database(session, source, sha256), DATABASE)
    return Stored(sha256, put_disk_chunks(home, read_chunks(source), sha256), DISK)


def _put_database(session: Session, source: BinaryIO, sha256: str) -> int:
    existing = session.scalar(select(FileBlob.size).where(FileBlob.sha256 == sha256))
    if existing is not None:
        return existing
    if not _claim_blob(session, sha256):  # another transaction stored the same content meanwhile
        return present(session.scalar(select(FileBlob.size).where(FileBlob.sha256 == sha256)), "a stored blob's size")
    hasher, total, seq = hashlib.sha256(), 0, 0
    for chunk in read_chunks(source):
        hasher.update(chunk)
        session.execute(insert(FileChunk), {"sha256": sha256, "seq": seq, "data": chunk})
        total, seq = total + len(chunk), seq + 1
    if hasher.hexdigest() != sha256:
        raise CorruptFile("the file changed while it was being stored")  # the caller's transaction rolls back
    session.execute(FileBlob.__table__.update().where(FileBlob.sha256 == sha256).values(size=total, chunks=seq))
    return total


def _claim_blob(session: Session, sha256: str) -> bool:
    """Insert the blob row unless it exists; on PostgreSQL a concurrent insert of the same digest waits for
    the other transaction and then counts as existing (or inserts, if that one rolled back)."""
    values = {"sha256": sha256, "size": 0, "chunks": 0, "created_at": clock.now()}
    dialect = session.get_bind().dialect.name
    statement = (pg_insert(FileBlob) if dialect == "postgresql" else sqlite_insert(FileBlob)).values(values)
    result = session.execute(statement.on_conflict_do_nothing(index_elements=["sha256"]))
    return bool(rowcount(result))


def put_disk_chunks(home: Path, chunks: Iterable[bytes], sha256: str) -> int:
    """Write a content-addressed file on disk from its chunks (refused, nothing left, when they do not hash
    to `sha256`); an existing file of that name is kept."""
    target = disk_path(home, sha256)
    if target.is_file():
        return target.stat().st_size
    return write_atomically(target, chunks, sha256)


def write_atomically(target: Path, chunks: Iterable[bytes], sha256: str) -> int:
    """Write `target` through a temporary file, fsync'd and renamed into place, if the content hashes right."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    temporary = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    hasher, total = hashlib.sha256(), 0
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for chunk in chunks:
                hasher.update(chunk)
                handle.write(chunk)
                total += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if hasher.hexdigest() != sha256:
            raise CorruptFile("the file changed while it was being stored")
        os.replace(temporary, target)
        _fsync_dir(target.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return total


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- reading ----------------------------------------------------------------------------------------------

def locate(session: Session, home: Path, sha256: str, *, also: Path | None = None) -> Located | None:
    """Where the file is: the database first, then the disk layout, then `also` (an older path, e.g. a
    report archive's folder). None when it is nowhere."""
    check_digest(sha256)
    size = session.scalar(select(FileBlob.size).where(FileBlob.sha256 == sha256))
    if size is not None:
        return Located(sha256, size)
    for path in (disk_path(home, sha256), also):
        if path is not None and path.is_file():
            return Located(sha256, path.stat().st_size, path)
    return None


def require(session: Session, home: Path, sha256: str, *, also: Path | None = None, what: str = N_("the file")
            ) -> Located:
    """Where a file is; NotFound naming `what` (a `Sentence`, or a word marked with N_) when it is nowhere."""
    found = locate(session, home, sha256, also=also)
    if found is None:
        raise NotFound(N_("%(what)s is missing from the store"),
                       params={"what": what if isinstance(what, Sentence) else Term(what)})
    return found


def read_bytes(session: Session, home: Path, sha256: str) -> bytes:
    """A whole (small) file, for the few readers that need it in memory (openpyxl reads a workbook whole)."""
    found = require(session, home, sha256)
    if found.path is not None:
        return found.path.read_bytes()
    return b"".join(session.scalars(select(FileChunk.data).where(FileChunk.sha256 == sha256)
                                    .order_by(FileChunk.seq)))


def disk_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


_CHUNK_QUERY = select(FileChunk.data).where(FileChunk.sha256 == bindparam("sha256"), FileChunk.seq == bindparam("seq"))


def _database_chunks(db: Database, sha256: str, size: int) -> Iterator[bytes]:
    seq, sent = 0, 0
    while sent < size:
        with db.single_read() as connection:
            chunk = connection.scalar(_CHUNK_QUERY, {"sha256": sha256, "seq": seq})
        if chunk is None:
            raise NotFound(N_("chunk %(chunk)s of file %(file)s is missing"),
                           params={"chunk": str(seq), "file": sha256})
        yield bytes(chunk)
        seq, sent = seq + 1, sent + len(chunk)


def session_chunks(session: Session, sha256: str) -> Iterator[bytes]:
    """A database blob's chunks through an open session, one statement each (for moves and checks)."""
    count = session.scalar(select(FileBlob.chunks).where(FileBlob.sha256 == sha256)) or 0
    for seq in range(count):
        chunk = session.scalar(select(FileChunk.data).where(FileChunk.sha256 == sha256, FileChunk.seq == seq))
        if chunk is None:
            raise NotFound(N_("chunk %(chunk)s of file %(file)s is missing"),
                           params={"chunk": str(seq), "file": sha256})
        yield bytes(chunk)


# --- listing, checking, removing (for `tansiq files`) -----------------------------------------------------

def database_digests(session: Session) -> list[str]:
    return list(session.scalars(select(FileBlob.sha256).order_by(FileBlob.sha256)))


def disk_digests(home: Path) -> list[str]:
    root = Path(home) / "evidence"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.glob("??/*") if p.is_file() and len(p.name) == 64 and set(p.name) <= _HEX)


def hash_chunks(chunks: Iterator[bytes]) -> tuple[str, int]:
    hasher, total = hashlib.sha256(), 0
    for chunk in chunks:
        hasher.update(chunk)
        total += len(chunk)
    return hasher.hexdigest(), total


def verify_database(session: Session, sha256: str) -> bool:
    """The blob's content hashes to its name, its size and chunk count match its row."""
    blob = session.get(FileBlob, sha256)
    if blob is None:
        return False
    count = session.scalar(select(func.count()).select_from(FileChunk).where(FileChunk.sha256 == sha256))
    actual, size = hash_chunks(session_chunks(session, sha256))
    return actual == sha256 and size == blob.size and count == blob.chunks


def verify_disk(path: Path, sha256: str) -> bool:
    return path.is_file() and hash_chunks(disk_chunks(path))[0] == sha256


def remove_database(session: Session, sha256: str) -> None:
    session.execute(delete(FileChunk).where(FileChunk.sha256 == sha256))
    session.execute(delete(FileBlob).where(FileBlob.sha256 == sha256))


TABLES = (FileBlob.__table__, FileChunk.__table__)
