"""Moving running instances to another version of their model (SpiffWorkflow's own diff and migration).

A dry run says, instance by instance, which tokens move and why an instance cannot: a token at an element
the new version does not have (or has as another kind of element) is refused, never dropped. Each instance
moves whole or not at all; open steps keep their row, assignee and due moment, waiting timers their due
moment, and every move is in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from engine.bpmn import bpmn_runtime, process_models
from engine.bpmn.bpmn_runtime import MigrationPlan, SpecChanges
from engine.bpmn.process_models import ProcessModel
from engine.foundation.errors import N_, Conflict, InvalidInput, Sentence, TansiqError
from engine.storage import audit
from engine.work import instances
from engine.work.instances import INCIDENT, RUNNING, ProcessInstance

MOVABLE = (RUNNING, INCIDENT)
MAX_BATCH = 1000


@dataclass(frozen=True)
class InstancePlan:
    instance_id: int
    business_key: str | None
    from_version: int
    plan: MigrationPlan | None
    refusal: Sentence | None = None

    @property
    def possible(self) -> bool:
        return self.refusal is None and self.plan is not None and self.plan.possible

    @property
    def reasons(self) -> list[Sentence]:
        return [self.refusal] if self.refusal else list(self.plan.refusals if self.plan else [])


@dataclass(frozen=True)
class Outcome:
    instance_id: int
    migrated: bool
    message: Sentence
    plan: InstancePlan


def plan(session: Session, instance_id: int, to_version: int) -> InstancePlan:
    """What migrating one instance would do; changes nothing."""
    instance = instances.get_instance(session, instance_id)
    return _plan(instance, _target(session, instance, to_version))


def plan_many(session: Session, key: str, from_version: int, to_version: int,
              instance_ids: list[int] | None = None) -> list[InstancePlan]:
    """The dry run for every movable instance of a version (or the chosen ones among them)."""
    _require_newer(from_version, to_version)
    source = process_models.get_model(session, key, from_version)
    target = process_models.get_model(session, key, to_version)
    changes = _changes(source, target)
    return [_plan(instance, target, changes) for instance in _instances_of(session, source, instance_ids)]


def migrate(session: Session, instance_id: int, to_version: int, actor: str,
            changes: SpecChanges | None = None) -> InstancePlan:
    """Move one instance to `to_version`; refused with nothing changed when a token would be lost."""
    instance = instances.lock(session, instance_id)
    target = _target(session, instance, to_version)
    refusal = _refusal(instance)
    if refusal is not None:
        raise Conflict(N_("instance %(instance)s cannot move to version %(version)s: %(reason)s"),
                       params={"instance": str(instance_id), "version": str(to_version), "reason": refusal})
    source = instance.model
    runtime = instances.load_runtime(instance)
    # It moves onto the target as deployed, with the decision table versions built into it (refused by the
    # runtime, before it changes anything, when a token has no counterpart).
    moved = runtime.migrate(process_models.compiled_model(target), changes)
    instances.save_runtime(session, instance, runtime, actor, model_id=target.id,
                           decision_versions=target.decision_versions)
    set_committed_value(instance, "model", target)
    audit.record(session, actor, "instance.migrated", instances.subject(instance_id), {
        "model": target.key, "from_version": source.version, "to_version": target.version,
        "moved": [f"{task.element_id} ({task.state})" for task in moved.moves],
    })
    return InstancePlan(instance.id, instance.business_key, source.version, moved)


def migrate_many(session: Session, key: str, from_version: int, to_version: int, actor: str,
                 instance_ids: list[int] | None = None) -> list[Outcome]:
    """Move every movable instance of a version (or the chosen ones), each whole or not at all; each outcome
    has the instance's plan (what moved, or why it could not)."""
    _require_newer(from_version, to_version)
    source = process_models.get_model(session, key, from_version)
    target = process_models.get_model(session, key, to_version)
    changes = _changes(source, target)
    outcomes = []
    for instance in _instances_of(session, source, instance_ids):
        mark = audit.mark(session)
        try:
            with session.begin_nested():
                moved = migrate(session, instance.id, to_version, actor, changes)
            outcomes.append(Outcome(instance.id, True, Sentence(N_("moved")), moved))
        except TansiqError as exc:
            audit.discard_since(session, mark)
            outcomes.append(Outcome(instance.id, False, Sentence.of(exc), _plan(instance, target, changes)))
    return outcomes


