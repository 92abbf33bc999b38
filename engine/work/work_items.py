"""Work items: every READY user task of every instance, projected into an indexed row.

Inboxes, counts and overdue lists read these rows; nobody loads workflow state to answer them.
"""

from __future__ import annotations

import json
import keyword
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, Select, String, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.bpmn import expressions
from engine.bpmn.bpmn_runtime import UserTaskView, WorkflowFailure
from engine.calendar import durations
from engine.foundation import clock
from engine.foundation.errors import N_, ExpressionError, InvalidInput, Term
from engine.foundation.schema_issues import schema_issues
from engine.people.roles import ENTITY_USER, ROLES
from engine.storage.db import Base, JSONType, UTCDateTime
from engine.work import step_figures

OPEN, COMPLETED, WITHDRAWN = "open", "completed", "withdrawn"
STATUS_WORDS = {OPEN: N_("open"), COMPLETED: N_("completed"), WITHDRAWN: N_("withdrawn")}
MAX_FORM_BYTES = 64_000
MAX_DEPTH = 32  # lists and objects nest at most this deep in process variables


class WorkItem(Base):
    __tablename__ = "work_item"
    __table_args__ = (
        Index("ix_work_item_inbox_entity", "assignee_entity", "status", "due_at"),
        Index("ix_work_item_inbox_role", "assignee_role", "status", "due_at"),
        # The open steps due within a window (the forecast) or past due earlier today (the heatmap), from the
        # index alone on PostgreSQL (migration 0012).
        Index("ix_work_item_overdue", "status", "due_at",
              postgresql_include=["id", "element_id", "assignee_entity", "created_at"]),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[str] = mapped_column(String(36), unique=True)
    element_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300))
    name_ar: Mapped[str | None] = mapped_column(String(300))
    name_en: Mapped[str | None] = mapped_column(String(300))
    lane: Mapped[str | None] = mapped_column(String(200))
    assignee_role: Mapped[str | None] = mapped_column(String(40))
    assignee_entity: Mapped[str | None] = mapped_column(String(100))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    form_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default=OPEN, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(200))
    completion_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    progress_percent: Mapped[int | None] = mapped_column(Integer)
    progress_note: Mapped[str | None] = mapped_column(String(2000))
    progress_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def overdue(self) -> bool:
        return self.status == OPEN and self.due_at is not None and self.due_at < clock.now()


# Statements on every step's path are built once: building and keying a statement each time took longer
# than running it (bench/RESULTS.md).
_OPEN_OF_INSTANCE = select(WorkItem).where(WorkItem.instance_id == bindparam("instance_id"), WorkItem.status == OPEN)


def open_of_instance(instance_id: int) -> Select[WorkItem]:
    return _OPEN_OF_INSTANCE.params(instance_id=instance_id).order_by(WorkItem.id)


def project(session: Session, instance_id: int, views: list[UserTaskView], has_steps: bool = True,
            known_open: list[WorkItem] | None = None) -> list[WorkItem]:
    """Make the open work items of an instance match its READY user tasks; return them (open, unflushed).
    `has_steps=False` says the instance has no step yet (it was just created): nothing to read;
    `known_open` are its open items as the caller holds them under the instance's lock (else read)."""
    open_items = {}
    if known_open is not None:
        open_items = {item.task_id: item for item in known_open}
    elif has_steps:
        open_items = {item.task_id: item for item in session.scalars(_OPEN_OF_INSTANCE, {"instance_id": instance_id})}
    new_views = [view for view in views if view.task_id not in open_items]
    new_items = [_new_item(instance_id, view) for view in new_views]
    # Nothing changes before every new step is built: building one may fail (its expressions), and the
    # caller relies on a failed projection leaving the session as it was.
    ready_ids = {view.task_id for view in views}
    still_open = []
    for task_id, item in open_items.items():
        if task_id in ready_ids:
            still_open.append(item)
        else:
            item.status = WITHDRAWN  # interrupted by an event, or the instance ended
            item.completed_at = clock.now()
            step_figures.closed(session, instance_id, item.element_id, item.assignee_entity, item.created_at,
                                item.due_at, item.completed_at, completed=False)
    session.add_all(new_items)
    for item, view in zip(new_items, new_views, strict=True):
        step_figures.opened(session, instance_id, item.element_id, item.assignee_entity, item.created_at,
                            item.due_at, rework=view.earlier_visits > 0)
    return [*still_open, *new_items]


