"""Committee meetings (اجتماعات لجنة الحج): periodic meetings whose recommendations become directives.

A meeting has a number within its season, a date (shown in Hijri and Gregorian), a chair, the
entities that attended, and its minutes as text and as files (kept like evidence: judged by their
bytes, stored under their SHA-256). Its recommendations are entered as draft directives linked to
the meeting; `launch_all` launches every draft of the meeting in one step, all or nothing, with a
report per directive of what failed and why. A meeting's page and its agenda (CSV, XLSX) also list
the directives still open from earlier meetings, carried forward.

Who may do what: the secretariat and administrators manage meetings (the roles that create
directives); every role that reads all directives reads every meeting; an entity user sees the
meetings their entity attended or holds a directive of, and within them only their own directives.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVarTuple, overload

from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    Select,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from engine.calendar import seasons
from engine.calendar.business_calendar import gregorian_to_hijri, parse_day
from engine.calendar.durations import RIYADH
from engine.directives import directives, evidence_store
from engine.foundation import clock, text_search
from engine.foundation.errors import N_, Conflict, InvalidInput, NotFound, Sentence, TansiqError, Term
from engine.foundation.spreadsheets import append_row, safe_row
from engine.people import entities
from engine.people.entities import Entity
from engine.people.roles import role_word
from engine.storage import audit, file_store
from engine.storage.db import Base, UTCDateTime

if TYPE_CHECKING:
    from engine.directives.access import Actor
    from engine.directives.directives import Directive

# engine.directives.directives imports this module, and engine.directives.access imports
# engine.directives.directives: both are used here at call time only (imported inside the functions),
# never at import time.

_Ts = TypeVarTuple("_Ts")
"""The columns of a query `visible_meetings` narrows (it keeps its shape)."""

meeting_attendee = Table(
    "meeting_attendee",
    Base.metadata,
    Column("meeting_id", ForeignKey("meeting.id", ondelete="CASCADE"), primary_key=True),
    Column("entity_id", ForeignKey("entity.id"), primary_key=True, index=True),
)


class Meeting(Base):
    __tablename__ = "meeting"
    __table_args__ = (UniqueConstraint("season_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("season.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title_ar: Mapped[str] = mapped_column(String(300))
    title_en: Mapped[str | None] = mapped_column(String(300))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime)
    chair: Mapped[str | None] = mapped_column(String(200))
    minutes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the meetings' search compares (engine/foundation/text_search.py), written with every write of its column.
    title_ar_folded: Mapped[str | None] = mapped_column(Text, deferred=True)
    title_en_folded: Mapped[str | None] = mapped_column(Text, deferred=True)

    attendees: Mapped[list[Entity]] = relationship(secondary=meeting_attendee, lazy="selectin",
                                                   order_by=Entity.code)

    @property
    def held_on(self) -> date:
        """The meeting's local (Riyadh) Gregorian date."""
        return self.held_at.astimezone(RIYADH).date()

    @property
    def held_on_hijri(self) -> str:
        """The meeting's Hijri (Umm al-Qura) date, as 1447-11-20."""
        year, month, day = gregorian_to_hijri(self.held_on)
        return f"{year:04d}-{month:02d}-{day:02d}"


text_search.fold_on_write(Meeting.__table__, ("title_ar", "title_en"))


class MeetingDocument(Base):
    """A file of a meeting (its minutes, محضر الاجتماع), stored like evidence under its SHA-256."""

    __tablename__ = "meeting_document"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="minutes")
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


TABLES = (meeting_attendee, MeetingDocument.__table__)
"""The tables this module adds (the `meeting` table itself is older)."""

MANAGE_ACTION = "directive.create"
"""Managing meetings (create, edit, minutes, recommendations, launch all) takes the roles that create directives."""
OPEN_STATUSES = ("draft", "active")  # directives.DRAFT, directives.ACTIVE
_ENTITY_CODE = re.compile(r"^[a-z][a-z0-9_]{1,49}$")
_MOMENT = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def subject(meeting_id: int) -> str:
    return f"meeting:{meeting_id}"


# --- dates ------------------------------------------------------------------------------------------------

