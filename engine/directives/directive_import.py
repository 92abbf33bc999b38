"""Directives from an Excel workbook (استيراد التوجيهات من ملف Excel).

`template` makes the workbook to fill in: one sheet of directives with Arabic and English headers
(two header rows), drop-down lists for the kind, track, programme track, priority and entities, a
hidden sheet holding those lists, and a sheet of instructions.

`import_directives` reads a filled workbook and validates every row before anything is stored,
reporting each problem by row and column (and a machine-readable `code` a UI can translate): wrong
or missing headers, missing values, unknown choices, unknown or inactive entities, bad Gregorian or
Hijri dates, deadlines already passed, bad or duplicate references (within the file and against the
database), unknown meetings. Then, as the caller chooses, it imports every row or none
(`all_or_nothing`), or the valid rows only (`valid_rows`); a dry run stops after the validation.
Optionally it launches what it imported. A progress callback hears `(stage, done, total)`.

Rows are written in batches in the caller's one transaction, with set-based look-ups (one query per
batch, not per row), each directive recorded in the audit trail as `directive.created` like one
registered by hand (plus `directives.imported` for the whole file). Directives are drafts unless
launched; launching runs each one's process, which is the slow part of a large import.
"""

from __future__ import annotations

import io
import re
import time as timer
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.bpmn.process_models import ProcessModel
from engine.calendar import seasons
from engine.calendar.business_calendar import parse_day, parse_deadline
from engine.calendar.durations import RIYADH
from engine.directives import directives, evidence_store
from engine.directives.directives import (
    ALL_ENTITIES,
    DRAFT,
    KINDS,
    PRIORITIES,
    PROGRAMME_TRACKS,
    REFERENCE_PATTERN,
    TRACKS,
    Directive,
    DirectiveSequence,
    DirectiveTag,
    directive_supporting_entity,
)
from engine.directives.meetings import Meeting
from engine.directives.tags import clean_tags, split_tags
from engine.foundation import clock
from engine.foundation.errors import N_, InvalidInput, TansiqError
from engine.foundation.spreadsheets import append_row, set_cell
from engine.people.entities import Entity
from engine.storage import audit

ALL_OR_NOTHING, VALID_ROWS = "all_or_nothing", "valid_rows"
MODES = (ALL_OR_NOTHING, VALID_ROWS)
MAX_ROWS = 20_000
MAX_BYTES = 20_000_000
BATCH = 1_000
DATA_SHEETS = ("التوجيهات", "Directives")
LISTS_SHEET = "Lists"
TEMPLATE_ROWS = 10_000  # rows of the template that carry the drop-down lists

Progress = Callable[[str, int, int], None]
"""Called with (stage, done, total); stages: read, validate, import, launch."""


@dataclass(frozen=True)
class ColumnSpec:
    key: str
    ar: str
    en: str
    required: bool
    help_ar: str
    help_en: str
    width: int = 18


COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("reference", "المرجع", "Reference", False,
               "اختياري؛ يُولَّد تلقائياً مثل 1447/0042 إن تُرك فارغاً", "Optional; generated (1447/0042) when empty", 14),
    ColumnSpec("title", "العنوان", "Title", True, "عنوان التوجيه بالعربية (حتى 500 حرف)",
               "The directive's title in Arabic (up to 500 characters)", 50),
    ColumnSpec("title_en", "العنوان بالإنجليزية", "Title (English)", False, "اختياري", "Optional", 40),
    ColumnSpec("kind", "النوع", "Kind", True, "قرار، تعميم، توجيه أو توصية",
               "decision, circular, directive or recommendation", 14),
    ColumnSpec("responsible_entity", "الجهة المسؤولة", "Responsible entity", True,
               "من القائمة؛ يُترك فارغاً للتعميم على جميع الجهات",
               "From the list; leave empty for a circular to all entities", 30),
    ColumnSpec("supporting_entities", "الجهات المساندة", "Supporting entities", False,
               "رموز الجهات أو أسماؤها مفصولة بفواصل", "Entity codes or names separated by commas", 30),
    ColumnSpec("deadline", "الموعد النهائي", "Deadline", True,
               "تاريخ هجري (1447-12-05 هـ) أو ميلادي (2026-06-01) أو مدة (PT48H، 3 أيام عمل)",
               "A Hijri date (1447-12-05 هـ), a Gregorian date (2026-06-01) or a duration (PT48H, 3 working days)",
               22),
    ColumnSpec("issued_on", "تاريخ الإصدار", "Issued on", False, "تاريخ هجري أو ميلادي؛ اليوم إن تُرك فارغاً",
               "A Hijri or Gregorian date; today when empty", 16),
    ColumnSpec("track", "المسار", "Track", False, "الأعمال، التقنية أو الموارد البشرية (الأعمال إن تُرك فارغاً)",
               "business, technology or human resources (business when empty)", 16),
    ColumnSpec("programme_track", "مسار البرنامج", "Programme track", False, "براعة، تنسيق أو دون مسار",
               "Bara'a, Tansiq or none", 14),
    ColumnSpec("priority", "الأولوية", "Priority", False, "عادية، عالية أو عاجلة (عادية إن تُرك فارغاً)",
               "normal, high or urgent (normal when empty)", 12),
    ColumnSpec("meeting", "رقم الاجتماع", "Meeting number", False, "رقم اجتماع مسجّل في الموسم (للتوصيات)",
               "The number of a meeting of the season (for recommendations)", 12),
    ColumnSpec("source", "المصدر", "Source", False, "مثل: محضر الاجتماع 3، سكرتارية لجنة الحج",
               "e.g. minutes of meeting 3, the committee secretariat", 24),
    ColumnSpec("tags", "الوسوم", "Tags", False, "كلمات مفصولة بفواصل، مثل: النقل، تأخر_الحافلات",
               "Words separated by commas, e.g. transport, bus_delay", 24),
    ColumnSpec("body", "النص", "Body", False, "نص التوجيه (حتى 20000 حرف)",
               "The directive's text (up to 20,000 characters)", 50),
)
BY_KEY = {c.key: c for c in COLUMNS}
CHOICES: dict[str, dict[str, tuple[str, str]]] = {
    "kind": {"decision": ("قرار", "Decision"), "circular": ("تعميم", "Circular"), "directive": ("توجيه", "Directive"),
             "recommendation": ("توصية", "Recommendation")},
    "track": {"business": ("الأعمال", "Business"), "technology": ("التقنية", "Technology"),
              "human_resources": ("الموارد البشرية", "Human resources")},
    "programme_track": {"baraa": ("براعة", "Bara'a"), "tansiq": ("تنسيق", "Tansiq"), "none": ("دون مسار", "None")},
    "priority": {"normal": ("عادية", "Normal"), "high": ("عالية", "High"), "urgent": ("عاجلة", "Urgent")},
}
DEFAULTS = {"track": "business", "programme_track": "none", "priority": "normal"}
if (set(CHOICES["kind"]), set(CHOICES["track"]), set(CHOICES["programme_track"]), set(CHOICES["priority"])) != (
        set(KINDS), set(TRACKS), set(PROGRAMME_TRACKS), set(PRIORITIES)):  # pragma: no cover
    raise RuntimeError("the import's choices differ from engine.directives.directives")


def _fold(text: str) -> str:
    """For matching headers and choices: NFKC, lower case, no `*`, single spaces, no tatweel."""
    text = unicodedata.normalize("NFKC", text).replace("ـ", "").replace("*", "").replace("_", " ")
    return " ".join(text.lower().split())


_HEADERS: dict[str, str] = {}
for _spec in COLUMNS:
    for _label in (_spec.key, _spec.ar, _spec.en, f"{_spec.ar} / {_spec.en}", f"{_spec.ar} - {_spec.en}"):
        _HEADERS[_fold(_label)] = _spec.key
_CHOICE_LOOKUP: dict[str, dict[str, str]] = {
    name: {_fold(label): code for code, (ar, en) in values.items() for label in (code, ar, en)}
    for name, values in CHOICES.items()
}
_CHOICE_LOOKUP["programme_track"][_fold("بدون")] = "none"


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


# --- the report -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RowError:
    """One problem: the Excel row (1-based, as the user sees it) and column (letter), the field, the value."""

    row: int
    column: str
    field: str
    code: str
    message: str
    value: str | None = None

    @property
    def header_ar(self) -> str:
        return BY_KEY[self.field].ar if self.field in BY_KEY else ""

    @property
    def header_en(self) -> str:
        return BY_KEY[self.field].en if self.field in BY_KEY else ""

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        label = f" ({self.header_en})" if self.header_en else ""
        return f"{where}{label}: {self.message}"


