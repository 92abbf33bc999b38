"""Process instances: start, complete a step, deliver a message, fire timers, cancel, retry.

Every change to an instance happens under its row lock (SQLite: the database write lock) and a
version column, in one transaction with its work items and service-task effects. When a step of
the model fails, nothing it did is kept: the instance stops at the last clean point in an
*incident* state with the message, until an administrator retries it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    Row,
    Select,
    String,
    Text,
    bindparam,
    event,
    func,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    Mapped,
    Session,
    SessionTransaction,
    aliased,
    mapped_column,
    object_session,
    relationship,
)
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.interfaces import ORMOption

from engine.bpmn import decision_tables, process_models
from engine.bpmn.bpmn_runtime import Runtime, ServiceCall, ServiceHandler, WorkflowFailure
from engine.bpmn.process_models import ProcessModel
from engine.bpmn.service_tasks import ExecutionContext, handler_for, operation
from engine.calendar.business_calendar import WORKWEEK, BusinessCalendar
from engine.foundation import clock
from engine.foundation.checks import present
from engine.foundation.errors import N_, Conflict, InvalidInput, NotFound, Term
from engine.foundation.settings import get_settings
from engine.people import users
from engine.storage import audit
from engine.storage.db import Base, GzipJSON, JSONType, UTCDateTime, write_row
from engine.work import escalation_timers, step_figures, work_items

RUNNING, COMPLETED, CANCELLED, INCIDENT = "running", "completed", "cancelled", "incident"
STATUSES = (RUNNING, COMPLETED, CANCELLED, INCIDENT)
STATUS_WORDS = {RUNNING: N_("running"), COMPLETED: N_("completed"), CANCELLED: N_("cancelled"),
                INCIDENT: N_("in incident")}

# A listener gets the instance's open steps after the change, or None where they are not known.
ChangeListener = Callable[[Session, "ProcessInstance", "list[work_items.WorkItem] | None"], None]
_listeners: list[ChangeListener] = []
StepListener = Callable[[Session, "ProcessInstance", "work_items.WorkItem"], None]
_step_listeners: list[StepListener] = []


def on_change(listener: ChangeListener) -> ChangeListener:
    """Call `listener` in the same transaction after every change of an instance (projections use it)."""
    _listeners.append(listener)
    return listener


def on_step_completed(listener: StepListener) -> StepListener:
    """Call `listener` in the same transaction after a step's completion was applied (not when the run it
    started failed: the step is open again then)."""
    _step_listeners.append(listener)
    return listener


def subject(instance_id: int) -> str:
    return f"instance:{instance_id}"


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    # The timer poll (`status = 'running' AND next_timer_at < now ORDER BY next_timer_at LIMIT n`) reads
    # only what is due, in order; on next_timer_at alone SQLite chose the status index and read every
    # running instance, state included, twice a second (migration 0006).
    __table_args__ = (Index("ix_process_instance_due", "status", "next_timer_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("process_model.id"), index=True)
    business_key: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20))  # indexed first in ix_process_instance_due
    business_status: Mapped[str | None] = mapped_column(String(60))
    state: Mapped[dict[str, Any]] = mapped_column(GzipJSON)
    next_timer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    incident_message: Mapped[str | None] = mapped_column(Text)
    incident_element: Mapped[str | None] = mapped_column(String(200))
    incident_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "|name|...|" of the messages it waits for, written with its state, so that a message finds the instances
    # waiting for it without loading every state; NULL where not known (saved before migration 0010).
    waiting_messages: Mapped[str | None] = mapped_column(String(1000))
    # A fingerprint of its escalation timers (engine.work.escalation_timers): "" none, NULL not known (migration 0012).
    waiting_escalations: Mapped[str | None] = mapped_column(String(40), default=escalation_timers.NONE_SET)
    # The versions of the decision tables it runs with: the newest when it started (NULL: none, or its
    # model's own). A changed rule applies to instances started after it; this one keeps these.
    decision_versions: Mapped[dict[str, int] | None] = mapped_column(JSONType)
    started_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    model: Mapped[ProcessModel] = relationship(lazy="joined")

    # Unannotated, as SQLAlchemy declares it (an instance attribute): the mapper reads it once, at mapping.
    __mapper_args__ = {"version_id_col": lock_version}  # noqa: RUF012


@operation("set_status")
def set_status(context: ExecutionContext, call: ServiceCall) -> dict[str, Any]:
    status = call.params.get("status")
    if not isinstance(status, str) or not 0 < len(status) <= 60:
        raise WorkflowFailure("set_status needs a status of 1 to 60 characters", element_id=call.element_id)
    context.instance.business_status = status
    return {"status": status}


# The business calendar an instance's expressions count working days in (`add_working_days`) is its
# directive's season's: the directives layer, above this one, registers how to find it. An instance that
# belongs to no season counts in `WORKWEEK` (Sunday to Thursday, no holidays).
CalendarFinder = Callable[[Session, int], BusinessCalendar | None]
_calendar_finders: list[CalendarFinder] = []


def find_calendars_with(finder: CalendarFinder) -> None:
    """Register `finder(session, instance_id)`: the calendar of the instance, or None when it has none."""
    if finder not in _calendar_finders:
        _calendar_finders.append(finder)


def calendar_of_instance(session: Session, instance_id: int) -> BusinessCalendar:
    for finder in _calendar_finders:
        found = finder(session, instance_id)
        if found is not None:
            return found
    return WORKWEEK


def _calendar_source(instance: ProcessInstance) -> Callable[[], BusinessCalendar]:
    """The instance's calendar, found when an expression first asks for it (its directive may be linked
    after the runtime is made) and kept for the unit of work."""
    found: list[BusinessCalendar] = []

    def calendar() -> BusinessCalendar:
        if not found:
            session = object_session(instance)
            found.append(calendar_of_instance(session, instance.id) if session is not None and instance.id
                         else WORKWEEK)
        return found[0]

    return calendar


def start(session: Session, model_key: str, data: dict[str, Any], actor: str, *,
          version: int | None = None, business_key: str | None = None,
          on_created: Callable[[ProcessInstance], None] | None = None) -> ProcessInstance:
    """Start an instance and run it to its first wait state; `on_created` sees it stored, before it runs
    (to link what it belongs to, so that listeners of its first change find it)."""
    model = process_models.get_model(session, model_key, version)
    work_items.check_variables(data, N_("process data"))
    settings = get_settings()
    decisions = _newest_decisions(session, model)
    compiled = process_models.compiled_with_decisions(session, model, decisions)

    def started(handler: ServiceHandler | None) -> Runtime:
        return Runtime.start(compiled, data, handler, settings.max_loop_visits, settings.max_instance_tasks,
                             _calendar_source(instance))

    now = clock.now()
    instance = ProcessInstance(  # its state is written by its first run (or by its incident, below)
        model=model, business_key=business_key, status=RUNNING, started_by=actor,
        started_at=now, updated_at=now, state={}, decision_versions=decisions,
        waiting_escalations=escalation_timers.NONE_SET,
    )
    session.add(instance)
    session.flush()
    audit.record(session, actor, "instance.started", subject(instance.id),
                 {"model": model.key, "version": model.version, "business_key": business_key})
    if on_created is not None:
        on_created(instance)
    _advance(session, instance, actor, Runtime.run_engine, started=started)
    if instance.status == INCIDENT:  # the clean point it falls back to: started, not yet run
        write_row(session, instance, {"state": started(None).stored()}, version="lock_version")
    return instance


def complete_task(session: Session, work_item_id: int, data: dict[str, Any], actor: str) -> ProcessInstance:
    """Complete one open step with form data. Exactly one of concurrent completions succeeds."""
    item, instance = lock_item(session, work_item_id)
    if item.status != work_items.OPEN:
        raise no_longer_open(session, item)
    _require_running(instance)
    work_items.validate_form(item, data)
    write_row(session, item, {"status": work_items.COMPLETED, "completed_by": actor, "completed_at": clock.now(),
                              "completion_data": data})

    def user_step(runtime: Runtime) -> None:
        runtime.complete_user_task(item.task_id, data)

    def user_step_and_after(runtime: Runtime) -> None:
        user_step(runtime)
        runtime.run_engine()

    event = audit.record(session, actor, "step.completed", subject(instance.id),
                         {"work_item": item.id, "element": item.element_id, "data": data})
    if not _advance(session, instance, actor, user_step_and_after, clean_part=user_step):
        audit.retract(session, event)
        write_row(session, item, {"status": work_items.OPEN, "completed_by": None, "completed_at": None,
                                  "completion_data": None})
        return instance
    step_figures.closed(session, instance.id, item.element_id, item.assignee_entity, item.created_at, item.due_at,
                        present(item.completed_at, "a completed step's completed_at"), completed=True)
    for listener in _step_listeners:
        listener(session, instance, item)
    return instance


def no_longer_open(session: Session, item: work_items.WorkItem) -> Conflict:
    """The refusal of a step someone else finished first, naming them as people know them."""
    status = Term.of(work_items.STATUS_WORDS, item.status)
    if item.completed_by:
        return Conflict(N_("step %(step)s is already %(status)s by %(actor)s"),
                        params={"step": str(item.id), "status": status,
                                "actor": users.display_name(session, item.completed_by)})
    return Conflict(N_("step %(step)s is already %(status)s"), params={"step": str(item.id), "status": status})


def status_word(status: str) -> Term:
    return Term.of(STATUS_WORDS, status)


def not_in_incident(instance: ProcessInstance) -> Conflict:
    return Conflict(N_("instance %(instance)s is %(status)s, not in incident"),
                    params={"instance": str(instance.id), "status": status_word(instance.status)})


def send_message(session: Session, instance_id: int, name: str, payload: Any, actor: str) -> ProcessInstance:
    instance = lock(session, instance_id)
    _require_running(instance)

    def deliver(runtime: Runtime) -> None:
        runtime.send_message(name, payload)

    def deliver_and_after(runtime: Runtime) -> None:
        deliver(runtime)
        runtime.run_engine()

    event = audit.record(session, actor, "message.received", subject(instance.id), {"name": name, "payload": payload})
    if not _advance(session, instance, actor, deliver_and_after, clean_part=deliver):
        audit.retract(session, event)
    return instance


class WroteBeforeFailing(Conflict):
    """A run told to take no savepoint failed after a service task had written: the caller rolls its
    transaction back and runs it again with savepoints (`fire_timers(..., savepoints=True)`)."""


def fire_timers(session: Session, instance: ProcessInstance, actor: str = "timer", *, savepoints: bool = True) -> None:
    """Fire what is due in an instance the caller has locked. With `savepoints=False` (a batch that can
    run again) a model failure after a service task wrote raises WroteBeforeFailing instead of undoing
    that write in a savepoint: two statements less per firing that calls a service task."""
    _advance(session, instance, actor, Runtime.fire_timers, savepoints=savepoints)


def cancel(session: Session, instance_id: int, actor: str) -> ProcessInstance:
    instance = lock(session, instance_id)
    if instance.status in (COMPLETED, CANCELLED):
        raise Conflict(N_("instance %(instance)s is already %(status)s"),
                       params={"instance": str(instance_id), "status": status_word(instance.status)})
    runtime = _load(instance, None)
    runtime.cancel()
    instance.state = runtime.stored()
    _end(instance, CANCELLED)
    instance.waiting_escalations = escalation_timers.sync(session, instance.id, instance.waiting_escalations, [])
    work_items.project(session, instance.id, [])
    session.flush()
    audit.record(session, actor, "instance.cancelled", subject(instance.id), {})
    _notify_listeners(session, instance, [])
    return instance


def retry(session: Session, instance_id: int, actor: str) -> ProcessInstance:
    """Run an instance in incident again from its last clean point."""
    instance = lock(session, instance_id)
    if instance.status != INCIDENT:
        raise not_in_incident(instance)
    instance.status = RUNNING
    instance.incident_message = instance.incident_element = instance.incident_at = None
    audit.record(session, actor, "instance.retried", subject(instance.id), {})
    _advance(session, instance, actor, Runtime.fire_timers)
    return instance


_LOCKED = "tansiq.locked_instances"  # session.info key: instances locked by this session's open transaction
_FRESH_ITEMS = "tansiq.fresh_work_items"  # session.info key: work items read afresh under those locks
_OPEN_STEPS = "tansiq.open_steps"  # session.info key: instance id -> its open steps as this transaction holds them


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_LOCKED, None)
        session.info.pop(_FRESH_ITEMS, None)
        session.info.pop(_OPEN_STEPS, None)


def open_steps(session: Session, instance_id: int) -> list[work_items.WorkItem]:
    """The instance's open steps, flushed (with their ids): those its last run in this transaction left
    (no query: a launch or a completion answers with them), else read."""
    remembered = session.info.get(_OPEN_STEPS, {}).get(instance_id)
    if remembered is None:
        return list(session.scalars(work_items.open_of_instance(instance_id)))
    if any(item.id is None for item in remembered):
        session.flush()
    return sorted((item for item in remembered if item.status == work_items.OPEN), key=lambda item: item.id)


@dataclass(frozen=True)
class LockCompanion:
    """A row a layer above reads with every lock of an instance, outer-joined in the same statement (the
    directives layer: the instance's directive, which its projection writes after each change). `held`
    gets each row found current, outside savepoints."""

    entity: type[Base]
    onclause: ColumnElement[bool]
    options: tuple[ORMOption, ...]
    held: Callable[[Session, ProcessInstance, Any], None]


_companions: list[LockCompanion] = []
_lock_statements: dict[Select[Any], Select[Any]] = {}  # a lock -> it with the companions
_SNAPSHOT = aliased(ProcessInstance)


def lock_with(companion: LockCompanion) -> None:
    if companion not in _companions:
        _companions.append(companion)
        _lock_statements.clear()


def locking(query: Select[Any]) -> Select[Any]:
    """`query`, a lock of instances, with the companions' rows: read its rows with `locked_instances`.

    PostgreSQL returns the locked row as it is once the lock is granted, but every other row of the
    statement as its snapshot saw it, before the writer it waited for committed. So the statement also
    reads the instance's version in its snapshot: where it differs from the locked row's, the companions
    may be stale and are not handed over (their layer reads them again)."""
    query = query.add_columns(select(_SNAPSHOT.lock_version).where(_SNAPSHOT.id == ProcessInstance.id)
                              .scalar_subquery())
    for companion in _companions:
        query = query.add_columns(companion.entity).outerjoin(companion.entity, companion.onclause)
        query = query.options(*companion.options)
    return query


def locked_instances(session: Session, rows: Sequence[Row[Any]]) -> list[ProcessInstance]:
    """The instances of rows read with `locking`, their current companions handed to whoever registered them."""
    found: list[ProcessInstance] = []
    for row in rows:
        instance, snapshot_version, *companion_rows = tuple(row)
        found.append(instance)
        current = snapshot_version == instance.lock_version and not session.in_nested_transaction()
        for companion, companion_row in zip(_companions, companion_rows, strict=True):
            if companion_row is None:
                continue
            if current:
                companion.held(session, instance, companion_row)
            else:
                session.expire(companion_row)  # read again when next used
    return found


def hold_open_steps(session: Session, instance_ids: list[int]) -> None:
    """Read the open steps of instances this transaction has locked, in one statement, for their runs here
    to project onto (a batch of timers)."""
    if not instance_ids or session.in_nested_transaction():
        return
    held = session.info.setdefault(_OPEN_STEPS, {})
    read: dict[int, list[work_items.WorkItem]] = {instance_id: [] for instance_id in instance_ids}
    for item in session.scalars(_OPEN_OF_INSTANCES, {"instance_ids": instance_ids}):
        read[item.instance_id].append(item)
    for instance_id, items in read.items():
        held.setdefault(instance_id, items)


_OPEN_OF_INSTANCES = (
    select(work_items.WorkItem)
    .where(work_items.WorkItem.instance_id.in_(bindparam("instance_ids", expanding=True)),
           work_items.WorkItem.status == work_items.OPEN)
    .execution_options(populate_existing=True)
)


def _lock_one(session: Session, query: Select[Any], params: dict[str, Any]) -> ProcessInstance | None:
    statement = _lock_statements.get(query)
    if statement is None:
        statement = _lock_statements[query] = locking(query)
    row = session.execute(statement, params).first()
    return None if row is None else locked_instances(session, [row])[0]


_LOCK = (
    select(ProcessInstance).where(ProcessInstance.id == bindparam("instance_id"))
    .with_for_update(of=ProcessInstance).execution_options(populate_existing=True)
)


def lock(session: Session, instance_id: int) -> ProcessInstance:
    """Load an instance for writing; other writers wait until this transaction ends.

    A second call in the same transaction returns the instance already held, without a query. Locks
    taken inside a savepoint are not remembered: rolling the savepoint back may release them.
    """
    held: ProcessInstance | None = session.info.get(_LOCKED, {}).get(instance_id)
    if held is not None:
        return held
    instance = _lock_one(session, _LOCK, {"instance_id": instance_id})
    if instance is None:
        raise NotFound(N_("no process instance %(instance)s"), params={"instance": str(instance_id)})
    if not session.in_nested_transaction():
        session.info.setdefault(_LOCKED, {})[instance_id] = instance
    return instance


_LOCK_OF_ITEM = (
    select(ProcessInstance)
    .where(ProcessInstance.id == select(work_items.WorkItem.instance_id)
           .where(work_items.WorkItem.id == bindparam("item_id")).scalar_subquery())
    .with_for_update(of=ProcessInstance)
    .execution_options(populate_existing=True)
)
_READ_ITEM_AND_OPEN = (  # the step, and the instance's open steps that its run will project onto
    select(work_items.WorkItem)
    .where(work_items.WorkItem.instance_id == bindparam("instance_id"),
           or_(work_items.WorkItem.id == bindparam("item_id"), work_items.WorkItem.status == work_items.OPEN))
    .execution_options(populate_existing=True)
)


def lock_item(session: Session, work_item_id: int) -> tuple[work_items.WorkItem, ProcessInstance]:
    """A step read afresh under its instance's lock, and the instance: what a writer of a step starts with.

    The instance is locked through the step (a step never moves to another instance), then the step is
    read with the instance's other open steps, which the run after a completion projects onto (no
    statement of its own): two statements, once per transaction; after that, this transaction is its only
    writer.
    """
    fresh = session.info.get(_FRESH_ITEMS, {})
    if work_item_id in fresh:
        item = fresh[work_item_id]
        return item, lock(session, item.instance_id)
    instance = _lock_one(session, _LOCK_OF_ITEM, {"item_id": work_item_id})
    read = [] if instance is None else list(
        session.scalars(_READ_ITEM_AND_OPEN, {"instance_id": instance.id, "item_id": work_item_id}))
    item = next((step for step in read if step.id == work_item_id), None)
    if instance is None or item is None:
        raise NotFound(N_("no step %(step)s"), params={"step": str(work_item_id)})
    if not session.in_nested_transaction():
        session.info.setdefault(_LOCKED, {}).setdefault(instance.id, instance)
        session.info.setdefault(_FRESH_ITEMS, {})[work_item_id] = item
        session.info.setdefault(_OPEN_STEPS, {}).setdefault(
            instance.id, [step for step in read if step.status == work_items.OPEN])
    return item, instance


def get_instance(session: Session, instance_id: int) -> ProcessInstance:
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(N_("no process instance %(instance)s"), params={"instance": str(instance_id)})
    return instance


@dataclass(frozen=True)
class InstanceFilter:
    """What the operations view narrows instances by; every field is optional."""

    model: str | None = None
    version: int | None = None
    status: str | None = None
    business_key: str | None = None
    directive_id: int | None = None
    started_from: datetime | None = None
    started_until: datetime | None = None

    def conditions(self) -> list[Any]:
        if self.status is not None and self.status not in STATUSES:
            raise InvalidInput(N_("unknown status %(value)s (known: %(known)s)"),
                               params={"value": repr(self.status), "known": ", ".join(STATUSES)})
        if self.version is not None and self.model is None:
            raise InvalidInput(N_("a version is a version of a model: name the model too"))
        conditions: list[Any] = []
        if self.model is not None:
            versions = select(ProcessModel.id).where(ProcessModel.key == self.model)
            if self.version is not None:
                versions = versions.where(ProcessModel.version == self.version)
            conditions.append(ProcessInstance.model_id.in_(versions))
        if self.status is not None:
            conditions.append(ProcessInstance.status == self.status)
        if self.business_key is not None:
            conditions.append(ProcessInstance.business_key == self.business_key)
        if self.directive_id is not None:  # the table, not the class: engine.directives.directives imports this module
            directive = Base.metadata.tables["directive"]
            conditions.append(ProcessInstance.id.in_(
                select(directive.c.instance_id).where(directive.c.id == self.directive_id)))
        if self.started_from is not None:
            conditions.append(ProcessInstance.started_at >= self.started_from)
        if self.started_until is not None:
            conditions.append(ProcessInstance.started_at < self.started_until)
        return conditions


def list_instances(session: Session, where: InstanceFilter | None = None, *, status: str | None = None,
                   limit: int = 50, offset: int = 0) -> list[ProcessInstance]:
    """Instances, newest first."""
    where = where or InstanceFilter(status=status)
    query = select(ProcessInstance).where(*where.conditions()).order_by(ProcessInstance.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset)))


def count_instances(session: Session, where: InstanceFilter | None = None) -> int:
    where = where or InstanceFilter()
    return session.scalar(select(func.count()).select_from(ProcessInstance).where(*where.conditions())) or 0


def load_runtime(instance: ProcessInstance, handler: ServiceHandler | None = None) -> Runtime:
    """The instance's workflow in memory (read-only unless the caller holds its lock and saves it)."""
    return _load(instance, handler)


