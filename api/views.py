"""Engine rows to response bodies. Reads only columns already loaded (no workflow state), but for the open
steps a launch or a completion answers with (`open_steps_out`), which the engine keeps from the run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from api.schemas.admin import EntityOut, ProcessModelOut, SeasonOut, UserOut
from api.schemas.decisions import DecisionOut
from api.schemas.directives import (
    AuditEventOut,
    DirectiveOut,
    DirectiveSummary,
    EscalationOut,
    EvidenceOut,
    OpenStep,
    StepOut,
)
from api.schemas.tasks import TaskOut
from engine.bpmn.decision_tables import DecisionTable
from engine.bpmn.process_models import ProcessModel
from engine.calendar.seasons import Season
from engine.directives import access, directives
from engine.directives.access import Actor
from engine.directives.directives import Directive
from engine.directives.evidence import Evidence
from engine.foundation import clock
from engine.people.entities import Entity
from engine.people.users import User
from engine.storage.audit import AuditEvent
from engine.work import instances
from engine.work.escalations import Escalation
from engine.work.work_items import WorkItem


def entity_out(entity: Entity) -> EntityOut:
    return EntityOut(code=entity.code, name_ar=entity.name_ar, name_en=entity.name_en, kind=entity.kind,
                     email=entity.email, active=entity.active)


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, username=user.username, full_name=user.full_name, email=user.email, role=user.role,
                   entity=user.entity.code if user.entity else None, language=user.language, active=user.active,
                   created_at=user.created_at)


def season_out(season: Season) -> SeasonOut:
    return SeasonOut(hijri_year=season.hijri_year, name_ar=season.name_ar, name_en=season.name_en,
                     starts_on=season.starts_on, ends_on=season.ends_on, calendar_mode=season.calendar_mode,
                     holidays=list(season.holidays or []))


def model_out(model: ProcessModel) -> ProcessModelOut:
    return ProcessModelOut(key=model.key, version=model.version, name=model.name, name_ar=model.name_ar,
                           name_en=model.name_en, checksum=model.checksum, filename=model.filename,
                           element_count=model.element_count, deployed_at=model.deployed_at,
                           deployed_by=model.deployed_by)


def decision_out(decision: DecisionTable) -> DecisionOut:
    return DecisionOut(key=decision.key, version=decision.version, name=decision.name, checksum=decision.checksum,
                       filename=decision.filename, rule_count=decision.rule_count,
                       deployed_at=decision.deployed_at, deployed_by=decision.deployed_by)


def directive_summary(directive: Directive) -> DirectiveSummary:
    return DirectiveSummary(
        id=directive.id, reference=directive.reference, title=directive.title, title_en=directive.title_en,
        kind=directive.kind, priority=directive.priority, status=directive.status,
        responsible_entity=directive.responsible_entity.code, deadline_at=directive.deadline_at,
        overdue=directives.overdue(directive),
    )


_SEASON_YEARS = select(Season.id, Season.hijri_year)


def season_years(session: Session) -> dict[int, int]:
    return dict(session.execute(_SEASON_YEARS).all())


def season_year_of(session: Session, directive: Directive) -> dict[int, int]:
    """`season_years` for one directive: no query when the directive has its season (a new one has)."""
    season = directive.__dict__.get("season") or session.get(Season, directive.season_id)
    return {directive.season_id: season.hijri_year} if season is not None else {}


def directive_out(directive: Directive, years: dict[int, int]) -> DirectiveOut:
    return DirectiveOut(
        **directive_summary(directive).model_dump(),
        season=years.get(directive.season_id, 0), meeting_id=directive.meeting_id, body=directive.body,
        source=directive.source, issued_on=directive.issued_on, track=directive.track,
        programme_track=directive.programme_track,
        supporting_entities=[e.code for e in directive.supporting_entities],
        tags=[t.tag for t in directive.tags], process_model_key=directive.process_model_key,
        created_by=directive.created_by, created_at=directive.created_at, launched_by=directive.launched_by,
        launched_at=directive.launched_at, ended_at=directive.ended_at,
        current_steps=list(directive.current_steps or []),
        current_due_at=directive.current_due_at, escalation_level=directive.escalation_level or 0,
        extension_count=directive.extension_count or 0, completed_on_time=directive.completed_on_time,
        incident=directive.incident,
    )


def _step_fields(item: WorkItem) -> dict:
    return {
        "id": item.id, "element_id": item.element_id, "name": item.name, "name_ar": item.name_ar,
        "name_en": item.name_en, "assignee_role": item.assignee_role, "assignee_entity": item.assignee_entity,
        "due_at": item.due_at, "overdue": item.overdue, "status": item.status, "claimed_by": item.claimed_by,
        "created_at": item.created_at, "completed_at": item.completed_at, "completed_by": item.completed_by,
        "progress_percent": item.progress_percent, "progress_note": item.progress_note,
        "progress_at": item.progress_at,
    }


def step_out(item: WorkItem) -> StepOut:
    return StepOut(**_step_fields(item))


def task_out(item: WorkItem, directive: Directive | None) -> TaskOut:
    return TaskOut(**_step_fields(item), instance_id=item.instance_id,
                   directive=directive_summary(directive) if directive else None)


def open_step_out(item: WorkItem, can_act: bool) -> OpenStep:
    return OpenStep(**_step_fields(item), instance_id=item.instance_id, form_schema=item.form_schema, can_act=can_act)


def open_steps_out(session: Session, caller: Actor, instance_id: int | None) -> list[OpenStep]:
    """The instance's open steps for a caller who may see its directive (so every step of it), each saying
    whether the caller may work it."""
    if instance_id is None:
        return []
    code = access.entity_code(session, caller)
    return [open_step_out(item, access.can_act_on_item(caller, item, code))
            for item in instances.open_steps(session, instance_id)]


def evidence_out(row: Evidence) -> EvidenceOut:
    return EvidenceOut(id=row.id, filename=row.filename, content_type=row.content_type, size=row.size,
                       sha256=row.sha256, uploaded_by=row.uploaded_by, uploaded_at=row.uploaded_at,
                       directive_id=row.directive_id, work_item_id=row.work_item_id,
                       download_url=f"/api/v1/evidence/{row.id}")


def escalation_out(escalation: Escalation, directive: Directive | None, now: datetime | None = None) -> EscalationOut:
    moment = now or clock.now()
    end = escalation.resolved_at or moment
    return EscalationOut(
        id=escalation.id, level=escalation.level, reason=escalation.reason, target_role=escalation.target_role,
        entity=escalation.entity, element_id=escalation.element_id, status=escalation.status, note=escalation.note,
        raised_at=escalation.raised_at, age_seconds=max(0, int((end - escalation.raised_at).total_seconds())),
        resolved_action=escalation.resolved_action, resolution_note=escalation.resolution_note,
        resolved_by=escalation.resolved_by, resolved_at=escalation.resolved_at,
        directive=directive_summary(directive) if directive else None,
    )


def audit_out(event: AuditEvent) -> AuditEventOut:
    payload = event.payload if isinstance(event.payload, dict) else {"value": event.payload}
    return AuditEventOut(id=event.id, at=event.at, actor=event.actor, action=event.action, subject=event.subject,
                         payload=payload)


def page_total(session: Session, query: Select[Any], returned: int, limit: int, offset: int) -> int:
    """How many rows `query` has in all; counted only when the page cannot tell (a full page, or past the end)."""
    if 0 < returned < limit or (offset == 0 and returned == 0):
        return offset + returned
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0
