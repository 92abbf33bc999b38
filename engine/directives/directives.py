"""Directives: the unit of tracking. Each launched directive runs one BPMN instance; its status,
current steps, due moment and escalation level are kept in indexed columns, updated in the same
transaction as every change of its instance, so no question about directives loads workflow state.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    not_,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    Mapped,
    Session,
    SessionTransaction,
    joinedload,
    lazyload,
    mapped_column,
    relationship,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Date

from engine.bpmn import process_models
from engine.bpmn.bpmn_runtime import ServiceCall, WorkflowFailure
from engine.bpmn.service_tasks import ExecutionContext, operation
from engine.calendar import seasons
from engine.calendar.business_calendar import BusinessCalendar, calendar_of, parse_deadline
from engine.calendar.durations import RIYADH, hours_between, parse_moment
from engine.directives import meetings, tallies
from engine.directives.tags import clean_tags
from engine.foundation import clock, text_search
from engine.foundation.checks import present
from engine.foundation.errors import N_, Conflict, FieldIssue, FieldProblems, InvalidInput, Named, NotFound, Term
from engine.people import entities
from engine.people.entities import Entity
from engine.storage import audit
from engine.storage.db import Base, JSONType, UTCDateTime, write_row
from engine.work import escalations, instances, step_figures
from engine.work.escalations import MAX_ESCALATION_LEVEL, Escalation
from engine.work.work_items import OPEN, WorkItem

if TYPE_CHECKING:
    from engine.directives.access import Actor

KINDS = ("decision", "circular", "directive", "recommendation")
TRACKS = ("business", "technology", "human_resources")
PROGRAMME_TRACKS = ("baraa", "tansiq", "none")
PRIORITIES = ("normal", "high", "urgent")
DRAFT, ACTIVE, COMPLETED, CANCELLED = "draft", "active", "completed", "cancelled"
STATUSES = (DRAFT, ACTIVE, COMPLETED, CANCELLED)
STATUS_WORDS = {DRAFT: N_("draft"), ACTIVE: N_("active"), COMPLETED: N_("completed"), CANCELLED: N_("cancelled")}

directive_supporting_entity = Table(
    "directive_supporting_entity",
    Base.metadata,
    Column("directive_id", ForeignKey("directive.id", ondelete="CASCADE"), primary_key=True),
    Column("entity_id", ForeignKey("entity.id"), primary_key=True, index=True),
)


class DirectiveTag(Base):
    __tablename__ = "directive_tag"

    directive_id: Mapped[int] = mapped_column(ForeignKey("directive.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)


class DirectiveAddressee(Base):
    """An entity a directive is addressed to (its responsible entity or a supporting one), with the
    directive's creation moment: an entity's register, newest first, is read from this table's index and
    stops after a page, however many directives the entity has. Kept by `address`."""

    __tablename__ = "directive_addressee"
    __table_args__ = (Index("ix_directive_addressee_register", "entity_id", "created_at", "directive_id"),)

    entity_id: Mapped[int] = mapped_column(ForeignKey("entity.id"), primary_key=True)
    directive_id: Mapped[int] = mapped_column(ForeignKey("directive.id", ondelete="CASCADE"), primary_key=True,
                                              index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DirectiveSequence(Base):
    """The last number given in each Hijri year, for references like 1447/0042."""

    __tablename__ = "directive_sequence"

    hijri_year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer)


class Directive(Base):
    __tablename__ = "directive"
    __table_args__ = (
        Index("ix_directive_register", "season_id", "status", "priority"),
        Index("ix_directive_entity_status", "responsible_entity_id", "status", "current_due_at"),
        Index("ix_directive_escalated", "escalation_level", "status"),
        # The dashboard counts a season's overdue directives per entity and track from this index alone.
        Index("ix_directive_overdue", "status", "season_id", "responsible_entity_id", "track", "deadline_at",
              "current_due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("season.id"), index=True)
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meeting.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(500))
    title_en: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(300))
    issued_on: Mapped[date] = mapped_column(Date)
    track: Mapped[str] = mapped_column(String(20))
    programme_track: Mapped[str] = mapped_column(String(10))
    priority: Mapped[str] = mapped_column(String(10))
    responsible_entity_id: Mapped[int] = mapped_column(ForeignKey("entity.id"))
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    process_model_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), unique=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    launched_by: Mapped[str | None] = mapped_column(String(200))
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Projection of the running instance, kept current in the same transaction as each change:
    current_steps: Mapped[list[str]] = mapped_column(JSONType, default=list)
    current_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    completed_on_time: Mapped[bool | None] = mapped_column()
    incident: Mapped[str | None] = mapped_column(String(500))
    # What the register's search compares (engine/foundation/text_search.py), written with every write of its column.
    reference_folded: Mapped[str | None] = mapped_column(Text, deferred=True)
    title_folded: Mapped[str | None] = mapped_column(Text, deferred=True)
    title_en_folded: Mapped[str | None] = mapped_column(Text, deferred=True)

    responsible_entity: Mapped[Entity] = relationship(lazy="joined", foreign_keys=[responsible_entity_id])
    supporting_entities: Mapped[list[Entity]] = relationship(secondary=directive_supporting_entity, lazy="selectin")
    tags: Mapped[list[DirectiveTag]] = relationship(lazy="selectin", cascade="all, delete-orphan")
    # Read only where asked for (lazy): set at creation, so the answer to a launch names it without a query.
    season: Mapped[seasons.Season] = relationship(lazy="select", viewonly=True)


text_search.fold_on_write(Directive.__table__, ("reference", "title", "title_en"))


# --- the service ---------------------------------------------------------------------------------

REFERENCE_PATTERN = re.compile(r"^[A-Za-z0-9\u0600-\u06FF][A-Za-z0-9\u0600-\u06FF/_.\-]{0,39}$")
TIMING = {  # how long before the deadline to remind, and the grace before level 2, by priority
    "normal": ("P1D", "P1D"),
    "high": ("PT12H", "PT12H"),
    "urgent": ("PT2H", "PT2H"),
}
MAX_RETURNS = 3


@dataclass
class NewDirective:
    """What the secretariat registers; validated whole before anything is stored."""

    title: str
    kind: str
    responsible_entity: str
    deadline: str | datetime
    title_en: str | None = None
    body: str | None = None
    source: str | None = None
    reference: str | None = None
    meeting_id: int | None = None
    issued_on: date | None = None
    track: str = "business"
    programme_track: str = "none"
    priority: str = "normal"
    supporting_entities: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    season_year: int | None = None
    process_model_key: str | None = None


def subject(directive_id: int) -> str:
    return f"directive:{directive_id}"


ALL_ENTITIES = "all"


def create(session: Session, new: NewDirective, actor: str, *, launch_now: bool = False) -> Directive:
    _check_choices(new)
    if new.kind == "circular" and new.responsible_entity in (None, "", ALL_ENTITIES):
        new = _addressed_to_all(session, new)
    responsible, *supporting = entities.require_active(session, [new.responsible_entity, *new.supporting_entities])
    if new.responsible_entity in new.supporting_entities or len(set(new.supporting_entities)) != len(supporting):
        raise InvalidInput(N_("supporting entities must be distinct and differ from the responsible entity"))
    now = clock.now()
    season = seasons.get_season(session, new.season_year) if new.season_year else seasons.season_for(session, now)
    deadline = parse_deadline(new.deadline, now, season.calendar)
    if new.meeting_id is not None:
        meetings.get_meeting(session, new.meeting_id)
    model_key = new.process_model_key or default_model(new.kind, new.priority, bool(supporting))
    if not launch_now:  # a launch checks the model itself; a failed one undoes the whole creation
        process_models.get_model(session, model_key)
    directive = Directive(
        reference=_reference(session, new.reference, season.hijri_year),
        season_id=season.id, meeting_id=new.meeting_id, kind=new.kind, title=new.title.strip(),
        title_en=(new.title_en or "").strip() or None, body=new.body, source=new.source,
        issued_on=new.issued_on or now.astimezone(RIYADH).date(), track=new.track,
        programme_track=new.programme_track, priority=new.priority, responsible_entity_id=responsible.id,
        deadline_at=deadline, process_model_key=model_key, status=DRAFT, created_by=actor, created_at=now,
        current_steps=[], escalation_level=0, extension_count=0,
    )
    directive.supporting_entities = supporting
    directive.tags = [DirectiveTag(tag=t) for t in clean_tags(new.tags)]
    set_committed_value(directive, "season", season)
    session.add(directive)
    session.flush()
    address(session, [directive.id], new=True)
    audit.record(session, actor, "directive.created", subject(directive.id), {
        "reference": directive.reference, "kind": directive.kind, "title": directive.title,
        "responsible": responsible.code, "supporting": [e.code for e in supporting],
        "deadline": deadline.isoformat(), "model": model_key,
    })
    if launch_now:
        _launch(session, directive, actor)
    return directive


def _addressed_to_all(session: Session, new: NewDirective) -> NewDirective:
    """A circular to every entity: each one must acknowledge it; the first is recorded as responsible."""
    codes = [e.code for e in entities.list_entities(session) if e.active]
    if not codes:
        raise InvalidInput(N_("there is no entity to address the circular to"))
    return replace(new, responsible_entity=codes[0], supporting_entities=codes[1:])


def default_model(kind: str, priority: str, has_supporting: bool) -> str:
    if kind == "circular":
        return "circular_acknowledgement"
    if priority == "urgent":
        return "directive_urgent"
    return "directive_multi_entity" if has_supporting else "directive_standard"


def launch(session: Session, directive_id: int, actor: str) -> Directive:
    return _launch(session, _locked(session, directive_id), actor)


def _launch(session: Session, directive: Directive, actor: str) -> Directive:
    """Start the process of a draft the caller holds locked (or created in this transaction)."""
    if directive.status != DRAFT:
        raise Conflict(N_("directive %(reference)s is %(status)s, it was launched already"), params=_named(directive))
    if directive.deadline_at <= clock.now():
        raise InvalidInput(N_("the deadline of %(reference)s has passed; set a new one before launching"),
                           params=_named(directive))

    def link(instance: instances.ProcessInstance) -> None:
        """Before the first run: its projection writes the link (`_launched`), one UPDATE with the steps. Inside a
        savepoint (an import's launch) nothing is held, so the projection finds the directive by its row."""
        _count(session, directive, active=1)
        if session.in_nested_transaction():
            write_row(session, directive, _launched(directive, instance))
        _hold(session, instance.id, directive)

    instance = instances.start(
        session, directive.process_model_key or "directive_standard", process_data(directive), actor,
        business_key=directive.reference, on_created=link,
    )
    audit.record(session, actor, "directive.launched", subject(directive.id),
                 {"instance": instance.id, "model": directive.process_model_key})
    return directive


def process_data(directive: Directive) -> dict[str, Any]:
    """The process variables every shipped model expects (see docs/directive-models.md)."""
    reminder_lead, grace = TIMING[directive.priority]
    supporting = [e.code for e in directive.supporting_entities]
    return {
        "directive_id": directive.id,
        "reference": directive.reference,
        "title": directive.title,
        "kind": directive.kind,
        "priority": directive.priority,
        "responsible_entity": directive.responsible_entity.code,
        "supporting_entities": supporting,
        "addressed_entities": [directive.responsible_entity.code, *supporting],
        "deadline": directive.deadline_at.isoformat(),
        "reminder_lead": reminder_lead,
        "grace": grace,
        "max_returns": MAX_RETURNS,
    }


def cancel(session: Session, directive_id: int, actor: str, reason: str) -> Directive:
    directive = _locked(session, directive_id)
    if directive.status in (COMPLETED, CANCELLED):
        raise Conflict(N_("directive %(reference)s is already %(status)s"), params=_named(directive))
    if not reason or not reason.strip():
        raise InvalidInput(N_("say why the directive is cancelled"))
    if directive.status == DRAFT:
        directive.status, directive.ended_at = CANCELLED, clock.now()
    else:
        instances.cancel(session, _instance_id(directive), actor)
    audit.record(session, actor, "directive.cancelled", subject(directive.id), {"reason": reason.strip()})
    return directive


def request_extension(session: Session, directive_id: int, actor: str, new_deadline: str | datetime,
                      reason: str) -> Directive:
    directive = _require_active(session, directive_id)
    moment = parse_deadline(new_deadline, clock.now(), directive_calendar(session, directive))
    if moment <= directive.deadline_at:
        raise InvalidInput(N_("an extension asks for a deadline later than the current one"), fields=[
            FieldIssue("new_deadline", "minimum", N_("an extension asks for a deadline later than the current one"))])
    if not reason or not reason.strip():
        raise InvalidInput(N_("an extension request needs a reason"), fields=[
            FieldIssue("reason", "required", N_("an extension request needs a reason"))])
    instances.send_message(session, _instance_id(directive), "extension_requested",
                           {"new_deadline": moment.isoformat(), "reason": reason.strip(), "requested_by": actor}, actor)
    audit.record(session, actor, "extension.requested", subject(directive.id),
                 {"new_deadline": moment.isoformat(), "reason": reason.strip()})
    return directive


def supervisor_action(session: Session, directive_id: int, actor: str, action: str, note: str,
                      **fields: Any) -> Directive:
    """Extend, reassign, escalate or close: always as a message into the running instance."""
    directive = _require_active(session, directive_id)
    payload: dict[str, Any] = {"action": action, "note": (note or "").strip(), "actor": actor}
    if action == "extend":
        moment = parse_deadline(fields.get("new_deadline", ""), clock.now(), directive_calendar(session, directive))
        payload["new_deadline"] = moment.isoformat()
    elif action == "reassign":
        [entity] = entities.require_active(session, [str(fields.get("entity"))])  # None: refused as 'None'
        if entity.id == directive.responsible_entity_id:
            raise InvalidInput(N_("%(entity)s is already responsible for %(reference)s"),
                               params={"entity": Named(entity.name_en, entity.name_ar), **_named(directive)})
        payload["entity"] = entity.code
    elif action == "escalate":
        payload["level"] = _escalation_level(directive, fields.get("level"))
    elif action == "close":
        if fields.get("outcome") not in ("done", "cancelled"):
            raise InvalidInput(N_("closing needs an outcome: done or cancelled"))
        payload["outcome"] = fields["outcome"]
    else:
        raise InvalidInput(N_("unknown action %(value)s (extend, reassign, escalate, close)"),
                           params={"value": repr(action)})
    instances.send_message(session, _instance_id(directive), "supervisor_action", payload, actor)
    audit.record(session, actor, f"supervisor.{action}", subject(directive.id), payload)
    return directive


def _escalation_level(directive: Directive, chosen: Any) -> int:
    """The level a supervisor escalates to: the one chosen, or the next; always above the current one."""
    current = directive.escalation_level
    if current >= MAX_ESCALATION_LEVEL:
        raise InvalidInput(N_("the directive is at the highest escalation level"))
    if chosen is None:
        return current + 1
    if isinstance(chosen, bool) or not isinstance(chosen, int) or not current < chosen <= MAX_ESCALATION_LEVEL:
        raise InvalidInput(N_("escalate to a level from %(lowest)s to %(highest)s, not %(value)s"),
                           params={"lowest": current + 1, "highest": MAX_ESCALATION_LEVEL, "value": repr(chosen)})
    return chosen


def directive_calendar(session: Session, directive: Directive) -> BusinessCalendar:
    return season_of(session, directive.season_id).calendar


def season_of(session: Session, season_id: int) -> seasons.Season:
    """The season a directive or a meeting belongs to (their foreign key keeps it there)."""
    season = session.get(seasons.Season, season_id)
    if season is None:
        raise RuntimeError(f"no season {season_id}, which a directive or a meeting refers to")
    return season


def _instance_id(directive: Directive) -> int:
    """The process instance of a launched directive (only a draft has none)."""
    if directive.instance_id is None:
        raise RuntimeError(f"directive {directive.reference} is {directive.status} and has no process instance")
    return directive.instance_id


_SEASON_OF_INSTANCE = (select(seasons.Season.calendar_mode, seasons.Season.holidays)
                       .join(Directive, Directive.season_id == seasons.Season.id)
                       .where(Directive.instance_id == bindparam("instance_id")))


def _instance_calendar(session: Session, instance_id: int) -> BusinessCalendar | None:
    """The calendar of the season of the directive that `instance_id` carries out (None: no directive)."""
    held = _held(session, instance_id)
    if held is not None:
        return directive_calendar(session, held)
    row = session.execute(_SEASON_OF_INSTANCE, {"instance_id": instance_id}).first()
    return calendar_of(row.calendar_mode, row.holidays) if row is not None else None


instances.find_calendars_with(_instance_calendar)  # the expressions of a directive's workflow count its season's days


def _held_figures_context(session: Session, instance_id: int) -> step_figures.ContextRow | None:
    """The step figures' context of an instance whose directive this transaction holds, when the instance and
    the season are loaded in the session too (a launch and a completion): no statement at the commit."""
    directive = _held(session, instance_id)
    if directive is None:
        return None
    instance = session.identity_map.get(identity_key(instances.ProcessInstance, instance_id))
    season = session.identity_map.get(identity_key(seasons.Season, directive.season_id))
    if instance is None or season is None:
        return None
    if not (_loaded(instance, "model_id") and _loaded(season, "calendar_mode", "holidays")
            and _loaded(directive, "season_id", "track")):
        return None
    return step_figures.ContextRow(instance_id, instance.model_id, directive.season_id, directive.track,
                                   season.calendar_mode, season.holidays)


def _loaded(obj: object, *names: str) -> bool:
    """Whether `names` are loaded on `obj` (reading an expired attribute would send a statement)."""
    return not set(names) & inspect(obj).unloaded


step_figures.find_contexts_with(_held_figures_context)


def get(session: Session, directive_id: int) -> Directive:
    directive = session.get(Directive, directive_id)
    if directive is None:
        raise NotFound(N_("no directive %(directive)s"), params={"directive": str(directive_id)})
    return directive


def by_reference(session: Session, reference: str) -> Directive:
    directive = session.scalar(select(Directive).where(Directive.reference == reference))
    if directive is None:
        raise NotFound(N_("no directive %(reference)s"), params={"reference": repr(reference)})
    return directive


def overdue(directive: Directive) -> bool:
    """Active and past its deadline (the reports' rule), or with a step past its own due moment (the inbox's):
    a directive the daily report lists as overdue is overdue on every page too."""
    now = clock.now()
    late = [moment for moment in (directive.deadline_at, directive.current_due_at) if moment is not None]
    return directive.status == ACTIVE and any(moment < now for moment in late)


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """`overdue` in SQL, never NULL (so that NOT of it is the directives that are not overdue)."""
    past = [and_(moment.is_not(None), moment < now) for moment in (Directive.deadline_at, Directive.current_due_at)]
    return and_(Directive.status == ACTIVE, or_(*past))


def refresh(session: Session, directive: Directive) -> None:
    """Recompute the projection (after an escalation is resolved, say), from the directive read afresh."""
    if directive.instance_id is not None:
        fresh = _fresh(session, Directive.id == directive.id)
        if fresh is None:
            raise NotFound(N_("no directive %(directive)s"), params={"directive": str(directive.id)})
        _project(session, fresh, instances.get_instance(session, directive.instance_id), None,
                 escalations_raised=True, escalations_resolved=True)


def register(session: Session, *, status: str | None = None, limit: int = 50, offset: int = 0) -> list[Directive]:
    if status is not None and status not in STATUSES:
        raise InvalidInput(N_("unknown status %(value)s (known: %(known)s)"),
                           params={"value": repr(status), "known": ", ".join(STATUSES)})
    query = select(Directive).order_by(Directive.id.desc()).limit(limit).offset(offset)
    if status is not None:
        query = query.where(Directive.status == status)
    return list(session.scalars(query))


@dataclass(frozen=True)
class DirectiveFilters:
    """What a search of the register narrows to; None (the default) means any."""

    status: str | None = None
    entity: str | None = None  # the code of the responsible or a supporting entity
    track: str | None = None
    kind: str | None = None
    priority: str | None = None
    season: int | None = None  # the season's Hijri year
    overdue: bool | None = None
    escalated: bool | None = None
    text: str | None = None  # in the reference or the title (Arabic or English), matched literally


SORTS = ("deadline", "created", "priority", "reference")
"""Keys `search` sorts by; a leading "-" sorts descending ("-created" is the newest first)."""


def search(session: Session, user: Actor, filters: DirectiveFilters | None = None, sort: str = "-created",
           limit: int = 50, offset: int = 0) -> tuple[list[Directive], int]:
    """One page of the directives `user` may see (`access.visible_directives`), filtered and sorted,
    and how many match in all. Ties are broken by id, in the same direction."""
    from engine.directives import access

    filters = filters or DirectiveFilters()
    _check_filters(filters)
    key = sort.removeprefix("-")
    if key not in SORTS:
        raise InvalidInput(N_("unknown sort %(value)s (known: %(known)s, each optionally after -)"),
                           params={"value": repr(sort), "known": ", ".join(SORTS)})
    if limit < 1 or offset < 0:
        raise InvalidInput(N_("a page has a limit of at least 1 and an offset of at least 0"))
    descending = sort.startswith("-")
    if key == "created" and (entity := _register_entity(user, filters)) is not None:
        return _register_of(session, user, filters, entity, descending, limit, offset)
    query = access.visible_directives(select(Directive), user)
    for condition in _conditions(filters):
        query = query.where(condition)
    column = _sort_column(key)
    ordering = [column.desc(), Directive.id.desc()] if descending else [column.asc(), Directive.id.asc()]
    total = session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    rows = list(session.scalars(query.order_by(*ordering).limit(limit).offset(offset)))
    return rows, total


def _register_entity(user: Actor, filters: DirectiveFilters) -> Any:
    """The one entity whose directives a search is limited to, if any: the `entity` filter's (a subquery of
    its code), else the entity an entity user is confined to."""
    from engine.directives import access

    if filters.entity is not None:
        return select(Entity.id).where(Entity.code == filters.entity).scalar_subquery()
    return access.directive_scope(user)


def _register_of(session: Session, user: Actor, filters: DirectiveFilters, entity: Any, descending: bool,
                 limit: int, offset: int) -> tuple[list[Directive], int]:
    """An entity's directives in creation order, read along its addressee index: a page reads a page of
    entries, however many directives the entity has (the same rows and order as the general search)."""
    from engine.directives import access

    addressee = DirectiveAddressee
    query = select(Directive).join(addressee, and_(addressee.directive_id == Directive.id,
                                                   addressee.entity_id == entity))
    narrowed = filters.entity is not None and not access.reads_all(user)
    if narrowed:  # without the entity filter, the entity is the caller's scope: the join is the narrowing
        query = access.visible_directives(query, user)
    conditions = _conditions(replace(filters, entity=None))
    query = query.where(*conditions)
    if conditions or narrowed:
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    else:  # the entity's addressee entries alone, an index-only count
        total = session.execute(select(func.count()).select_from(addressee)
                                .where(addressee.entity_id == entity)).scalar_one()
    keys = (addressee.created_at, addressee.directive_id)
    ordering = [key.desc() for key in keys] if descending else [key.asc() for key in keys]
    return list(session.scalars(query.order_by(*ordering).limit(limit).offset(offset))), total


def addressed_to(entity_id: Any) -> ColumnElement[bool]:
    """Directives an entity is responsible for or supports (their addressee rows)."""
    return Directive.id.in_(select(DirectiveAddressee.directive_id).where(DirectiveAddressee.entity_id == entity_id))


def address(session: Session, directive_ids: Sequence[int], *, new: bool = False) -> None:
    """Make the addressee rows of these directives (flushed) match their responsible and supporting
    entities; `new` says they have none yet."""
    connection = session.connection()
    if not new:
        connection.execute(delete(DirectiveAddressee).where(DirectiveAddressee.directive_id.in_(directive_ids)))
    supporting = directive_supporting_entity.c
    connection.execute(insert(DirectiveAddressee).from_select(
        ["entity_id", "directive_id", "created_at"],
        union(
            select(Directive.responsible_entity_id, Directive.id, Directive.created_at)
            .where(Directive.id.in_(directive_ids)),
            select(supporting.entity_id, Directive.id, Directive.created_at)
            .join(Directive, Directive.id == supporting.directive_id).where(supporting.directive_id.in_(directive_ids)),
        ),
    ))


def _check_filters(filters: DirectiveFilters) -> None:
    for label, value, allowed in (("status", filters.status, STATUSES), ("track", filters.track, TRACKS),
                                  ("kind", filters.kind, KINDS), ("priority", filters.priority, PRIORITIES)):
        if value is not None and value not in allowed:
            raise InvalidInput(_UNKNOWN_FILTER[label], params={"value": repr(value), "known": ", ".join(allowed)})
    if filters.text is not None and "\x00" in filters.text:
        raise InvalidInput(N_("the search text may not contain NUL characters"))


def _conditions(filters: DirectiveFilters) -> list[Any]:
    conditions: list[Any] = []
    if filters.status is not None:
        conditions.append(Directive.status == filters.status)
    if filters.entity is not None:
        conditions.append(addressed_to(select(Entity.id).where(Entity.code == filters.entity).scalar_subquery()))
    for column, value in ((Directive.track, filters.track), (Directive.kind, filters.kind),
                          (Directive.priority, filters.priority)):
        if value is not None:
            conditions.append(column == value)
    if filters.season is not None:
        season_id = select(seasons.Season.id).where(seasons.Season.hijri_year == filters.season).scalar_subquery()
        conditions.append(Directive.season_id == season_id)
    if filters.overdue is not None:
        is_overdue = overdue_condition(clock.now())
        conditions.append(is_overdue if filters.overdue else not_(is_overdue))
    if filters.escalated is True:
        conditions.append(Directive.escalation_level > 0)
    elif filters.escalated is False:
        conditions.append(Directive.escalation_level == 0)
    text = (filters.text or "").strip()
    if text:
        conditions.append(text_matches(text))
    return conditions


def text_matches(text: str) -> Any:
    """The directives whose reference or titles hold `text` (Arabic folded; indexed on both databases): the
    one search of the register, the inbox and the board."""
    return text_search.contains(Directive.id, [Directive.reference_folded, Directive.title_folded,
                                               Directive.title_en_folded], text)


def _sort_column(key: str) -> Any:
    if key == "priority":
        return case((Directive.priority == "urgent", 3), (Directive.priority == "high", 2), else_=1)
    return {"deadline": Directive.deadline_at, "created": Directive.created_at,
            "reference": Directive.reference}[key]


def _require_active(session: Session, directive_id: int) -> Directive:
    directive = get(session, directive_id)
    if directive.status != ACTIVE:
        raise Conflict(N_("directive %(reference)s is %(status)s"), params=_named(directive))
    return directive


def _locked(session: Session, directive_id: int) -> Directive:
    directive = session.scalar(
        select(Directive).where(Directive.id == directive_id).with_for_update(of=Directive)
        .execution_options(populate_existing=True)
    )
    if directive is None:
        raise NotFound(N_("no directive %(directive)s"), params={"directive": str(directive_id)})
    return directive


_UNKNOWN_FILTER = {
    "status": N_("unknown status %(value)s (known: %(known)s)"),
    "track": N_("unknown track %(value)s (known: %(known)s)"),
    "kind": N_("unknown kind %(value)s (known: %(known)s)"),
    "priority": N_("unknown priority %(value)s (known: %(known)s)"),
}


def _named(directive: Directive) -> dict[str, Any]:
    """A refusal's parameters naming the directive and its status (a word the reader sees in their language)."""
    return {"reference": directive.reference, "status": Term.of(STATUS_WORDS, directive.status)}


_UNKNOWN_CHOICE = {
    "kind": N_("unknown kind %(value)s (known: %(known)s)"),
    "track": N_("unknown track %(value)s (known: %(known)s)"),
    "programme_track": N_("unknown programme track %(value)s (known: %(known)s)"),
    "priority": N_("unknown priority %(value)s (known: %(known)s)"),
}


def _check_choices(new: NewDirective) -> None:
    """Refuse a new directive with every bad field at once."""
    problems = FieldProblems()
    for name, value, allowed in (("kind", new.kind, KINDS), ("track", new.track, TRACKS),
                                 ("programme_track", new.programme_track, PROGRAMME_TRACKS),
                                 ("priority", new.priority, PRIORITIES)):
        if value not in allowed:
            problems.add(name, "enum", _UNKNOWN_CHOICE[name], value=repr(value), known=", ".join(allowed))
    if not isinstance(new.title, str) or not new.title.strip() or len(new.title) > 500:
        problems.add("title", "required" if not str(new.title or "").strip() else "max-length",
                     N_("a directive needs a title of 1-500 characters"))
    if new.body is not None and len(new.body) > 20_000:
        problems.add("body", "max-length", N_("the body is longer than 20,000 characters"))
    if not isinstance(new.supporting_entities, list) or not isinstance(new.tags, list):
        problems.add("supporting_entities", "type", N_("supporting entities and tags are lists"))
    problems.raise_if_any()


def _reference(session: Session, given: str | None, hijri_year: int) -> str:
    if given is not None:
        given = given.strip()
        if not REFERENCE_PATTERN.match(given):
            raise InvalidInput(N_("a reference is 1-40 letters, digits, / . _ or -: %(value)s"),
                               params={"value": repr(given)})
        if session.scalar(_REFERENCE_TAKEN, {"reference": given}) is not None:
            raise Conflict(N_("the reference %(reference)s is taken"), params={"reference": given})
        return given
    while True:
        number, taken = _next_number(session, hijri_year)
        if not taken:
            return f"{hijri_year}/{number:04d}"


_SEQUENCE = DirectiveSequence.__table__
_NUMBER_TEXT: ColumnElement[str] = cast(_SEQUENCE.c.last_number, String)
# The reference a number gives ("1448/0007": four digits at least), written in SQL as in Python above.
_NUMBERED: ColumnElement[str] = bindparam("prefix", type_=String) + case(
    {1: "000" + _NUMBER_TEXT, 2: "00" + _NUMBER_TEXT, 3: "0" + _NUMBER_TEXT},
    value=func.length(_NUMBER_TEXT), else_=_NUMBER_TEXT)
# One statement takes the next number and the row's lock (held to commit: numbers are given without gaps),
# and says whether a directive holds its reference already (one given by hand, or imported).
_TAKE_NUMBER = (
    update(_SEQUENCE).where(_SEQUENCE.c.hijri_year == bindparam("year"))
    .values(last_number=_SEQUENCE.c.last_number + 1)
    .returning(_SEQUENCE.c.last_number, exists().where(Directive.reference == _NUMBERED))
)
_REFERENCE_TAKEN = select(Directive.id).where(Directive.reference == bindparam("reference"))


def _next_number(session: Session, hijri_year: int) -> tuple[int, bool]:
    """The year's next number, and whether its reference is taken."""
    row = session.connection().execute(_TAKE_NUMBER, {"year": hijri_year, "prefix": f"{hijri_year}/"}).first()
    if row is not None:
        return row[0], bool(row[1])
    try:
        with session.begin_nested():
            session.connection().execute(_SEQUENCE.insert().values(hijri_year=hijri_year, last_number=0))
    except IntegrityError:  # another writer created it first: take from theirs
        pass
    return _next_number(session, hijri_year)


# --- keeping the projection current ----------------------------------------------------------------

_HELD = "tansiq.held_directives"  # session.info key: instance id -> its directive, locked by this transaction


@event.listens_for(Session, "after_transaction_end")
def _forget_held(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_HELD, None)


def _hold(session: Session, instance_id: int, directive: Directive) -> None:
    """Remember a directive read afresh under its instance's lock (or created) in this transaction: every
    other writer of its projection waits for that lock, so the copy stays current until the commit."""
    if not session.in_nested_transaction():  # a savepoint rolled back could leave the entry stale
        session.info.setdefault(_HELD, {})[instance_id] = directive


def _held(session: Session, instance_id: int) -> Directive | None:
    held: Directive | None = session.info.get(_HELD, {}).get(instance_id)
    return held


_OF_INSTANCE = select(Directive).where(Directive.instance_id == bindparam("instance_id"))
_OF_INSTANCE_WITHOUT_LISTS = _OF_INSTANCE.options(lazyload(Directive.supporting_entities), lazyload(Directive.tags))


def of_instance(session: Session, instance_id: int, *, with_lists: bool = True) -> Directive | None:
    """The directive an instance runs for (None for a process without one); `with_lists=False` leaves its
    supporting entities and tags to be loaded when first read."""
    held = _held(session, instance_id)
    if held is not None:
        return held
    return session.scalar(_OF_INSTANCE if with_lists else _OF_INSTANCE_WITHOUT_LISTS, {"instance_id": instance_id})


@instances.on_change
def _sync(session: Session, instance: instances.ProcessInstance, open_steps: list[WorkItem] | None) -> None:
    directive = _held(session, instance.id) or session.scalar(_FRESH_OF_INSTANCE, {"instance_id": instance.id})
    if directive is not None:
        _hold(session, instance.id, directive)
        _project(session, directive, instance, open_steps, escalations_raised=escalations.raised(session, instance.id))


_FRESH = (  # with its season, which the step figures' context reads at the commit (no statement of its own)
    select(Directive).options(lazyload(Directive.supporting_entities), lazyload(Directive.tags),
                              joinedload(Directive.season))
    .execution_options(populate_existing=True)
)
_FRESH_OF_INSTANCE = _FRESH.where(Directive.instance_id == bindparam("instance_id"))
# Every lock of an instance reads its directive too, in the same statement, and holds it.
instances.lock_with(instances.LockCompanion(
    Directive, Directive.instance_id == instances.ProcessInstance.id,
    (lazyload(Directive.supporting_entities), lazyload(Directive.tags), joinedload(Directive.season)),
    lambda session, instance, directive: _hold(session, instance.id, directive),
))


def _fresh(session: Session, condition: ColumnElement[bool]) -> Directive | None:
    """The directive read afresh: a copy the request loaded before it took the instance's lock (for its
    access check) may be stale, and a projection compared with a stale copy could skip a change."""
    return session.scalar(_FRESH.where(condition))


_ESCALATION = Escalation.__table__
_CLAIM_ESCALATIONS = (  # those raised by the instance since (escalations.escalate does not know the directive)
    update(_ESCALATION)
    .where(_ESCALATION.c.instance_id == bindparam("of_instance"), _ESCALATION.c.directive_id.is_(None))
    .values(directive_id=bindparam("claiming_directive"))
    .returning(_ESCALATION.c.entity, _ESCALATION.c.level)
)
_OPEN_LEVEL = select(func.coalesce(func.max(_ESCALATION.c.level), 0)).where(
    _ESCALATION.c.instance_id == bindparam("instance_id"), _ESCALATION.c.status == "open")


class _OpenStep(Protocol):
    """What the projection reads of an open step: a `WorkItem`, or a row of `_open_steps`."""

    @property
    def element_id(self) -> str: ...
    @property
    def due_at(self) -> datetime | None: ...


def _open_steps(session: Session, instance_id: int) -> Sequence[Row[str, datetime | None]]:
    return session.execute(
        select(WorkItem.element_id, WorkItem.due_at).where(WorkItem.instance_id == instance_id, WorkItem.status == OPEN)
    ).all()


def _project(session: Session, directive: Directive, instance: instances.ProcessInstance,
             open_steps: list[WorkItem] | None, *, escalations_raised: bool,
             escalations_resolved: bool = False) -> None:
    """Copy what the directive's pages show from its instance: open steps (read when not given), earliest
    due, escalation level, incident and end. The escalation queries run only when escalations were raised
    or resolved in this unit of work; the open level is read again only when one was resolved."""
    steps: Sequence[_OpenStep] = _open_steps(session, instance.id) if open_steps is None else open_steps
    dues = [step.due_at for step in steps if step.due_at is not None]
    projected: dict[str, Any] = {
        **_launched(directive, instance),
        "current_steps": sorted({step.element_id for step in steps}),
        "current_due_at": min(dues) if dues else None,
        "incident": (instance.incident_message or "")[:500] or None,
    }
    if escalations_raised or escalations_resolved:
        connection = session.connection()
        raised = connection.execute(_CLAIM_ESCALATIONS, {"of_instance": instance.id,
                                                         "claiming_directive": directive.id}).all()
        count_escalations(session, directive, raised, 1)
        projected["escalation_level"] = (  # raised only: the level read under the lock is still the open ones'
            connection.execute(_OPEN_LEVEL, {"instance_id": instance.id}).scalar_one() if escalations_resolved
            else max([directive.escalation_level, *(level for _, level in raised)]))
    if projected.get("status", directive.status) == ACTIVE:
        projected |= _ending(directive, instance)
    if projected.get("status", directive.status) in (COMPLETED, CANCELLED):
        projected["current_due_at"] = None
    changed = {name: value for name, value in projected.items() if getattr(directive, name) != value}
    if changed.get("status", ACTIVE) != ACTIVE:
        _count_ending(session, directive, changed)
    if changed:
        write_row(session, directive, changed)


def _launched(directive: Directive, instance: instances.ProcessInstance) -> dict[str, Any]:
    """A draft's link to the instance its launch started, written with the first projection (one UPDATE)."""
    if directive.status != DRAFT:
        return {}
    return {"instance_id": instance.id, "status": ACTIVE, "launched_by": instance.started_by,
            "launched_at": instance.started_at}


def _count(session: Session, directive: Directive, entity: str | None = None, **changes: float) -> None:
    """Add to the dashboard's totals of the directive's season, entity (its own unless named) and track."""
    tallies.add(session, directive.season_id, entity or directive.responsible_entity.code, directive.track,
                **changes)


def _count_ending(session: Session, directive: Directive, ending: dict[str, Any]) -> None:
    """An active directive ends (`ending` as `_ending` gives it, with the launch when it ends in the run that
    launched it; the directive is not yet changed)."""
    if ending["status"] != COMPLETED:
        _count(session, directive, active=-1)
        return
    launched_at = ending.get("launched_at", directive.launched_at)
    _count(session, directive, active=-1, completed=1, on_time=int(ending["completed_on_time"]),
           completion_hours=hours_between(present(launched_at, "an active directive's launch"), ending["ended_at"]))


def count_escalations(session: Session, directive: Directive, escalated: Sequence[tuple[str | None, int]],
                      change: int) -> None:
    """Open escalations (entity, level) of the directive raised (`change` 1) or resolved (-1)."""
    for entity, level in escalated:
        _count(session, directive, entity or tallies.NO_ENTITY, **{tallies.escalation_figure(level): change})


@instances.on_step_completed
def _count_acknowledgement(session: Session, instance: instances.ProcessInstance, item: WorkItem) -> None:
    if item.element_id != tallies.ACKNOWLEDGE:
        return
    directive = of_instance(session, instance.id, with_lists=False)
    if directive is not None:
        _count(session, directive, item.assignee_entity or tallies.NO_ENTITY, acknowledged=1,
               acknowledge_hours=hours_between(item.created_at, present(item.completed_at, "a completed step's end")))


def _ending(directive: Directive, instance: instances.ProcessInstance) -> dict[str, Any]:
    """What ends an active directive when its instance ended (nothing while it runs)."""
    if instance.status == instances.COMPLETED:
        status = CANCELLED if instance.business_status == "cancelled" else COMPLETED
        ended_at = present(instance.ended_at, "a completed instance's end")
        return {"status": status, "ended_at": ended_at,
                "completed_on_time": status == COMPLETED and ended_at <= directive.deadline_at}
    if instance.status == instances.CANCELLED:
        return {"status": CANCELLED, "ended_at": instance.ended_at}
    return {}


# --- operations a directive's model calls ----------------------------------------------------------

def _directive_of(context: ExecutionContext, call: ServiceCall) -> Directive:
    # held (read afresh under the instance's lock, or being launched), else read afresh: never a copy read before it
    directive = _held(context.session, context.instance.id) or context.session.scalar(
        select(Directive).where(Directive.instance_id == context.instance.id)
        .execution_options(populate_existing=True)
    )
    if directive is None:
        raise WorkflowFailure(f"{call.operation} is for directive processes only", element_id=call.element_id)
    return directive


@operation("change_deadline")
def change_deadline(context: ExecutionContext, call: ServiceCall) -> dict[str, Any]:
    directive = _directive_of(context, call)
    try:
        moment = parse_moment(str(call.params.get("deadline")))  # None: refused as 'None'
    except InvalidInput as exc:
        raise WorkflowFailure(exc.message, element_id=call.element_id) from None
    previous = directive.deadline_at
    directive.deadline_at = moment
    directive.extension_count += 1
    audit.record(context.session, context.actor, "directive.deadline_changed", subject(directive.id),
                 {"from": previous.isoformat(), "to": moment.isoformat(), "reason": call.params.get("reason")})
    return {"deadline": moment.isoformat()}


@operation("reassign")
def reassign(context: ExecutionContext, call: ServiceCall) -> dict[str, Any]:
    directive = _directive_of(context, call)
    try:
        [entity] = entities.require_active(context.session, [str(call.params.get("entity"))])  # None: as 'None'
    except InvalidInput as exc:
        raise WorkflowFailure(exc.message, element_id=call.element_id) from None
    previous = directive.responsible_entity.code
    if directive.status == ACTIVE:
        _count(context.session, directive, previous, active=-1)
        _count(context.session, directive, entity.code, active=1)
    directive.responsible_entity = entity  # the relationship with the key: a later count reads its code
    context.session.flush()
    address(context.session, [directive.id])
    audit.record(context.session, context.actor, "directive.reassigned", subject(directive.id),
                 {"from": previous, "to": entity.code})
    return {"entity": entity.code}
