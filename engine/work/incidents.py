"""Incidents: instances stopped by a failing step, waiting for an administrator.

An incident keeps the instance at its last clean point. The administrator retries it as it is, or corrects
the variables the failing step read and retries: the correction and the retry are one change, kept only if
the retry gets past the failure, and the audit trail holds each corrected variable before and after.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.foundation.errors import N_, Conflict, InvalidInput
from engine.storage import audit
from engine.work import instances, work_items
from engine.work.instances import INCIDENT, ProcessInstance

_MISSING = object()


class StillFailing(Conflict):
    """The retry with the corrected variables failed again; nothing was kept."""

    code = "incident-persists"


def list_incidents(session: Session, *, limit: int = 50, offset: int = 0) -> list[ProcessInstance]:
    """Instances in incident, oldest incident first: the longest-waiting is dealt with first."""
    return list(session.scalars(
        select(ProcessInstance).where(ProcessInstance.status == INCIDENT)
        .order_by(ProcessInstance.incident_at, ProcessInstance.id).limit(limit).offset(offset)
    ))


def count_incidents(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ProcessInstance)
                          .where(ProcessInstance.status == INCIDENT)) or 0


def variables(session: Session, instance_id: int) -> dict[str, Any]:
    """The variables where the instance's tokens are: what a retry would run with."""
    return instances.load_runtime(instances.get_instance(session, instance_id)).variables()


def retry_with_variables(session: Session, instance_id: int, corrected: Any, actor: str) -> ProcessInstance:
    """Replace the variables with `corrected` (the whole set: a name left out is removed) and retry.

    Refused with nothing changed when the instance is not in incident, when the variables are not what a
    step's form accepts, or when the retry fails again (StillFailing, with the new message).
    """
    instance = instances.lock(session, instance_id)
    if instance.status != INCIDENT:
        raise instances.not_in_incident(instance)
    work_items.check_variables(corrected, N_("the corrected variables"))
    runtime = instances.load_runtime(instance)
    before = runtime.variables()
    changed = {name: value for name, value in corrected.items() if before.get(name, _MISSING) != value}
    removed = sorted(name for name in before if name not in corrected)
    if not changed and not removed:
        raise InvalidInput(N_("no variable was changed: retry the incident as it is instead"))
    _check_against_forms(session, instance_id, changed)
    runtime.change_variables(changed, removed)
    instances.save_runtime(session, instance, runtime, actor)
    audit.record(session, actor, "instance.variables_corrected", instances.subject(instance_id), {
        "element": instance.incident_element,
        "before": {name: before[name] for name in sorted([*changed, *removed]) if name in before},
        "after": {name: changed[name] for name in sorted(changed)},
        "removed": removed,
    })
    instances.retry(session, instance_id, actor)
    if instance.status == INCIDENT:
        raise StillFailing(N_("the retry failed again, nothing was kept: %(incident)s"),
                           params={"incident": instance.incident_message}, element_id=instance.incident_element)
    return instance


def _check_against_forms(session: Session, instance_id: int, changed: dict[str, Any]) -> None:
    """A variable that a step's form defines must still be what that form accepts."""
    schemas = session.scalars(select(work_items.WorkItem.form_schema).where(
        work_items.WorkItem.instance_id == instance_id, work_items.WorkItem.form_schema.is_not(None)))
    details: list[dict[str, str]] = []
    for schema in schemas:
        properties = (schema or {}).get("properties") or {}
        for name in sorted(set(properties) & set(changed)):
            validator = jsonschema.Draft202012Validator(properties[name])
            details.extend({"field": name, "message": error.message} for error in validator.iter_errors(changed[name]))
    if details:
        unique = [dict(pair) for pair in dict.fromkeys(tuple(d.items()) for d in details)]
        raise InvalidInput(N_("a corrected variable is not what its step's form accepts"), details=unique)
