"""Evidence files (شواهد الإنجاز): what a file really is, judged by its bytes; where it is kept; its row.

A file is accepted only when its content is one of the allowed kinds (PDF, PNG, JPEG, XLSX, DOCX,
plain UTF-8 text), whatever its name or the type the browser claimed. Office files are zip archives:
they must hold the inner parts of their kind, and are refused when they would unpack to too much
(zip bombs). Files go to the file store (`engine.storage.file_store`: the database, or on disk under
`HOME/evidence/<first two hex digits>/<sha256>`), named by their digest: a name typed by a user never
becomes a path, and the same content is stored once. Checks read a seekable file object a chunk at a
time. The row in `evidence` keeps a cleaned-up display name only.
"""

from __future__ import annotations

import codecs
import io
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.directives.evidence import Evidence
from engine.foundation import clock
from engine.foundation.errors import N_, InvalidInput, NotFound, Sentence
from engine.storage import audit, file_store
from engine.storage.db import MAX_ID

if TYPE_CHECKING:
    from engine.directives.access import Actor
    from engine.directives.directives import Directive

PDF, PNG, JPEG, XLSX, DOCX, TEXT = "pdf", "png", "jpeg", "xlsx", "docx", "txt"
CONTENT_TYPES = {
    PDF: "application/pdf",
    PNG: "image/png",
    JPEG: "image/jpeg",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    TEXT: "text/plain; charset=utf-8",
}
EXTENSIONS = {PDF: ".pdf", PNG: ".png", JPEG: ".jpg", XLSX: ".xlsx", DOCX: ".docx", TEXT: ".txt"}
# The main part each Office kind must declare in [Content_Types].xml, and the part it must contain.
_OFFICE = {
    XLSX: ("xl/workbook.xml", b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
    DOCX: ("word/document.xml", b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"),
}
# Unicode's control characters (category Cc) but tab, line feed, form feed and carriage return.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_CHUNK = 1 << 16


class EvidenceTooLarge(InvalidInput):
    code = "evidence-too-large"


class UnsupportedEvidence(InvalidInput):
    code = "unsupported-evidence-type"


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 10_000_000
    max_files: int = 5
    kinds: frozenset[str] = field(default_factory=lambda: frozenset(CONTENT_TYPES))
    max_unzipped_bytes: int = 100_000_000
    max_zip_ratio: int = 100
    max_zip_entries: int = 2_000


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed every check: its seekable source (an upload's spooled file, never read whole into
    memory) until it is stored, with the digest and size computed while checking."""

    filename: str
    kind: str
    content_type: str
    size: int
    sha256: str
    source: BinaryIO = field(repr=False)

    @property
    def data(self) -> bytes:
        """The whole content (for small files and tests only)."""
        return b"".join(file_store.read_chunks(self.source))


def check_many(files: Iterable[tuple[str | None, BinaryIO | bytes]], limits: Limits) -> list[CheckedFile]:
    """Check every file before anything is stored: one bad file refuses them all."""
    files = list(files)
    if len(files) > limits.max_files:
        raise InvalidInput(N_("at most %(limit)s files at once"), params={"limit": limits.max_files})
    return [check(name, source, limits) for name, source in files]


def check(name: str | None, source: BinaryIO | bytes, limits: Limits) -> CheckedFile:
    source = file_store.seekable(source)
    sha256, size = file_store.digest(source, limits.max_bytes)
    if size > limits.max_bytes:
        raise EvidenceTooLarge(N_("%(name)s is larger than %(limit)s bytes, the most a file may be"),
                               params={"name": safe_filename(name), "limit": limits.max_bytes})
    display = safe_filename(name)
    if not size:
        raise InvalidInput(N_("%(name)s is empty"), params={"name": display})
    kind = sniff_file(source, limits)
    if kind is None or kind not in limits.kinds:
        allowed = ", ".join(sorted(k.upper() for k in limits.kinds))
        raise UnsupportedEvidence(N_("%(name)s is not an accepted kind of file (%(kinds)s)"),
                                  params={"name": display, "kinds": allowed})
    source.seek(0)
    return CheckedFile(filename=with_extension(display, kind), kind=kind, content_type=CONTENT_TYPES[kind],
                       size=size, sha256=sha256, source=source)


def sniff(data: bytes, limits: Limits | None = None) -> str | None:
    """The kind of file the bytes are, or None when they are none of the accepted kinds."""
    return sniff_file(io.BytesIO(data), limits)


def sniff_file(source: BinaryIO, limits: Limits | None = None) -> str | None:
    """The kind of file a seekable file object holds (read from its start, a chunk at a time)."""
    limits = limits or Limits()
    source.seek(0)
    head = source.read(8)
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"PK\x03\x04"):
        return _office_kind(source, limits)
    if _is_text(source):
        return TEXT
    return None


def _is_text(source: BinaryIO) -> bool:
    """UTF-8 (a BOM allowed) without control characters other than tab, newlines and form feed."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        for chunk in file_store.read_chunks(source, _CHUNK):
            if _CONTROLS.search(decoder.decode(chunk)):
                return False
        return not _CONTROLS.search(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        return False


def _office_kind(source: BinaryIO, limits: Limits) -> str:
    """XLSX or DOCX, after checking the archive cannot unpack to more than the limits allow."""
    try:
        source.seek(0)
        with zipfile.ZipFile(source) as archive:
            entries = archive.infolist()
            if len(entries) > limits.max_zip_entries:
                raise UnsupportedEvidence(f"the archive has more than {limits.max_zip_entries:,} parts")
            declared = sum(entry.file_size for entry in entries)
            if declared > limits.max_unzipped_bytes:
                raise UnsupportedEvidence("the archive would unpack to too much data (a zip bomb?)")
            for entry in entries:
                if entry.file_size > (1 << 20) and entry.file_size > limits.max_zip_ratio * max(entry.compress_size, 1):
                    raise UnsupportedEvidence("the archive is compressed beyond any real document (a zip bomb?)")
            names = {entry.filename for entry in entries}
            kind = next((k for k, (part, _) in _OFFICE.items() if part in names), None)
            if kind is None or "[Content_Types].xml" not in names:
                raise UnsupportedEvidence("the archive is not an XLSX or DOCX document")
            if any(name.lower().endswith("vbaproject.bin") for name in names):
                raise UnsupportedEvidence("documents with macros are not accepted")
            content_types = archive.read("[Content_Types].xml")
            if _OFFICE[kind][1] not in content_types:
                raise UnsupportedEvidence("the archive does not declare a plain XLSX or DOCX document")
            _unpack_within(archive, entries, limits.max_unzipped_bytes)
            return kind
    except UnsupportedEvidence:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, zlib.error,
            ValueError, OSError):
        raise UnsupportedEvidence("the archive is damaged, encrypted or of an unknown kind") from None


def _unpack_within(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo], budget: int) -> None:
    """Read every part once (never to disk): the checksums must hold and the total stay in budget."""
    total = 0
    for entry in entries:
        with archive.open(entry) as part:
            while chunk := part.read(_CHUNK):
                total += len(chunk)
                if total > budget:
                    raise UnsupportedEvidence("the archive would unpack to too much data (a zip bomb?)")


def safe_filename(name: str | None) -> str:
    """A display name: no folders, no control or bidirectional-override characters, at most 200 characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"))
    name = " ".join(name.split()).lstrip(". ")
    if not name:
        name = "evidence"
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 190] + dot + ext[:9]) if dot and len(ext) <= 9 else name[:200]
    return name


def with_extension(name: str, kind: str) -> str:
    """The name ends with the extension of what the file really is (`report.exe` holding a PDF opens as a PDF)."""
    extension = EXTENSIONS[kind]
    if kind == JPEG and name.lower().endswith(".jpeg"):
        return name
    return name if name.lower().endswith(extension) else name + extension


# --- storage ---------------------------------------------------------------------------------------

def path_for(home: Path, sha256: str) -> Path:
    """Where the disk backend keeps a file (the layout of every installation before the database backend)."""
    return file_store.disk_path(home, sha256)


def store(session: Session, home: Path, checked: CheckedFile, backend: str | None = None) -> file_store.Stored:
    """Put the file in the file store under its digest (once per content), in the session's transaction."""
    return file_store.put(session, checked.source, home=home, backend=backend, sha256=checked.sha256)


def record(session: Session, checked: CheckedFile, actor: str, *, directive_id: int | None,
           work_item_id: int | None = None, instance_id: int | None = None) -> Evidence:
    """The evidence row (the file must be stored already), with its audit event."""
    row = Evidence(
        directive_id=directive_id, work_item_id=work_item_id, instance_id=instance_id,
        filename=checked.filename[:255], content_type=checked.content_type, size=checked.size,
        sha256=checked.sha256, uploaded_by=actor[:200], uploaded_at=clock.now(),
    )
    session.add(row)
    session.flush()
    subject = f"directive:{directive_id}" if directive_id is not None else f"instance:{instance_id}"
    audit.record(session, actor, "evidence.uploaded", subject, {
        "evidence": row.id, "filename": row.filename, "sha256": row.sha256, "size": row.size,
        "type": checked.kind, "work_item": work_item_id,
    })
    return row


def store_and_record(session: Session, home: Path, files: list[CheckedFile], actor: str, *,
                     directive_id: int | None, work_item_id: int | None = None,
                     instance_id: int | None = None, backend: str | None = None) -> list[Evidence]:
    """Store each file and write its row in the same transaction: a rolled-back upload leaves no file."""
    rows = []
    for checked in files:
        store(session, home, checked, backend)
        rows.append(record(session, checked, actor, directive_id=directive_id, work_item_id=work_item_id,
                           instance_id=instance_id))
    return rows


def get(session: Session, evidence_id: int) -> Evidence:
    row = session.get(Evidence, evidence_id)
    if row is None:
        raise NotFound(N_("no evidence %(evidence)s"), params={"evidence": str(evidence_id)})
    return row


@dataclass(frozen=True)
class Download:
    """An evidence file as its caller receives it: where it is kept, its type, and the name to give it."""

    file: file_store.Located
    content_type: str
    filename: str


def for_download(session: Session, home: Path, user: Actor, evidence_id: int) -> Download:
    """Evidence `evidence_id` for `user`, who must be allowed to see its directive (or, for evidence
    without one, read everything). A caller who may not see it is told it does not exist (`NotFound`),
    as is everyone when its file is missing from the store."""
    from engine.directives import access

    row = session.get(Evidence, evidence_id) if 0 < evidence_id <= MAX_ID else None
    if row is None:
        raise NotFound(N_("no evidence %(evidence)s"), params={"evidence": str(evidence_id)})
    directive = _directive_of(session, row)
    if not (access.can_see_directive(session, user, directive) if directive else access.reads_all(user)):
        raise NotFound(N_("no evidence %(evidence)s"), params={"evidence": str(evidence_id)})
    found = file_store.require(session, home, row.sha256, what=Sentence(N_("the file of evidence %(evidence)s"),
                                                                             evidence=str(evidence_id)))
    return Download(file=found, content_type=row.content_type, filename=row.filename)


def _directive_of(session: Session, row: Evidence) -> Directive | None:
    from engine.directives.directives import Directive

    directive = session.get(Directive, row.directive_id) if row.directive_id is not None else None
    if directive is None and row.instance_id is not None:
        directive = session.scalar(select(Directive).where(Directive.instance_id == row.instance_id))
    return directive


def of_directive(session: Session, directive_id: int) -> list[Evidence]:
    return list(session.scalars(select(Evidence).where(Evidence.directive_id == directive_id).order_by(Evidence.id)))


_OF_WORK_ITEM = select(Evidence).where(Evidence.work_item_id == bindparam("work_item_id")).order_by(Evidence.id)


def of_work_item(session: Session, work_item_id: int) -> list[Evidence]:
    return list(session.scalars(_OF_WORK_ITEM, {"work_item_id": work_item_id}))


def require_in_instance(session: Session, evidence_ids: list[int], instance_id: int) -> None:
    """Evidence named in a step's form must have been uploaded to the same process."""
    if not evidence_ids:
        return
    found = set(session.scalars(
        select(Evidence.id).where(Evidence.id.in_(evidence_ids), Evidence.instance_id == instance_id)
    ))
    missing = sorted(set(evidence_ids) - found)
    if missing:
        raise InvalidInput(N_("no evidence %(evidence)s was uploaded to this directive"),
                           params={"evidence": ", ".join(map(str, missing))})
