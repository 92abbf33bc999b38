"""The operations view over REST (administrators only; entity users are told it does not exist):
instances and their incidents, messages into waiting instances, and migrations between model versions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import CurrentUser, State, operator
from api.problems import documented
from api.schemas.common import MAX_ID, Page
from api.schemas.operations import (
    InstanceDetail,
    InstanceMigrationOut,
    InstanceOut,
    MessageOut,
    MessageRequest,
    MigrationOut,
    MigrationRequest,
    OpenStepOut,
    RetryRequest,
    VersionCountOut,
    WaitingTaskOut,
)
from api.views import audit_out
from engine.bpmn import process_models
from engine.directives.directives import Directive
from engine.foundation.errors import Sentence
from engine.storage import audit
from engine.work import incidents, instance_migration, instances, messages, work_items
from engine.work.instances import InstanceFilter, ProcessInstance

router = APIRouter(tags=["operations"])
InstanceId = Annotated[int, Path(ge=1, le=MAX_ID)]
Key = Annotated[str, Path(min_length=1, max_length=200)]
Version = Annotated[int, Path(ge=1, le=2_147_483_647)]
Operator = Annotated[CurrentUser, operator()]
OPERATOR_ERRORS = (401, 403, 404, 422, 503)


def directive_ids(session: Session, instance_ids: list[int]) -> dict[int, int]:
    if not instance_ids:
        return {}
    rows = session.execute(select(Directive.instance_id, Directive.id).where(Directive.instance_id.in_(instance_ids)))
    return {instance_id: directive_id for instance_id, directive_id in rows if instance_id is not None}


def instance_out(instance: ProcessInstance, directive_id: int | None) -> InstanceOut:
    return InstanceOut(
        id=instance.id, model=instance.model.key, version=instance.model.version, business_key=instance.business_key,
        status=instance.status, business_status=instance.business_status, started_at=instance.started_at,
        started_by=instance.started_by, updated_at=instance.updated_at, ended_at=instance.ended_at,
        next_timer_at=instance.next_timer_at, incident_element=instance.incident_element,
        incident_message=instance.incident_message, incident_at=instance.incident_at, directive_id=directive_id,
    )


def instances_out(session: Session, rows: list[ProcessInstance]) -> list[InstanceOut]:
    linked = directive_ids(session, [row.id for row in rows])
    return [instance_out(row, linked.get(row.id)) for row in rows]


def instance_detail(session: Session, instance_id: int) -> InstanceDetail:
    instance = instances.get_instance(session, instance_id)
    runtime = instances.load_runtime(instance)
    states = runtime.element_states()
    steps = session.scalars(select(work_items.WorkItem).where(work_items.WorkItem.instance_id == instance_id,
                                                              work_items.WorkItem.status == work_items.OPEN)
                            .order_by(work_items.WorkItem.id))
    base = instance_out(instance, directive_ids(session, [instance_id]).get(instance_id))
    return InstanceDetail(
        **base.model_dump(), done=states.done, current=states.current,
        tokens=[WaitingTaskOut(**vars(task)) for task in runtime.waiting_tasks()],
        waiting_messages=runtime.waiting_messages(),
        open_steps=[OpenStepOut(id=s.id, element_id=s.element_id, name=s.name, assignee_entity=s.assignee_entity,
                                assignee_role=s.assignee_role, due_at=s.due_at) for s in steps],
        variables=runtime.variables(),
        history=[audit_out(e) for e in audit.timeline(session, instances.subject(instance_id))],
    )


@router.get("/instances", response_model=Page[InstanceOut], responses=documented(*OPERATOR_ERRORS))
def list_instances(
    state: State, caller: Operator,
    model: Annotated[str | None, Query(min_length=1, max_length=200, description="A model key.")] = None,
    version: Annotated[int | None, Query(ge=1, le=2_147_483_647, description="With `model`.")] = None,
    status: Literal["running", "completed", "cancelled", "incident"] | None = None,
    business_key: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    directive: Annotated[int | None, Query(ge=1, le=MAX_ID, description="A directive id.")] = None,
    started_from: Annotated[datetime | None, Query(description="Started at or after (ISO 8601).")] = None,
    started_until: Annotated[datetime | None, Query(description="Started before (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[InstanceOut]:
    """Instances, newest first, filtered by model, version, status, business key, directive, start."""
    where = InstanceFilter(model=model, version=version, status=status, business_key=business_key,
                           directive_id=directive, started_from=started_from, started_until=started_until)
    with state.db.reading() as session:
        rows = instances.list_instances(session, where, limit=limit, offset=offset)
        return Page(items=instances_out(session, rows), total=instances.count_instances(session, where),
                    limit=limit, offset=offset)


@router.get("/instances/{instance_id}", operation_id="getInstance",
            response_model=InstanceDetail, responses=documented(*OPERATOR_ERRORS))
def read_instance(instance_id: InstanceId, state: State, caller: Operator) -> InstanceDetail:
    """One instance: where its tokens are, what it passed, its variables, its open steps and its history."""
    with state.db.reading() as session:
        return instance_detail(session, instance_id)


@router.post("/instances/{instance_id}/retry", operation_id="retryInstance", response_model=InstanceDetail,
             responses=documented(*OPERATOR_ERRORS, 409))
def retry(instance_id: InstanceId, state: State, caller: Operator, body: RetryRequest | None = None) -> InstanceDetail:
    """Retry an incident, as it is or with corrected variables. With variables, a retry that fails again keeps
    nothing and answers 409 (`incident-persists`) with the new failure."""
    with state.db.transaction() as session:
        if body is not None and body.variables is not None:
            incidents.retry_with_variables(session, instance_id, body.variables, caller.username)
        else:
            instances.retry(session, instance_id, caller.username)
    with state.db.reading() as session:
        return instance_detail(session, instance_id)


@router.post("/instances/{instance_id}/cancel", operation_id="cancelInstance", response_model=InstanceDetail,
             responses=documented(*OPERATOR_ERRORS, 409))
def cancel(instance_id: InstanceId, state: State, caller: Operator) -> InstanceDetail:
    """End an instance: its open steps are withdrawn and its timers stop."""
    with state.db.transaction() as session:
        instances.cancel(session, instance_id, caller.username)
    with state.db.reading() as session:
        return instance_detail(session, instance_id)


@router.get("/incidents", response_model=Page[InstanceOut], responses=documented(*OPERATOR_ERRORS))
def list_incidents(state: State, caller: Operator, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                   offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Page[InstanceOut]:
    """Instances in incident, the longest-waiting first."""
    with state.db.reading() as session:
        rows = incidents.list_incidents(session, limit=limit, offset=offset)
        return Page(items=instances_out(session, rows), total=incidents.count_incidents(session),
                    limit=limit, offset=offset)


@router.post("/messages", response_model=MessageOut, responses=documented(*OPERATOR_ERRORS, 409))
def send_message(body: MessageRequest, state: State, caller: Operator) -> MessageOut:
    """Deliver a message to the running instance waiting for it (404 when none waits, 409 when several do and
    `all` is not set)."""
    with state.db.transaction() as session:
        delivered = messages.deliver(session, body.name, body.payload, caller.username,
                                     business_key=body.business_key, correlation=body.correlation, to_all=body.all)
        ids = [instance.id for instance in delivered]
    with state.db.reading() as session:
        rows = [instances.get_instance(session, instance_id) for instance_id in ids]
        return MessageOut(delivered=instances_out(session, rows))


@router.get("/process-models/{key}/instance-counts", operation_id="countInstancesByVersion",
            response_model=list[VersionCountOut],
            responses=documented(*OPERATOR_ERRORS))
def instance_counts(key: Key, state: State, caller: Operator) -> list[VersionCountOut]:
    """Running and in-incident instances of each version of a model."""
    with state.db.reading() as session:
        versions = process_models.list_versions(session, key)
        if not versions:
            process_models.get_model(session, key)  # 404
        counts = instance_migration.counts_by_version(session, key)
    return [VersionCountOut(version=v.version, **counts.get(v.version, {"running": 0, "incident": 0}))
            for v in versions]


@router.post("/process-models/{key}/versions/{version}/migrations", operation_id="migrateInstances",
             response_model=MigrationOut,
             responses=documented(*OPERATOR_ERRORS, 409))
def migrate(key: Key, version: Version, body: MigrationRequest, state: State, caller: Operator) -> MigrationOut:
    """Move the running (and in-incident) instances of a version to a newer one. `dry_run` (the default) says,
    instance by instance, what moves and what cannot; otherwise each instance moves whole or not at all."""
    planned: list[tuple[instance_migration.InstancePlan, bool, Sentence | None]]
    with state.db.reading() as session:
        diff = _diff(session, key, version, body.to_version)
        if body.dry_run:
            planned = [(plan, False, None) for plan in instance_migration.plan_many(
                session, key, version, body.to_version, body.instance_ids)]
    if not body.dry_run:
        with state.db.transaction() as session:
            planned = [(o.plan, o.migrated, None if o.migrated else o.message) for o in instance_migration.migrate_many(
                session, key, version, body.to_version, caller.username, body.instance_ids)]
    rows = [InstanceMigrationOut(
        instance_id=plan.instance_id, business_key=plan.business_key, possible=plan.possible, migrated=migrated,
        moves=[WaitingTaskOut(**vars(task)) for task in (plan.plan.moves if plan.plan else [])],
        reasons=[*plan.reasons] if plan.reasons else [refused] if refused else [],
    ) for plan, migrated, refused in planned]
    return MigrationOut(dry_run=body.dry_run, from_version=version, to_version=body.to_version, **diff,
                        instances=rows, migrated=sum(r.migrated for r in rows),
                        refused=sum(not r.possible or (not body.dry_run and not r.migrated) for r in rows))


def _diff(session: Session, key: str, from_version: int, to_version: int) -> dict[str, list[str]]:
    summary = instance_migration.version_diff(session, key, from_version, to_version)
    return {"added": summary.added, "removed": summary.removed, "changed": summary.changed}