def save_runtime(session: Session, instance: ProcessInstance, runtime: Runtime, actor: str,
                 **changes: Any) -> list[work_items.WorkItem]:
    """Store a runtime changed outside a run (variables corrected, a version migration), with `changes` to
    the row; open steps whose task is still ready keep their row, assignee and due moment."""
    open_steps = work_items.project(session, instance.id, runtime.ready_user_tasks())
    timers = escalation_timers.sync(session, instance.id, instance.waiting_escalations, runtime.waiting_escalations())
    write_row(session, instance, {**changes, "state": runtime.stored(), "next_timer_at": runtime.next_timer_at(),
                                  "waiting_messages": _waiting_column(runtime), "waiting_escalations": timers,
                                  "updated_at": clock.now()},
              version="lock_version")
    return open_steps


def _require_running(instance: ProcessInstance) -> None:
    if instance.status != RUNNING:
        raise Conflict(N_("instance %(instance)s is %(status)s"),
                       params={"instance": str(instance.id), "status": status_word(instance.status)})


def _newest_decisions(session: Session, model: ProcessModel) -> dict[str, int] | None:
    """The newest version of each decision table the model uses (None when it uses none: no query)."""
    if not model.decision_versions:
        return None
    return decision_tables.latest_versions(session, sorted(model.decision_versions))


