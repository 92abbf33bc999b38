"""A season's volume for the inbox and the escalation board, written in a few statements: `count` directives of
one entity with the demo season's titles (numbered), each with an open step for the entity and an open
escalation, on instances that have already ended (read-only rows: acting on one is refused, as it would be
on a directive whose process is over). Fresh directives for writes come from the engine."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from engine.bpmn.process_models import ProcessModel
from engine.calendar.seasons import Season
from engine.directives.directives import ACTIVE, Directive, DirectiveAddressee
from engine.foundation import clock
from engine.people.entities import Entity
from engine.storage.db import Database
from engine.work.escalations import Escalation
from engine.work.instances import ProcessInstance
from engine.work.work_items import OPEN, WorkItem

DEMO = Path("/work/shared/demo/season.json")
FALLBACK_TITLES = [("رفع جاهزية مراكز الاستقبال على طريق الهجرة قبل وصول طلائع الحجاج",
                    "Raise the readiness of the reception centres on the Hijrah road before the first pilgrims arrive"),
                   ("صيانة أجهزة التكييف في مراكز الاستقبال قبل بدء الموسم",
                    "Service the air conditioning in the reception centres before the season starts"),
                   ("رفع تقرير يومي بنسب إشغال المساكن", "Report the housing occupancy rates daily")]


def demo_titles() -> list[tuple[str, str]]:
    """The demo season's directive titles (Arabic, English), as the committee writes them."""
    if not DEMO.exists():
        return FALLBACK_TITLES
    return [(d["title_ar"], d["title_en"]) for d in json.loads(DEMO.read_text(encoding="utf-8"))["directives"]]


@dataclass(frozen=True)
class Volume:
    directive_ids: list[int]
    escalation_ids: list[int]
    step_ids: list[int]
    titles: list[tuple[str, str]]  # each directive's (Arabic, English) title, in the order of directive_ids


def seed_volume(db: Database, entity_code: str, count: int, *, first_number: int = 5001) -> Volume:
    """`count` directives of `entity_code`, each with one open step (due from 5 hours ago onwards, an hour
    apart) and one open escalation (levels 1-3, raised from 1 to 100 hours ago)."""
    now = clock.now()
    titles = demo_titles()
    with db.transaction() as session:
        entity_id = session.scalar(select(Entity.id).where(Entity.code == entity_code))
        season = session.scalar(select(Season).order_by(Season.hijri_year.desc()).limit(1))
        model_id = session.scalar(select(ProcessModel.id).order_by(ProcessModel.id).limit(1))
        instance_ids = _inserted(session, ProcessInstance, [
            {"model_id": model_id, "business_key": f"volume-{n}", "status": "completed", "state": {},
             "started_by": "secretariat", "started_at": now - timedelta(days=2), "updated_at": now,
             "ended_at": now, "lock_version": 1} for n in range(count)])
        picked = [titles[n % len(titles)] for n in range(count)]
        directive_rows = [_directive_row(season, entity_id, instance_ids[n], picked[n], first_number + n, n, now)
                          for n in range(count)]
        directive_ids = _inserted(session, Directive, directive_rows)
        session.execute(insert(DirectiveAddressee), [
            {"entity_id": entity_id, "directive_id": d, "created_at": row["created_at"]}
            for d, row in zip(directive_ids, directive_rows, strict=True)])
        step_ids = _inserted(session, WorkItem, [
            {"instance_id": instance_ids[n], "task_id": str(uuid.uuid4()), "element_id": "execute",
             "name": "Execute the directive", "name_ar": "تنفيذ التوجيه", "name_en": "Execute the directive",
             "lane": "entity", "assignee_role": "entity_user", "assignee_entity": entity_code,
             "due_at": now + timedelta(hours=n - 5), "status": OPEN,
             "created_at": now - timedelta(hours=(n * 7) % 90 + 1)} for n in range(count)])
        escalation_ids = _inserted(session, Escalation, [
            {"instance_id": instance_ids[n], "source_key": f"volume-{n}", "element_id": "execute",
             "level": directive_rows[n]["escalation_level"], "reason": "overdue", "target_role": "supervisor",
             "entity": entity_code, "directive_id": directive_ids[n], "status": "open",
             "raised_at": now - timedelta(hours=(n * 13) % 100 + 1)} for n in range(count)])
    return Volume(directive_ids, escalation_ids, step_ids, picked)


def _directive_row(season: Season, entity_id: int, instance_id: int, title: tuple[str, str], number: int, n: int,
                   now: Any) -> dict[str, Any]:
    return {"reference": f"{season.hijri_year}/{number:05d}", "season_id": season.id, "kind": "directive",
            "title": title[0], "title_en": title[1], "issued_on": now.date(), "track": "business",
            "programme_track": "tansiq", "priority": "normal", "responsible_entity_id": entity_id,
            "deadline_at": now + timedelta(hours=(n * 5) % 72 - 24), "process_model_key": "directive_standard",
            "status": ACTIVE, "instance_id": instance_id, "created_by": "secretariat",
            "created_at": now - timedelta(days=1, minutes=n), "launched_by": "secretariat",
            "launched_at": now - timedelta(days=1), "current_steps": ["execute"], "escalation_level": n % 3 + 1,
            "extension_count": 0}


def _inserted(session: Any, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert the rows in one statement (executemany), returning their new ids in the rows' order."""
    result = session.execute(insert(model).returning(model.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())