def parse_held_at(value: str | date | datetime) -> datetime:
    """When a meeting was held: a moment (ISO 8601; without an offset it is Riyadh time), or a day in
    Gregorian or Hijri (taken as the start of that day in Riyadh)."""
    if isinstance(value, datetime):
        return clock.as_utc(value if value.tzinfo else value.replace(tzinfo=RIYADH))
    if isinstance(value, str) and _MOMENT.match(value):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(N_("not a moment: %(value)s"), params={"value": repr(value)}) from None
        return parse_held_at(moment)
    return datetime.combine(parse_day(value), time(0), tzinfo=RIYADH).astimezone(UTC)


# --- access -----------------------------------------------------------------------------------------------

def can_manage(user: Actor) -> bool:
    from engine.directives import access

    return access.allowed(user, MANAGE_ACTION)


def require_manage(user: Actor) -> None:
    from engine.directives import access

    if not can_manage(user):
        raise access.Forbidden(N_("%(role)s may not manage meetings"), params={"role": role_word(user.role)})


def visible_meetings(query: Select[*_Ts], user: Actor) -> Select[*_Ts]:
    """Narrow a query over `Meeting` to what the user may see (see the module's notes)."""
    from engine.directives import access

    if access.reads_all(user):
        return query
    if not user.active or user.entity_id is None or not access.allowed(user, "directive.read"):
        return query.where(false())
    attended = select(meeting_attendee.c.meeting_id).where(meeting_attendee.c.entity_id == user.entity_id)
    holding = access.visible_directives(select(directives.Directive.meeting_id), user).where(
        directives.Directive.meeting_id.is_not(None))
    return query.where(or_(Meeting.id.in_(attended), Meeting.id.in_(holding)))


def visible_meeting(session: Session, user: Actor, meeting_id: int) -> Meeting:
    """The meeting if the user may see it; otherwise `NotFound`, as if it did not exist."""
    meeting = session.scalar(visible_meetings(select(Meeting).where(Meeting.id == meeting_id), user))
    if meeting is None:
        raise NotFound(N_("no meeting %(meeting)s"), params={"meeting": str(meeting_id)})
    return meeting


# --- meetings ---------------------------------------------------------------------------------------------