def _load(instance: ProcessInstance, handler: ServiceHandler | None) -> Runtime:
    settings = get_settings()
    compiled = process_models.compiled_with_decisions(object_session(instance), instance.model,
                                                      instance.decision_versions)
    return Runtime.load(compiled, instance.state, handler, settings.max_loop_visits, settings.max_instance_tasks,
                        _calendar_source(instance))


def _advance(session: Session, instance: ProcessInstance, actor: str, action: Callable[[Runtime], None],
             clean_part: Callable[[Runtime], None] | None = None, *,
             started: Callable[[ServiceHandler | None], Runtime] | None = None, savepoints: bool = True) -> bool:
    """Apply `action` and save; on a model failure keep only `clean_part` and record an incident.

    `started` builds the runtime of an instance created in this transaction (nothing to load, no step yet).
    Returns False when not even the clean part could be applied (the instance is unchanged).
    """
    savepoint = _SavepointOnFirstWrite(session, take=savepoints)
    context = ExecutionContext(session, instance, actor)
    audit_mark = audit.mark(session)
    open_steps: list[work_items.WorkItem] | None
    try:
        handler = savepoint.before(handler_for(context))
        runtime = started(handler) if started is not None else _load(instance, handler)
        action(runtime)
        open_steps = _save(session, instance, runtime, actor, has_steps=started is None)
        savepoint.release()
        _notify_listeners(session, instance, open_steps)
        return True
    except WorkflowFailure as failure:
        savepoint.undo()
        audit.discard_since(session, audit_mark)
        incident = failure
    except IntegrityError:
        savepoint.roll_back()
        raise Conflict(N_("instance %(instance)s was changed by another worker; nothing was done"),
                       params={"instance": str(instance.id)}) from None
    except StaleDataError:
        savepoint.roll_back()
        raise Conflict(N_("instance %(instance)s was changed concurrently; nothing was done"),
                       params={"instance": str(instance.id)}) from None
    applied, open_steps = False, None
    if clean_part is not None:
        try:
            with session.begin_nested():
                runtime = _load(instance, None)
                clean_part(runtime)
                open_steps = _save(session, instance, runtime, actor)
            applied = True
        except WorkflowFailure as failure:
            audit.discard_since(session, audit_mark)
            incident = failure
    _record_incident(instance, incident)
    instance.waiting_escalations = escalation_timers.sync(session, instance.id, instance.waiting_escalations, [])
    session.flush()
    audit.record(session, actor, "instance.incident", subject(instance.id),
                 {"element": incident.element_id, "message": incident.message[:1000]})
    _notify_listeners(session, instance, open_steps)
    return applied