def _new_item(instance_id: int, view: UserTaskView) -> WorkItem:
    props = view.properties
    entity = _evaluate_property(view, "assignee_entity")
    role = props.get("role") or (view.lane if view.lane in ROLES else None) or (ENTITY_USER if entity else None)
    due = _evaluate_property(view, "due")
    try:
        due_at = durations.parse_moment(due) if due else None
    except InvalidInput as exc:
        raise WorkflowFailure(f"the due moment is not a date: {exc.message}", element_id=view.element_id) from None
    schema = view.extensions.get("formSchema")
    return WorkItem(
        instance_id=instance_id,
        task_id=view.task_id,
        element_id=view.element_id,
        name=view.name[:300],
        name_ar=props.get("name_ar"),
        name_en=props.get("name_en"),
        lane=view.lane,
        assignee_role=role,
        assignee_entity=str(entity) if entity is not None else None,
        due_at=due_at,
        form_schema=json.loads(schema) if schema else None,
        status=OPEN,
        created_at=clock.now(),
    )


def _evaluate_property(view: UserTaskView, name: str) -> Any:
    source = view.properties.get(name)
    if not source:
        return None
    try:
        return expressions.evaluate(source, view.data)
    except ExpressionError as exc:
        raise WorkflowFailure(f"{name}: {exc.message}", element_id=view.element_id) from None


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deep lists and objects nest (a flat object is 1), counting no further than `limit` + 1.

    Walks with a stack, not recursion, so hostile depth costs no more than the data's size.
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children)
    return deepest


def check_variables(data: Any, what: str = N_("form data")) -> dict[str, Any]:
    """Process variables are a JSON object of plain names (no keyword) that shadow nothing the evaluator knows,
    at most `MAX_FORM_BYTES` of JSON nested at most `MAX_DEPTH` levels deep. `what` (marked with N_) names
    them in the refusal."""
    named = {"what": Term(what)}
    if not isinstance(data, dict):
        raise InvalidInput(N_("%(what)s must be an object"), params=named)
    if nesting_depth(data) > MAX_DEPTH:  # before serialising: deep data would exhaust the stack there
        raise InvalidInput(N_("%(what)s may nest at most %(limit)s levels of lists and objects deep"),
                           params={**named, "limit": MAX_DEPTH})
    try:
        size = len(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(N_("%(what)s must be plain JSON: %(reason)s"),
                           params={**named, "reason": str(exc)}) from None
    if size > MAX_FORM_BYTES:
        raise InvalidInput(N_("%(what)s is larger than %(limit)s bytes"), params={**named, "limit": MAX_FORM_BYTES})
    bad_keys = sorted(str(k) for k in data if not isinstance(k, str) or k.startswith("_") or not k.isidentifier()
                      or keyword.iskeyword(k) or k in expressions.RESERVED_NAMES)
    if bad_keys:
        raise InvalidInput(N_("these names are not allowed in %(what)s: %(names)s"),
                           params={**named, "names": ", ".join(bad_keys)})
    return data


def validate_form(item: WorkItem, data: Any) -> dict[str, Any]:
    """Check submitted form data against the step's schema; refuse it whole, with every error."""
    variables = check_variables(data)
    if item.form_schema:
        issues = schema_issues(item.form_schema, variables)
        if issues:
            raise InvalidInput(N_("the form data does not match the step's form"), fields=issues)
    return variables


# Due first, undated last. Written NULLS LAST (not `due_at IS NULL, due_at`) so PostgreSQL reads the
# inbox index in order and stops after a page instead of sorting every open step of the entity.
INBOX_ORDER = (WorkItem.due_at.asc().nulls_last(), WorkItem.id)


def open_items(session: Session, *, entity: str | None = None, role: str | None = None,
               limit: int = 50, offset: int = 0) -> list[WorkItem]:
    query = select(WorkItem).where(WorkItem.status == OPEN)
    if entity is not None:
        query = query.where(WorkItem.assignee_entity == entity)
    if role is not None:
        query = query.where(WorkItem.assignee_role == role)
    query = query.order_by(*INBOX_ORDER).limit(limit).offset(offset)
    return list(session.scalars(query))