@overload
def _check_text(label: str, value: str | None, limit: int, *, required: Literal[True]) -> str: ...
@overload
def _check_text(label: str, value: str | None, limit: int, *, required: bool = False) -> str | None: ...
def _check_text(label: str, value: str | None, limit: int, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(N_("a meeting needs %(what)s"), params={"what": Term(label)})
        return None
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidInput(N_("%(what)s is text of at most %(limit)s characters"),
                           params={"what": Term(label), "limit": limit})
    return value.strip()


def create_meeting(session: Session, season_id: int, number: int, title_ar: str, held_at: datetime, actor: str, *,
                   title_en: str | None = None, chair: str | None = None, minutes: str | None = None,
                   attending: list[str] | None = None) -> Meeting:
    """Register a meeting of a season; `attending` are the codes of the entities that attended."""
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 100_000:
        raise InvalidInput("a meeting number is a positive whole number")
    title_ar = _check_text(N_("an Arabic title of at most 300 characters"), title_ar, 300, required=True)
    if session.get(seasons.Season, season_id) is None:
        raise NotFound(N_("no season %(season)s"), params={"season": str(season_id)})
    exists = session.scalar(select(Meeting.id).where(Meeting.season_id == season_id, Meeting.number == number))
    if exists is not None:
        raise Conflict(N_("meeting %(number)s of this season exists already"), params={"number": str(number)})
    attendees = _attendees(session, attending or [])
    meeting = Meeting(season_id=season_id, number=number, title_ar=title_ar,
                      title_en=_check_text(N_("the English title"), title_en, 300),
                      held_at=clock.as_utc(held_at), chair=_check_text(N_("the chair"), chair, 200),
                      minutes=_check_text(N_("the minutes"), minutes, 100_000), created_by=actor,
                      created_at=clock.now())
    meeting.attendees = attendees
    session.add(meeting)
    session.flush()
    audit.record(session, actor, "meeting.created", subject(meeting.id), {
        "number": number, "season_id": season_id, "title": title_ar, "held_at": meeting.held_at.isoformat(),
        "chair": meeting.chair, "attending": [e.code for e in attendees], "minutes": bool(meeting.minutes),
    })
    return meeting


def create(session: Session, *, number: int, title_ar: str, held: str | date | datetime, actor: str,
           season_year: int | None = None, title_en: str | None = None, chair: str | None = None,
           minutes: str | None = None, attending: list[str] | None = None) -> Meeting:
    """`create_meeting` with the date as typed (Hijri or Gregorian) and the season by its Hijri year
    (the season of the meeting's date when omitted)."""
    held_at = parse_held_at(held)
    season = seasons.get_season(session, season_year) if season_year else seasons.season_for(session, held_at)
    return create_meeting(session, season.id, number, title_ar, held_at, actor, title_en=title_en, chair=chair,
                          minutes=minutes, attending=attending)


_UNSET: Any = object()


def update_meeting(session: Session, meeting_id: int, actor: str, *, title_ar: str = _UNSET,
                   title_en: str | None = _UNSET, held: str | date | datetime = _UNSET, chair: str | None = _UNSET,
                   minutes: str | None = _UNSET, attending: list[str] = _UNSET) -> Meeting:
    """Change what is given (leave the rest); every change is recorded with its old and new value."""
    meeting = get_meeting(session, meeting_id)
    changes: dict[str, Any] = {}

    def change(name: str, new: Any, shown: Any = None) -> None:
        old = getattr(meeting, name)
        if old != new:
            changes[name] = {"from": shown(old) if shown else old, "to": shown(new) if shown else new}
            setattr(meeting, name, new)

    if title_ar is not _UNSET:
        change("title_ar", _check_text(N_("an Arabic title of at most 300 characters"), title_ar, 300, required=True))
    if title_en is not _UNSET:
        change("title_en", _check_text(N_("the English title"), title_en, 300))
    if held is not _UNSET:
        change("held_at", parse_held_at(held), lambda m: m.isoformat())
    if chair is not _UNSET:
        change("chair", _check_text(N_("the chair"), chair, 200))
    if minutes is not _UNSET:
        change("minutes", _check_text(N_("the minutes"), minutes, 100_000), lambda m: None if m is None else len(m))
    if attending is not _UNSET:
        before = [e.code for e in meeting.attendees]
        meeting.attendees = _attendees(session, attending or [])
        after = [e.code for e in meeting.attendees]
        if before != after:
            changes["attending"] = {"from": before, "to": after}
    session.flush()
    if changes:
        audit.record(session, actor, "meeting.updated", subject(meeting.id), changes)
    return meeting


def _attendees(session: Session, codes: list[str]) -> list[Entity]:
    if not isinstance(codes, list) or len(codes) > 200:
        raise InvalidInput(N_("attending entities are a list of at most 200 entity codes"))
    if len(set(codes)) != len(codes):
        raise InvalidInput(N_("an entity attends a meeting once"))
    odd = [c for c in codes if not isinstance(c, str) or not _ENTITY_CODE.match(c)]
    if odd:  # never sent to the database (PostgreSQL text cannot hold NUL, say)
        raise InvalidInput(N_("unknown entity: %(codes)s"), params={"codes": ", ".join(repr(c)[:60] for c in odd)})
    return sorted(entities.require_active(session, codes), key=lambda e: e.code) if codes else []


def get_meeting(session: Session, meeting_id: int) -> Meeting:
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound(N_("no meeting %(meeting)s"), params={"meeting": str(meeting_id)})
    return meeting


def by_number(session: Session, season_year: int, number: int) -> Meeting:
    meeting = session.scalar(select(Meeting).join(seasons.Season, seasons.Season.id == Meeting.season_id)
                             .where(seasons.Season.hijri_year == season_year, Meeting.number == number))
    if meeting is None:
        raise NotFound(N_("no meeting %(number)s in season %(season)s"),
                       params={"number": str(number), "season": str(season_year)})
    return meeting


def list_meetings(session: Session, user: Actor, *, season_year: int | None = None, text: str | None = None,
                  limit: int = 50, offset: int = 0) -> tuple[list[Meeting], int]:
    """The meetings the user may see, newest first, and how many there are in all; with `text`, those whose
    Arabic or English title contains it (folded: engine/foundation/text_search.py)."""
    if limit < 1 or offset < 0:
        raise InvalidInput("a page has a limit of at least 1 and an offset of at least 0")
    query = visible_meetings(select(Meeting), user)
    if season_year is not None:
        query = query.where(Meeting.season_id == select(seasons.Season.id)
                            .where(seasons.Season.hijri_year == season_year).scalar_subquery())
    wanted = text_search.search_text(text)
    if wanted:
        query = query.where(text_search.contains(Meeting.id, [Meeting.title_ar_folded, Meeting.title_en_folded],
                                                 wanted))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.scalars(query.order_by(Meeting.held_at.desc(), Meeting.number.desc(), Meeting.id.desc())
                           .limit(limit).offset(offset)).all()
    return list(rows), total


def directive_counts(session: Session, user: Actor, meeting_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(directives, drafts) of each meeting, counting only the directives the user may see: one grouped query."""
    from engine.directives import access

    counts = {meeting_id: [0, 0] for meeting_id in meeting_ids}
    if not counts:
        return {}
    query = access.visible_directives(
        select(directives.Directive.meeting_id, directives.Directive.status, func.count())
        .where(directives.Directive.meeting_id.in_(list(counts))), user)
    grouped = query.group_by(directives.Directive.meeting_id, directives.Directive.status)
    for meeting_id, status, count in session.execute(grouped):
        if meeting_id is None:  # never: the query reads the directives of these meetings only
            continue
        counts[meeting_id][0] += count
        if status == directives.DRAFT:
            counts[meeting_id][1] += count
    return {meeting_id: (total, drafts) for meeting_id, (total, drafts) in counts.items()}


# --- minutes files ----------------------------------------------------------------------------------------

def attach_minutes(session: Session, home: Path, meeting_id: int, checked: evidence_store.CheckedFile,
                   actor: str, backend: str | None = None) -> MeetingDocument:
    """Store a file already checked by `evidence_store.check` (so judged by its bytes) as the meeting's minutes,
    in the file store and the same transaction as its row."""
    meeting = get_meeting(session, meeting_id)
    evidence_store.store(session, home, checked, backend)
    row = MeetingDocument(meeting_id=meeting.id, kind="minutes", filename=checked.filename[:255],
                          content_type=checked.content_type, size=checked.size, sha256=checked.sha256,
                          uploaded_by=actor[:200], uploaded_at=clock.now())
    session.add(row)
    session.flush()
    audit.record(session, actor, "meeting.minutes_attached", subject(meeting.id), {
        "document": row.id, "filename": row.filename, "sha256": row.sha256, "size": row.size, "type": checked.kind,
    })
    return row


def documents(session: Session, meeting_id: int) -> list[MeetingDocument]:
    return list(session.scalars(select(MeetingDocument).where(MeetingDocument.meeting_id == meeting_id)
                                .order_by(MeetingDocument.id)))


def document(session: Session, meeting_id: int, document_id: int) -> MeetingDocument:
    row = session.get(MeetingDocument, document_id)
    if row is None or row.meeting_id != meeting_id:
        raise NotFound(N_("no document %(document)s in meeting %(meeting)s"),
                       params={"document": str(document_id), "meeting": str(meeting_id)})
    return row


def document_file(session: Session, home: Path, row: MeetingDocument) -> file_store.Located:
    """Where the document's content is (the database or the disk); NotFound when it is nowhere."""
    return file_store.require(session, home, row.sha256, what=Sentence(N_("the file of document %(document)s"),
                                                                     document=str(row.id)))


# --- recommendations as draft directives ------------------------------------------------------------------

def add_recommendation(session: Session, meeting_id: int, new: directives.NewDirective,
                       actor: str) -> directives.Directive:
    """A recommendation of the meeting, entered as a draft directive linked to it (in the meeting's season)."""
    meeting = get_meeting(session, meeting_id)
    season = directives.season_of(session, meeting.season_id)
    new = replace(new, meeting_id=meeting.id, season_year=new.season_year or season.hijri_year)
    if new.season_year != season.hijri_year:
        raise InvalidInput(N_("a recommendation of meeting %(number)s belongs to season %(season)s"),
                           params={"number": str(meeting.number), "season": str(season.hijri_year)})
    directive = directives.create(session, new, actor, launch_now=False)
    audit.record(session, actor, "meeting.recommendation_added", subject(meeting.id),
                 {"directive": directive.id, "reference": directive.reference})
    return directive


def meeting_directives(session: Session, meeting_id: int, user: Actor | None = None,
                       *, status: str | None = None) -> list[directives.Directive]:
    from engine.directives import access

    query = select(directives.Directive).where(directives.Directive.meeting_id == meeting_id)
    if user is not None:
        query = access.visible_directives(query, user)
    if status is not None:
        query = query.where(directives.Directive.status == status)
    return list(session.scalars(query.order_by(directives.Directive.id)))


# --- launch all -------------------------------------------------------------------------------------------

LAUNCHED, FAILED, NOT_LAUNCHED = "launched", "failed", "not_launched"


@dataclass(frozen=True)
class LaunchRow:
    """What happened to one draft: launched, failed (with why), or not launched because another failed."""

    directive_id: int
    reference: str
    title: str
    responsible_entity: str
    outcome: str
    error: str | None = None
    code: str | None = None
    title_en: str | None = None


@dataclass(frozen=True)
class LaunchReport:
    meeting_id: int
    rows: list[LaunchRow]

    @property
    def ok(self) -> bool:
        return all(row.outcome == LAUNCHED for row in self.rows)

    @property
    def launched(self) -> int:
        return sum(row.outcome == LAUNCHED for row in self.rows)

    @property
    def failed(self) -> list[LaunchRow]:
        return [row for row in self.rows if row.outcome == FAILED]


class _Incident(TansiqError):
    code = "incident"


def launch_all(session: Session, meeting_id: int, actor: str) -> LaunchReport:
    """Launch every draft directive of the meeting, all or nothing.

    Each draft is launched in its own savepoint inside one enclosing savepoint; if any fails (its
    deadline passed, its entity was deactivated, its process stopped in an incident, ...) the
    enclosing savepoint is rolled back, so nothing is launched, and the report says which failed and
    why. Nothing else of the caller's transaction is undone. The drafts are locked while this runs.
    """
    meeting = get_meeting(session, meeting_id)
    drafts = list(session.scalars(
        select(directives.Directive)
        .where(directives.Directive.meeting_id == meeting.id, directives.Directive.status == directives.DRAFT)
        .order_by(directives.Directive.id).with_for_update(of=directives.Directive)
    ))
    if not drafts:
        raise Conflict(N_("meeting %(number)s has no draft directives to launch"),
                       params={"number": str(meeting.number)})
    plan = [(d.id, d.reference, d.title, d.responsible_entity.code, d.title_en) for d in drafts]
    start_mark = audit.mark(session)
    outer = session.begin_nested()
    outcomes: list[tuple[str, str | None, str | None]] = []
    for directive_id, *_ in plan:
        row_mark = audit.mark(session)
        try:
            with session.begin_nested():
                launched = directives.launch(session, directive_id, actor)
                if launched.incident:
                    raise _Incident(f"its process stopped at the start: {launched.incident}")
            outcomes.append((LAUNCHED, None, None))
        except TansiqError as exc:
            audit.discard_since(session, row_mark)
            outcomes.append((FAILED, exc.message, exc.code))
    failed = any(outcome == FAILED for outcome, _, _ in outcomes)
    if failed:
        outer.rollback()
        audit.discard_since(session, start_mark)
        session.expire_all()
        outcomes = [(FAILED, error, code) if outcome == FAILED else
                    (NOT_LAUNCHED, "not launched: another directive of the meeting failed", None)
                    for outcome, error, code in outcomes]
    else:
        outer.commit()
    rows = [LaunchRow(directive_id, reference, title, entity, outcome, error, code, title_en)
            for (directive_id, reference, title, entity, title_en), (outcome, error, code)
            in zip(plan, outcomes, strict=True)]
    report = LaunchReport(meeting.id, rows)
    if failed:
        audit.record(session, actor, "meeting.launch_all_refused", subject(meeting.id), {
            "drafts": len(rows), "failed": [{"reference": r.reference, "error": r.error} for r in report.failed],
        })
    else:
        audit.record(session, actor, "meeting.launched_all", subject(meeting.id),
                     {"launched": [r.reference for r in rows]})
    return report


# --- the meeting's page and agenda ------------------------------------------------------------------------

def carried_forward(session: Session, meeting: Meeting, user: Actor | None = None) -> list[directives.Directive]:
    """Directives still open (draft or active) that came from meetings held before this one, oldest meeting
    first, then by deadline."""
    from engine.directives import access

    earlier = select(Meeting.id).where(or_(
        Meeting.held_at < meeting.held_at,
        and_(Meeting.held_at == meeting.held_at, Meeting.season_id == meeting.season_id,
             Meeting.number < meeting.number),
    ))
    query = (select(directives.Directive)
             .join(Meeting, Meeting.id == directives.Directive.meeting_id)
             .where(directives.Directive.meeting_id.in_(earlier),
                    directives.Directive.status.in_(OPEN_STATUSES)))
    if user is not None:
        query = access.visible_directives(query, user)
    return list(session.scalars(query.order_by(Meeting.held_at, Meeting.number, directives.Directive.deadline_at,
                                               directives.Directive.id)))


@dataclass
class MeetingPage:
    """Everything a meeting's page shows, already narrowed to what the viewer may see."""

    meeting: Meeting
    season_year: int
    documents: list[MeetingDocument]
    directives: list[Directive]  # the field's name hides the module's in the class body
    carried_forward: list[Directive]
    meeting_numbers: dict[int, int] = field(default_factory=dict)  # meeting id -> number, for carried rows
    can_manage: bool = False

    @property
    def drafts(self) -> list[Directive]:
        return [d for d in self.directives if d.status == directives.DRAFT]

    def meeting_number(self, directive: Directive) -> int:
        """The number of the meeting a listed directive is a recommendation of (this one's, unless carried)."""
        if directive.meeting_id is None:
            return self.meeting.number
        return self.meeting_numbers.get(directive.meeting_id, self.meeting.number)


def meeting_page(session: Session, meeting_id: int, user: Actor) -> MeetingPage:
    meeting = visible_meeting(session, user, meeting_id)
    season = directives.season_of(session, meeting.season_id)
    carried = carried_forward(session, meeting, user)
    numbers = dict(session.execute(select(Meeting.id, Meeting.number).where(
        Meeting.id.in_({d.meeting_id for d in carried}))).all()) if carried else {}
    return MeetingPage(meeting=meeting, season_year=season.hijri_year, documents=documents(session, meeting.id),
                       directives=meeting_directives(session, meeting.id, user), carried_forward=carried,
                       meeting_numbers=numbers, can_manage=can_manage(user))


_AGENDA_WORDS = {
    "agenda": ("جدول أعمال الاجتماع", "Meeting agenda"),
    "meeting": ("الاجتماع", "Meeting"),
    "date": ("التاريخ", "Date"),
    "chair": ("رئيس الاجتماع", "Chair"),
    "attending": ("الجهات الحاضرة", "Attending entities"),
    "section": ("القسم", "Section"),
    "this_meeting": ("توصيات هذا الاجتماع", "Recommendations of this meeting"),
    "carried": ("توجيهات مفتوحة مرحّلة من اجتماعات سابقة", "Open directives carried forward"),
    "from_meeting": ("من الاجتماع", "From meeting"),
    "reference": ("المرجع", "Reference"),
    "title": ("العنوان", "Title"),
    "kind": ("النوع", "Kind"),
    "responsible": ("الجهة المسؤولة", "Responsible entity"),
    "supporting": ("الجهات المساندة", "Supporting entities"),
    "deadline": ("الموعد النهائي", "Deadline"),
    "deadline_hijri": ("الموعد النهائي (هجري)", "Deadline (Hijri)"),
    "status": ("الحالة", "Status"),
    "overdue": ("متأخر", "Overdue"),
    "steps": ("المهام الحالية", "Current steps"),
    "yes": ("نعم", "yes"),
}
_VALUE_WORDS = {
    "draft": ("مسودة", "draft"), "active": ("قيد التنفيذ", "active"), "completed": ("منجز", "completed"),
    "cancelled": ("ملغى", "cancelled"), "decision": ("قرار", "decision"), "circular": ("تعميم", "circular"),
    "directive": ("توجيه", "directive"), "recommendation": ("توصية", "recommendation"),
}


@dataclass(frozen=True)
class Agenda:
    title: str
    header: list[tuple[str, str]]  # (label, value) lines above the table
    columns: list[str]
    rows: list[list[Any]]
    rtl: bool


def agenda(page: MeetingPage, language: str = "ar") -> Agenda:
    """The meeting's agenda as a table: its own directives, then those carried forward from earlier meetings."""
    if language not in ("ar", "en"):
        raise InvalidInput("language is ar or en")
    i = 0 if language == "ar" else 1

    def w(key: str) -> str:
        return _AGENDA_WORDS[key][i]

    def v(key: str) -> str:
        return _VALUE_WORDS.get(key, (key, key))[i]

    def name(entity: Entity) -> str:
        return entity.name_ar if i == 0 else entity.name_en

    meeting = page.meeting
    title = meeting.title_ar if i == 0 or not meeting.title_en else meeting.title_en
    header = [
        (w("meeting"), f"{meeting.number} — {title}"),
        (w("date"), f"{meeting.held_on_hijri} هـ — {meeting.held_on.isoformat()}"),
        (w("chair"), meeting.chair or ""),
        (w("attending"), ("، " if i == 0 else ", ").join(name(e) for e in meeting.attendees)),
    ]
    columns = [w(k) for k in ("section", "from_meeting", "reference", "title", "kind", "responsible", "supporting",
                              "deadline", "deadline_hijri", "status", "overdue", "steps")]
    rows: list[list[Any]] = []
    for section, items in (("this_meeting", page.directives), ("carried", page.carried_forward)):
        for d in items:
            local = d.deadline_at.astimezone(RIYADH)
            year, month, day = gregorian_to_hijri(local.date())
            hijri = f"{year:04d}-{month:02d}-{day:02d}"
            rows.append([
                w(section), page.meeting_number(d), d.reference,
                d.title if i == 0 or not d.title_en else d.title_en, v(d.kind), name(d.responsible_entity),
                ("، " if i == 0 else ", ").join(name(e) for e in d.supporting_entities),
                local.strftime("%Y-%m-%d %H:%M"), hijri, v(d.status), w("yes") if directives.overdue(d) else "",
                ", ".join(d.current_steps or []),
            ])
    return Agenda(f"{w('agenda')} {meeting.number}", header, columns, rows, rtl=i == 0)


def agenda_csv(page: MeetingPage, language: str = "ar") -> bytes:
    """UTF-8 with a byte-order mark (so Excel reads Arabic), one row per directive."""
    table = agenda(page, language)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(safe_row(table.columns))
    writer.writerows(safe_row(row) for row in table.rows)
    return buffer.getvalue().encode("utf-8-sig")


def agenda_xlsx(page: MeetingPage, language: str = "ar") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    table = agenda(page, language)
    book = Workbook()
    sheet = book.active
    sheet.title = "جدول الأعمال" if table.rtl else "Agenda"
    sheet.sheet_view.rightToLeft = table.rtl
    append_row(sheet, [table.title])
    sheet["A1"].font = Font(bold=True, size=14)
    for label, value in table.header:
        append_row(sheet, [label, value])
    sheet.append([])
    header_row = sheet.max_row + 1
    append_row(sheet, table.columns)
    for cell in sheet[header_row]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="1F5F4A")
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for row in table.rows:
        append_row(sheet, row)
    for letter, width in zip("ABCDEFGHIJKL", (24, 10, 14, 60, 12, 24, 30, 18, 14, 12, 8, 24), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