class _SavepointOnFirstWrite:
    """A savepoint taken only when a run writes before it saves: when a service task is called.

    Everything else a run does until `_save` writes is in memory, and `_save` evaluates every new step
    before it changes anything, so a model failure without a service task leaves nothing to undo. Most
    steps call none, and a savepoint was two statements and a fifth of the time of a completion.
    """

    def __init__(self, session: Session, *, take: bool = True) -> None:
        self.session = session
        self.take = take
        self.wrote = False
        self.transaction: SessionTransaction | None = None

    def before(self, handler: ServiceHandler) -> ServiceHandler:
        def handle(call: ServiceCall) -> Any:
            if self.take and self.transaction is None:
                self.transaction = self.session.begin_nested()
            self.wrote = True
            return handler(call)

        return handle

    def release(self) -> None:
        if self.transaction is not None:
            self.transaction.commit()

    def undo(self) -> None:
        """Undo what the failed run wrote (WroteBeforeFailing if it wrote without a savepoint)."""
        if self.wrote and not self.take:
            raise WroteBeforeFailing("a model failed after a service task wrote; run it again with savepoints")
        self.roll_back()

    def roll_back(self) -> None:
        if self.transaction is not None and self.transaction.is_active:
            self.transaction.rollback()


def _notify_listeners(session: Session, instance: ProcessInstance,
                      open_steps: list[work_items.WorkItem] | None) -> None:
    for listener in _listeners:
        listener(session, instance, open_steps)