def _changes(source: ProcessModel, target: ProcessModel) -> SpecChanges:
    """The two versions compared once, for every instance that moves between them."""
    return bpmn_runtime.spec_changes(process_models.compiled_model(source), process_models.compiled_model(target))


def _require_newer(from_version: int, to_version: int) -> None:
    if to_version <= from_version:
        raise InvalidInput(N_("migrate to a version newer than %(from_version)s, not %(to_version)s"),
                           params={"from_version": str(from_version), "to_version": str(to_version)})


def _target(session: Session, instance: ProcessInstance, to_version: int) -> ProcessModel:
    target = process_models.get_model(session, instance.model.key, to_version)
    if target.version <= instance.model.version:
        raise InvalidInput(N_("instance %(instance)s is on version %(from_version)s: migrate it to a newer version, "
                              "not %(to_version)s"), params={"instance": str(instance.id),
                                                             "from_version": str(instance.model.version),
                                                             "to_version": str(to_version)})
    return target


def _refusal(instance: ProcessInstance) -> Sentence | None:
    if instance.status in MOVABLE:
        return None
    return Sentence(N_("the instance is %(status)s"), status=instances.status_word(instance.status))


def _plan(instance: ProcessInstance, target: ProcessModel, changes: SpecChanges | None = None) -> InstancePlan:
    refusal = _refusal(instance)
    if refusal is None and target.version <= instance.model.version:
        refusal = Sentence(N_("the instance is already on version %(version)s"), version=str(instance.model.version))
    if refusal is not None:
        return _instance_plan(instance, None, refusal)
    runtime = instances.load_runtime(instance)
    return _instance_plan(instance, runtime.plan_migration(process_models.compiled_model(target), changes))


def _instance_plan(instance: ProcessInstance, plan: MigrationPlan | None, refusal: Sentence | None = None
                   ) -> InstancePlan:
    return InstancePlan(instance.id, instance.business_key, instance.model.version, plan, refusal)


def _instances_of(session: Session, source: ProcessModel, instance_ids: list[int] | None) -> list[ProcessInstance]:
    query = select(ProcessInstance).where(ProcessInstance.model_id == source.id,
                                          ProcessInstance.status.in_(MOVABLE))
    if instance_ids is not None:
        if len(instance_ids) > MAX_BATCH:
            raise InvalidInput(N_("choose at most %(limit)s instances at a time"), params={"limit": MAX_BATCH})
        query = query.where(ProcessInstance.id.in_(instance_ids))
    return list(session.scalars(query.order_by(ProcessInstance.id).limit(MAX_BATCH)))


def counts_by_version(session: Session, key: str) -> dict[int, dict[str, int]]:
    """Running and in-incident instances of each version of a model."""
    rows = session.execute(
        select(ProcessModel.version, ProcessInstance.status, func.count())
        .join(ProcessInstance, ProcessInstance.model_id == ProcessModel.id)
        .where(ProcessModel.key == key, ProcessInstance.status.in_(MOVABLE))
        .group_by(ProcessModel.version, ProcessInstance.status)
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for version, status, count in rows:
        counts.setdefault(version, {RUNNING: 0, INCIDENT: 0})[status] = count
    return counts


def version_diff(session: Session, key: str, from_version: int, to_version: int) -> SpecChanges:
    """Elements a newer version adds, removes and changes (refused when `to_version` is not newer)."""
    _require_newer(from_version, to_version)
    return _changes(process_models.get_model(session, key, from_version),
                    process_models.get_model(session, key, to_version))