VALID, INVALID, IMPORTED, LAUNCHED, NOT_IMPORTED, LAUNCH_FAILED = (
    "valid", "invalid", "imported", "launched", "not_imported", "launch_failed")


@dataclass
class RowResult:
    row: int
    status: str
    reference: str | None = None
    directive_id: int | None = None
    errors: list[RowError] = field(default_factory=list)


@dataclass
class ImportReport:
    mode: str
    dry_run: bool
    launch: bool
    season_year: int | None
    rows: list[RowResult] = field(default_factory=list)
    file_errors: list[RowError] = field(default_factory=list)  # about the file or its headers: no row can be read
    imported: int = 0
    launched: int = 0
    seconds: float = 0.0

    @property
    def errors(self) -> list[RowError]:
        return [*self.file_errors, *(e for r in self.rows for e in r.errors)]

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def invalid(self) -> int:
        """Rows that failed validation."""
        return sum(any(e.code != "launch_failed" for e in r.errors) for r in self.rows)

    @property
    def valid(self) -> int:
        return self.total - self.invalid

    @property
    def ok(self) -> bool:
        """Nothing went wrong: every row valid (and imported, and launched when asked), no file errors."""
        return not self.errors


# --- reading the workbook ----------------------------------------------------------------------------------

def _open_workbook(data: bytes) -> Any:
    from openpyxl import load_workbook

    checked = evidence_store.check("directives.xlsx", data, evidence_store.Limits(
        max_bytes=MAX_BYTES, max_files=1, kinds=frozenset({evidence_store.XLSX})))
    try:
        return load_workbook(io.BytesIO(checked.data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on damaged files
        raise InvalidInput(N_("the workbook cannot be read (%(reason)s)"), params={"reason": type(exc).__name__}
                           ) from None


def _data_sheet(book: Any) -> Any:
    for name in DATA_SHEETS:
        if name in book.sheetnames:
            return book[name]
    return book.worksheets[0]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


@dataclass
class _Sheet:
    columns: dict[str, int]  # key -> 0-based column index
    rows: list[tuple[int, tuple[Any, ...]]]  # (excel row number, values)


def _read(data: bytes, report: ImportReport, progress: Progress | None) -> _Sheet | None:
    try:
        book = _open_workbook(data)
    except TansiqError as exc:
        report.file_errors.append(RowError(0, "", "file", "bad_file", exc.message))
        return None
    try:
        sheet = _data_sheet(book)
        sheet.reset_dimensions()
        iterator: Iterator[tuple[Any, ...]] = sheet.iter_rows(values_only=True)
        first = next(iterator, None)
        if first is None:
            report.file_errors.append(RowError(1, "", "file", "empty", "the sheet is empty"))
            return None
        columns = _headers(first, 1, report)
        if report.file_errors:
            return None
        rows: list[tuple[int, tuple[Any, ...]]] = []
        number = 1
        for values in iterator:
            number += 1
            if number == 2 and _is_header_row(values):
                continue
            if not any(v is not None and str(v).strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                report.file_errors.append(RowError(number, "", "file", "too_many_rows",
                                                   f"at most {MAX_ROWS:,} rows in one file"))
                return None
            rows.append((number, values))
            if progress and len(rows) % BATCH == 0:
                progress("read", len(rows), 0)
        if not rows:
            report.file_errors.append(RowError(2, "", "file", "empty", "the sheet has no directives under its headers"))
            return None
        return _Sheet(columns, rows)
    finally:
        book.close()


def _is_header_row(values: tuple[Any, ...]) -> bool:
    labels = [_fold(str(v)) for v in values if v is not None and str(v).strip()]
    return bool(labels) and all(label in _HEADERS for label in labels)


def _headers(values: tuple[Any, ...], row: int, report: ImportReport) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, value in enumerate(values):
        if value is None or not str(value).strip():
            continue
        key = _HEADERS.get(_fold(str(value)))
        if key is None:
            report.file_errors.append(RowError(row, column_letter(index), "header", "unknown_header",
                                               f"unknown header {str(value)[:80]!r}", str(value)[:200]))
        elif key in columns:
            report.file_errors.append(RowError(row, column_letter(index), key, "duplicate_header",
                                               f"the column {BY_KEY[key].en!r} appears twice", str(value)[:200]))
        else:
            columns[key] = index
    for spec in COLUMNS:
        if spec.required and spec.key not in columns:
            report.file_errors.append(RowError(row, "", spec.key, "missing_column",
                                               f"the column {spec.ar} / {spec.en} is missing"))
    return columns


# --- validating rows -----------------------------------------------------------------------------------------

@dataclass
class _Valid:
    row: int
    values: dict[str, Any]
    responsible: Entity
    supporting: list[Entity]
    tags: list[str]
    reference: str | None


class _Entities:
    def __init__(self, session: Session) -> None:
        self.all = list(session.scalars(select(Entity).order_by(Entity.code)))
        self.lookup: dict[str, Entity] = {}
        ambiguous: set[str] = set()
        for entity in self.all:
            for label in (entity.name_ar, entity.name_en, f"{entity.name_ar} ({entity.code})",
                          f"{entity.name_en} ({entity.code})"):
                key = _fold(label)
                if key in self.lookup and self.lookup[key] is not entity:
                    ambiguous.add(key)
                self.lookup[key] = entity
        for key in ambiguous:
            del self.lookup[key]
        for entity in self.all:  # codes win over names
            self.lookup[_fold(entity.code)] = entity

    def find(self, text: str) -> Entity | None:
        entity = self.lookup.get(_fold(text))
        if entity is None and (match := re.search(r"\(([a-z][a-z0-9_]{1,49})\)\s*$", text.strip())):
            entity = self.lookup.get(match.group(1))
        return entity

    @property
    def active(self) -> list[Entity]:
        return [e for e in self.all if e.active]


_DATE_ONLY = re.compile(r"^\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})\s*$")


def _deadline(value: Any, now: datetime, season: seasons.Season) -> datetime:
    if isinstance(value, datetime):
        if value.time() == time(0) and value.tzinfo is None:
            return _end_of_day(value.date(), now)
        local = value if value.tzinfo else value.replace(tzinfo=RIYADH)
        return parse_deadline(local, now, season.calendar)
    if isinstance(value, date):
        return _end_of_day(value, now)
    text = _text(value)
    if text is None:
        raise InvalidInput("a deadline is required")
    if (match := _DATE_ONLY.match(text)) and int(match.group(1)) <= 1500:
        text = f"{text} هـ"  # a date with a year up to 1500 is Hijri
    return parse_deadline(text, now, season.calendar)


def _end_of_day(day: date, now: datetime) -> datetime:
    moment = datetime.combine(day, time(23, 59), tzinfo=RIYADH).astimezone(UTC)
    if moment <= now:
        raise InvalidInput(N_("the deadline %(moment)s has already passed"), params={"moment": day.isoformat()})
    return moment


def _validate(session: Session, sheet: _Sheet, season: seasons.Season, report: ImportReport,
              index: dict[int, RowResult], progress: Progress | None) -> list[_Valid]:
    now = clock.now()
    known = _Entities(session)
    meetings = dict(session.execute(select(Meeting.number, Meeting.id).where(Meeting.season_id == season.id)).all())
    models = set(session.scalars(select(ProcessModel.key).distinct()))
    file_references: dict[str, int] = {}
    valid: list[_Valid] = []
    total = len(sheet.rows)
    for position, (number, values) in enumerate(sheet.rows, start=1):
        result = RowResult(number, INVALID)
        report.rows.append(result)
        index[number] = result
        errors = result.errors

        def cell(key: str, values: tuple[Any, ...] = values) -> Any:
            index = sheet.columns.get(key)
            return values[index] if index is not None and index < len(values) else None

        def fail(key: str, code: str, message: str, value: Any = None, row: int = number,
                 errors: list[RowError] = errors) -> None:
            index = sheet.columns.get(key)
            errors.append(RowError(row, column_letter(index) if index is not None else "", key, code, message,
                                   None if value is None else str(value)[:200]))

        out: dict[str, Any] = {}
        for key, limit in (("title", 500), ("title_en", 500), ("source", 300), ("body", 20_000)):
            text = _text(cell(key))
            if text is not None and "\x00" in text:
                fail(key, "bad_text", "NUL characters are not accepted")
                text = None
            elif text is not None and len(text) > limit:
                fail(key, "too_long", f"at most {limit:,} characters", text[:50])
                text = None
            out[key] = text
        if out["title"] is None and not any(e.field == "title" for e in errors):
            fail("title", "required", "a title is required")
        for key in CHOICES:
            raw = _text(cell(key))
            if raw is None:
                if key == "kind":
                    fail(key, "required", "the kind is required (decision, circular, directive or recommendation)")
                out[key] = DEFAULTS.get(key)
                continue
            code = _CHOICE_LOOKUP[key].get(_fold(raw))
            if code is None:
                fail(key, "bad_choice", f"unknown {BY_KEY[key].en.lower()} {raw[:60]!r} (known: "
                     f"{', '.join(CHOICES[key])})", raw)
            out[key] = code
        responsible_text = _text(cell("responsible_entity"))
        supporting_texts = split_tags(_text(cell("supporting_entities")))
        responsible: Entity | None = None
        supporting: list[Entity] = []
        if responsible_text is None or _fold(responsible_text) == ALL_ENTITIES:
            if out.get("kind") == "circular":
                everyone = known.active
                if not everyone:
                    fail("responsible_entity", "unknown_entity", "there is no entity to address the circular to")
                else:
                    responsible, supporting = everyone[0], everyone[1:]
                    supporting_texts = []
            else:
                fail("responsible_entity", "required", "the responsible entity is required (except for a circular "
                     "to all entities)")
        else:
            responsible = known.find(responsible_text)
            if responsible is None or not responsible.active:
                fail("responsible_entity", "unknown_entity", f"unknown entity {responsible_text[:80]!r}",
                     responsible_text)
                responsible = None
        for text in supporting_texts:
            entity = known.find(text)
            if entity is None or not entity.active:
                fail("supporting_entities", "unknown_entity", f"unknown entity {text[:80]!r}", text)
            elif entity is responsible or entity in supporting:
                fail("supporting_entities", "duplicate_entity",
                     f"{entity.code} is named twice (supporting entities differ from the responsible one)", text)
            else:
                supporting.append(entity)
        try:
            out["deadline_at"] = _deadline(cell("deadline"), now, season)
        except InvalidInput as exc:
            code = "required" if cell("deadline") is None else (
                "deadline_passed" if "passed" in exc.message else "bad_date")
            fail("deadline", code, exc.message, _text(cell("deadline")))
        issued = cell("issued_on")
        try:
            out["issued_on"] = parse_day(issued) if issued not in (None, "") else now.astimezone(RIYADH).date()
        except InvalidInput as exc:
            fail("issued_on", "bad_date", exc.message, _text(issued))
        meeting_value = _text(cell("meeting"))
        out["meeting_id"] = None
        if meeting_value is not None:
            if not meeting_value.isdigit():
                fail("meeting", "bad_meeting", "a meeting number is a whole number", meeting_value)
            elif int(meeting_value) not in meetings:
                fail("meeting", "unknown_meeting", f"no meeting {meeting_value} in season {season.hijri_year}",
                     meeting_value)
            else:
                out["meeting_id"] = meetings[int(meeting_value)]
        try:
            tags = clean_tags(split_tags(_text(cell("tags"))))
        except InvalidInput as exc:
            fail("tags", "bad_tag", exc.message, _text(cell("tags")))
            tags = []
        reference = _text(cell("reference"))
        if reference is not None:
            if not REFERENCE_PATTERN.match(reference):
                fail("reference", "bad_reference", "a reference is 1-40 letters, digits, / . _ or -", reference)
            elif reference in file_references:
                fail("reference", "duplicate_reference",
                     f"the reference {reference} is also on row {file_references[reference]}", reference)
            else:
                file_references[reference] = number
        if out.get("kind") and out.get("priority") and responsible is not None:
            model = directives.default_model(out["kind"], out["priority"], bool(supporting))
            if model not in models:
                fail("kind", "model_missing", f"the process model {model!r} is not deployed")
            out["process_model_key"] = model
        if not errors:
            if responsible is None:  # never: each way to no responsible entity fails the row
                raise RuntimeError(f"row {number} passed without a responsible entity")
            valid.append(_Valid(number, out, responsible, supporting, tags, reference))
            result.status = VALID
        if progress and (position % BATCH == 0 or position == total):
            progress("validate", position, total)
    column = sheet.columns.get("reference")
    _references_taken(session, valid, index, column_letter(column) if column is not None else "")
    return [v for v in valid if not index[v.row].errors]


def _references_taken(session: Session, valid: list[_Valid], index: dict[int, RowResult], column: str) -> None:
    given = [v for v in valid if v.reference is not None]
    taken: set[str] = set()
    for start in range(0, len(given), 500):
        chunk = [v.reference for v in given[start:start + 500]]
        taken.update(session.scalars(select(Directive.reference).where(Directive.reference.in_(chunk))))
    for item in given:
        if item.reference in taken:
            result = index[item.row]
            result.errors.append(RowError(item.row, column, "reference", "reference_taken",
                                          f"the reference {item.reference} is taken by a directive in the database",
                                          item.reference))
            result.status = INVALID


# --- importing ------------------------------------------------------------------------------------------------

def import_directives(session: Session, data: bytes, actor: str, *, mode: str = ALL_OR_NOTHING,
                      launch: bool = False, dry_run: bool = False, season_year: int | None = None,
                      progress: Progress | None = None) -> ImportReport:
    """Validate every row of the workbook, then import (and optionally launch) as `mode` says.

    Returns the report; never raises for problems in the file (they are in the report). Nothing is
    written when `dry_run`, when the file or its headers are wrong, or when `mode` is all-or-nothing
    and any row is invalid (or, with `launch`, any launch fails).
    """
    if mode not in MODES:
        raise InvalidInput(N_("unknown mode %(value)s (known: %(known)s)"),
                           params={"value": repr(mode), "known": ", ".join(MODES)})
    started = timer.perf_counter()
    season = seasons.get_season(session, season_year) if season_year else seasons.season_for(session, clock.now())
    report = ImportReport(mode, dry_run, launch, season.hijri_year)
    sheet = _read(data, report, progress)
    if sheet is None:
        report.seconds = round(timer.perf_counter() - started, 3)
        return report
    index: dict[int, RowResult] = {}
    valid = _validate(session, sheet, season, report, index, progress)
    invalid = any(r.errors for r in report.rows)
    if dry_run or not valid or (mode == ALL_OR_NOTHING and invalid):
        for result in report.rows:
            if not result.errors and not dry_run:
                result.status = NOT_IMPORTED
        report.seconds = round(timer.perf_counter() - started, 3)
        return report
    audit_mark = audit.mark(session)
    savepoint = session.begin_nested()
    try:
        ids = _insert(session, valid, season, actor, report, index, progress)
        if launch:
            _launch(session, ids, actor, report, progress)
    except BaseException:
        savepoint.rollback()
        audit.discard_since(session, audit_mark)
        raise
    if launch and mode == ALL_OR_NOTHING and any(r.status == LAUNCH_FAILED for r in report.rows):
        savepoint.rollback()
        audit.discard_since(session, audit_mark)
        session.expire_all()
        for result in report.rows:
            if result.status != LAUNCH_FAILED:
                result.status, result.reference, result.directive_id = NOT_IMPORTED, None, None
            else:
                result.reference = result.directive_id = None
        report.imported = report.launched = 0
    else:
        savepoint.commit()
        audit.record(session, actor, "directives.imported", f"season:{season.hijri_year}", {
            "rows": report.total, "imported": report.imported, "launched": report.launched, "mode": mode,
            "invalid": sum(bool(r.errors) for r in report.rows),
            "first": next((r.reference for r in report.rows if r.reference), None),
        })
    report.seconds = round(timer.perf_counter() - started, 3)
    return report


def _insert(session: Session, valid: list[_Valid], season: seasons.Season, actor: str, report: ImportReport,
            index: dict[int, RowResult], progress: Progress | None) -> list[int]:
    now = clock.now()
    given = {v.reference for v in valid if v.reference}
    generated = iter(_reserve_references(session, season.hijri_year, sum(v.reference is None for v in valid), given))
    ids: list[int] = []
    for start in range(0, len(valid), BATCH):
        batch = valid[start:start + BATCH]
        for item in batch:
            item.reference = item.reference or next(generated)
        rows = [{
            "reference": item.reference, "season_id": season.id, "meeting_id": item.values["meeting_id"],
            "kind": item.values["kind"], "title": item.values["title"], "title_en": item.values["title_en"],
            "body": item.values["body"], "source": item.values["source"], "issued_on": item.values["issued_on"],
            "track": item.values["track"], "programme_track": item.values["programme_track"],
            "priority": item.values["priority"], "responsible_entity_id": item.responsible.id,
            "deadline_at": item.values["deadline_at"], "process_model_key": item.values["process_model_key"],
            "status": DRAFT, "created_by": actor[:200], "created_at": now, "current_steps": [],
            "escalation_level": 0, "extension_count": 0,
        } for item in batch]
        batch_ids = list(session.scalars(insert(Directive).returning(Directive.id, sort_by_parameter_order=True), rows))
        tags = [{"directive_id": i, "tag": t} for i, item in zip(batch_ids, batch, strict=True) for t in item.tags]
        if tags:
            session.execute(insert(DirectiveTag), tags)
        supporting = [{"directive_id": i, "entity_id": e.id} for i, item in zip(batch_ids, batch, strict=True)
                      for e in item.supporting]
        if supporting:
            session.execute(directive_supporting_entity.insert(), supporting)
        directives.address(session, batch_ids, new=True)
        for directive_id, item in zip(batch_ids, batch, strict=True):
            audit.record(session, actor, "directive.created", directives.subject(directive_id), {
                "reference": item.reference, "kind": item.values["kind"], "title": item.values["title"],
                "responsible": item.responsible.code, "supporting": [e.code for e in item.supporting],
                "deadline": item.values["deadline_at"].isoformat(), "model": item.values["process_model_key"],
                "imported": True, "row": item.row,
            })
            result = index[item.row]
            result.status, result.reference, result.directive_id = IMPORTED, item.reference, directive_id
        ids.extend(batch_ids)
        report.imported += len(batch)
        if progress:
            progress("import", report.imported, len(valid))
    return ids


def _locked_sequence(session: Session, hijri_year: int) -> DirectiveSequence:
    """The year's reference sequence, locked to commit (created when the year has none yet)."""
    locked = (select(DirectiveSequence).where(DirectiveSequence.hijri_year == hijri_year)
              .with_for_update().execution_options(populate_existing=True))
    sequence = session.scalar(locked)
    if sequence is None:
        try:
            with session.begin_nested():
                sequence = DirectiveSequence(hijri_year=hijri_year, last_number=0)
                session.add(sequence)
        except IntegrityError:  # another writer created it first: lock theirs
            sequence = session.scalar(locked)
    if sequence is None:
        raise RuntimeError(f"the reference sequence of {hijri_year} was created by another writer and is gone")
    return sequence


def _reserve_references(session: Session, hijri_year: int, count: int, given: set[str]) -> list[str]:
    """`count` references like 1447/0042 from the year's sequence (one lock, one look-up per batch),
    skipping any already used by hand or named in the file."""
    if count == 0:
        return []
    sequence = _locked_sequence(session, hijri_year)
    out: list[str] = []
    number = sequence.last_number
    while len(out) < count:
        candidates = [f"{hijri_year}/{n:04d}" for n in range(number + 1, number + 1 + count - len(out))]
        number += len(candidates)
        used = set(given)
        for start in range(0, len(candidates), 500):
            chunk = candidates[start:start + 500]
            used.update(session.scalars(select(Directive.reference).where(Directive.reference.in_(chunk))))
        out.extend(c for c in candidates if c not in used)
    sequence.last_number = number
    session.flush()
    return out


def _launch(session: Session, ids: list[int], actor: str, report: ImportReport, progress: Progress | None) -> None:
    by_id = {r.directive_id: r for r in report.rows if r.directive_id is not None}
    for done, directive_id in enumerate(ids, start=1):
        result = by_id[directive_id]
        mark = audit.mark(session)
        try:
            with session.begin_nested():
                launched = directives.launch(session, directive_id, actor)
                if launched.incident:
                    raise InvalidInput(N_("its process stopped at the start: %(incident)s"),
                                       params={"incident": launched.incident})
            result.status = LAUNCHED
            report.launched += 1
        except TansiqError as exc:
            audit.discard_since(session, mark)
            result.status = LAUNCH_FAILED
            result.errors.append(RowError(result.row, "", "launch", "launch_failed", exc.message))
        if progress:
            progress("launch", done, len(ids))


# --- the template ----------------------------------------------------------------------------------------------

def template(session: Session, language: str = "ar") -> bytes:
    """The workbook to fill in (XLSX): directives sheet with both headers and drop-down lists, lists, instructions."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    if language not in ("ar", "en"):
        raise InvalidInput("language is ar or en")
    i = 0 if language == "ar" else 1
    book = Workbook()
    sheet = book.active
    sheet.title = DATA_SHEETS[i]
    sheet.sheet_view.rightToLeft = i == 0
    green, grey = PatternFill("solid", fgColor="1F5F4A"), PatternFill("solid", fgColor="DCE9E4")
    for index, spec in enumerate(COLUMNS, start=1):
        star = " *" if spec.required else ""
        top, second = set_cell(sheet, 1, index, spec.ar + star), set_cell(sheet, 2, index, spec.en + star)
        top.font, top.fill = Font(bold=True, color="FFFFFF"), green
        second.font, second.fill = Font(italic=True), grey
        for header in (top, second):
            header.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        top.comment = Comment(f"{spec.help_ar}\n{spec.help_en}", "Tansiq")
        sheet.column_dimensions[column_letter(index - 1)].width = spec.width
    sheet.freeze_panes = "A3"

    lists = book.create_sheet(LISTS_SHEET)
    entities = list(session.scalars(select(Entity).where(Entity.active.is_(True)).order_by(Entity.code)))
    columns: dict[str, list[str]] = {key: [labels[i] for labels in CHOICES[key].values()] for key in CHOICES}
    columns["responsible_entity"] = [f"{e.name_ar if i == 0 else e.name_en} ({e.code})" for e in entities]
    last = TEMPLATE_ROWS + 2
    for position, (key, values) in enumerate(columns.items()):
        letter = column_letter(position)
        set_cell(lists, 1, position + 1, BY_KEY[key].en)
        for row, value in enumerate(values, start=2):  # entity names are typed by people: never a formula
            set_cell(lists, row, position + 1, ILLEGAL_CHARACTERS_RE.sub("", value))
        if not values:
            continue
        target = column_letter(list(BY_KEY).index(key))
        validation = DataValidation(type="list", formula1=f"={LISTS_SHEET}!${letter}$2:${letter}${len(values) + 1}",
                                    allow_blank=True, showErrorMessage=True, showInputMessage=True,
                                    errorTitle="Tansiq", error="اختر من القائمة / Choose from the list",
                                    promptTitle=BY_KEY[key].ar[:32], prompt=(BY_KEY[key].help_ar if i == 0
                                                                            else BY_KEY[key].help_en)[:250])
        validation.add(f"{target}3:{target}{last}")
        sheet.add_data_validation(validation)
    meeting = DataValidation(type="whole", operator="between", formula1="1", formula2="100000", allow_blank=True,
                             showErrorMessage=True, errorTitle="Tansiq", error="رقم صحيح / A whole number")
    meeting.add(f"{column_letter(list(BY_KEY).index('meeting'))}3:{column_letter(list(BY_KEY).index('meeting'))}{last}")
    sheet.add_data_validation(meeting)
    lists.sheet_state = "hidden"

    notes = book.create_sheet("تعليمات" if i == 0 else "Instructions")
    notes.sheet_view.rightToLeft = i == 0
    append_row(notes, ["العمود", "Column", "إلزامي / Required", "التعليمات", "Instructions"])
    for cell in notes[1]:
        cell.font = Font(bold=True)
    for spec in COLUMNS:
        append_row(notes, [spec.ar, spec.en, "نعم / yes" if spec.required else "", spec.help_ar, spec.help_en])
    notes.append([])
    append_row(notes, ["", "", "", "صفّا العناوين (العربي والإنجليزي) يبقيان كما هما؛ تبدأ البيانات من الصف الثالث.",
                  "Keep both header rows (Arabic and English); data starts on row 3."])
    append_row(notes, ["", "", "", "التاريخ الذي سنته حتى 1500 يُقرأ هجرياً.",
                  "A date whose year is up to 1500 is read as Hijri."])
    for letter, width in zip("ABCDE", (22, 22, 16, 60, 60), strict=True):
        notes.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def rows_for_testing(count: int, *, entity: str = "housing", start: int = 1, deadline: str = "P10D",
                     kind: str = "directive") -> Iterable[list[Any]]:
    """Rows in the template's column order (the tests and benchmarks fill workbooks with these)."""
    for n in range(start, start + count):
        yield [f"IMP-{n:05d}", f"توجيه مستورد رقم {n}", f"Imported directive {n}", kind, entity, "", deadline, "",
               "business", "none", "normal", "", "ملف الاستيراد", "import_test", ""]