def _save(session: Session, instance: ProcessInstance, runtime: Runtime, actor: str,
          has_steps: bool = True) -> list[work_items.WorkItem]:
    """Project the runtime's steps and store its state; return the open steps."""
    now = clock.now()
    known_open = _known_open_steps(session, instance.id)
    if runtime.completed:
        open_steps = work_items.project(session, instance.id, [], has_steps, known_open)
        changes = _ended(COMPLETED, now)
        audit.record(session, actor, "instance.completed", subject(instance.id), {})
    else:
        open_steps = work_items.project(session, instance.id, runtime.ready_user_tasks(), has_steps, known_open)
        changes = {"next_timer_at": runtime.next_timer_at(), "waiting_messages": _waiting_column(runtime)}
    changes["waiting_escalations"] = escalation_timers.sync(
        session, instance.id, instance.waiting_escalations, [] if runtime.completed else runtime.waiting_escalations())
    # Last: nothing of this run can fail once its row is written (and should a savepoint around it roll
    # back, write_row's objects are expired and read again).
    write_row(session, instance, {**changes, "state": runtime.stored(), "updated_at": now}, version="lock_version")
    if session.in_nested_transaction():  # a savepoint rolled back would leave the entry stale: read them
        session.info.get(_OPEN_STEPS, {}).pop(instance.id, None)
    else:
        session.info.setdefault(_OPEN_STEPS, {})[instance.id] = open_steps
    return open_steps


