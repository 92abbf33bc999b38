"""Small shortcuts the engine tests share."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select

from engine.bpmn import process_models
from engine.calendar import seasons
from engine.people import entities
from engine.storage.db import Database
from engine.work import instances
from engine.work.escalations import Escalation
from engine.work.instances import ProcessInstance
from engine.work.notifications import Notification
from engine.work.work_items import OPEN, WorkItem
from tests.conftest import deploy_shipped, read_model  # noqa: F401 (read_model: tests import it from here)


def deploy(db: Database, *names: str) -> list[process_models.ProcessModel]:
    """Test models (tests/bpmn) or shipped ones (bpmn/, after the shipped decision tables)."""
    with db.transaction() as session:
        return [deploy_shipped(session, n).model for n in names]


def season_1447(db: Database, *entity_names: tuple[str, str, str]) -> None:
    """The 1447 season (2026-04-18 to 2026-07-16) and these entities (code, Arabic name, English name)."""
    with db.transaction() as session:
        seasons.create_season(session, 1447, date(2026, 4, 18), date(2026, 7, 16))
        for code, name_ar, name_en in entity_names:
            entities.create_entity(session, code, name_ar, name_en)


def register_entities(db: Database, *codes: str) -> None:
    """Entities an escalation may name (an escalation to an unknown entity is an incident)."""
    with db.transaction() as session:
        for code in codes:
            entities.create_entity(session, code, f"جهة {code}", code.title())


def start(db: Database, key: str, data: dict[str, Any] | None = None, actor: str = "secretariat") -> int:
    with db.transaction() as session:
        return instances.start(session, key, data or {}, actor).id


def instance(db: Database, instance_id: int) -> ProcessInstance:
    with db.reading() as session:
        return instances.get_instance(session, instance_id)


def open_items(db: Database, instance_id: int) -> list[WorkItem]:
    with db.reading() as session:
        return list(session.scalars(
            select(WorkItem).where(WorkItem.instance_id == instance_id, WorkItem.status == OPEN).order_by(WorkItem.id)
        ))


def the_open_item(db: Database, instance_id: int, element_id: str) -> WorkItem:
    items = [i for i in open_items(db, instance_id) if i.element_id == element_id]
    found = [i.element_id for i in open_items(db, instance_id)]
    assert len(items) == 1, f"expected one open {element_id}, found {found}"
    return items[0]


def complete(db: Database, item_id: int, data: dict[str, Any] | None = None, actor: str = "user") -> ProcessInstance:
    with db.transaction() as session:
        return instances.complete_task(session, item_id, data or {}, actor)


def count(db: Database, model: type, **where: Any) -> int:
    with db.reading() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.scalar(query)


def escalations(db: Database, instance_id: int) -> list[Escalation]:
    with db.reading() as session:
        return list(session.scalars(select(Escalation).where(Escalation.instance_id == instance_id)
                                    .order_by(Escalation.id)))


def notifications(db: Database, instance_id: int) -> list[Notification]:
    with db.reading() as session:
        return list(session.scalars(select(Notification).where(Notification.instance_id == instance_id)
                                    .order_by(Notification.id)))