def _known_open_steps(session: Session, instance_id: int) -> list[work_items.WorkItem] | None:
    """The instance's open steps as this transaction holds them (read under its lock, or left by its last
    run here), or None: inside a savepoint, which could roll back what they show, they are read."""
    if session.in_nested_transaction():
        return None
    remembered: list[work_items.WorkItem] | None = session.info.get(_OPEN_STEPS, {}).get(instance_id)
    return None if remembered is None else [item for item in remembered if item.status == work_items.OPEN]


_WAITING_COLUMN_SIZE = 1000


def _waiting_column(runtime: Runtime) -> str | None:
    names = runtime.waiting_messages()
    if not names:
        return ""
    column = "|" + "|".join(names) + "|"
    return column if len(column) <= _WAITING_COLUMN_SIZE else None  # too many to list: found by loading


def _ended(status: str, now: datetime) -> dict[str, Any]:
    return {"status": status, "ended_at": now, "updated_at": now, "next_timer_at": None, "waiting_messages": "",
            "incident_message": None, "incident_element": None, "incident_at": None}


def _end(instance: ProcessInstance, status: str) -> None:
    for name, value in _ended(status, clock.now()).items():
        setattr(instance, name, value)


def _record_incident(instance: ProcessInstance, failure: WorkflowFailure) -> None:
    instance.status = INCIDENT
    instance.incident_message = failure.message[:4000]
    instance.incident_element = failure.element_id
    instance.incident_at = instance.updated_at = clock.now()
    instance.next_timer_at = None
