"""The demo season: entities, one user per role, two meetings and ~200 directives in every state.

The season is played through the engine with the clock moved hour by hour from its first day to
now: directives are launched, entities acknowledge and deliver (some late, some never), officers
verify or return work, supervisors decide extensions, and the timer worker reminds and escalates.
What you see is what the engine did, not rows written by hand.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import feedback
from engine.bpmn import process_models
from engine.calendar import seasons
from engine.calendar.durations import RIYADH
from engine.directives import directives, meetings
from engine.directives.directives import Directive, NewDirective
from engine.foundation import clock
from engine.foundation.errors import Conflict, TansiqError
from engine.insight import obstacles
from engine.people import entities, users
from engine.storage.db import Database
from engine.work import instances, timers
from engine.work.work_items import OPEN, WorkItem

SEED = 1448
FATES = ("on_time", "on_time", "on_time", "late", "escalated", "escalated_twice", "extended", "extension_refused",
         "rework", "in_progress", "in_progress", "fresh", "draft", "cancelled")
STAFF = (  # username, role, full name
    ("admin", "admin", "مدير النظام"),
    ("secretariat", "secretariat", "سكرتارية لجنة الحج"),
    ("officer", "follow_up_officer", "مسؤول المتابعة"),
    ("supervisor", "supervisor", "المشرف"),
    ("leader", "leadership", "قيادة اللجنة"),
    ("viewer", "viewer", "مطّلع"),
)


@dataclass
class Credentials:
    username: str
    password: str
    role: str
    entity: str | None


def season_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("engine").joinpath("demo_data/season.json").read_text(encoding="utf-8"))
    return data


def is_seeded(db: Database) -> bool:
    with db.reading() as session:
        return session.execute(select(func.count()).select_from(entities.Entity)).scalar_one() > 0


def seed(db: Database, shipped_models: Path, *, days: int = 21, per_template: int = 8,
         progress: Callable[[int, int], None] | None = None) -> list[Credentials]:
    """Create and play the demo season up to now; returns the credentials it created."""
    data = season_data()
    wall_now = clock.now()
    start = (wall_now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    rng = random.Random(SEED)
    clock.set_now(start)
    try:
        credentials = _setup(db, data, shipped_models, start, wall_now, rng)
        plan = _plan(data, rng, per_template, start, wall_now)
        _play(db, plan, rng, start, wall_now, progress)
        with db.transaction() as session:  # pilgrims' feedback over the season so far (the clock is now)
            feedback.seed_demo(session, season_data()["feedback"], start, wall_now, rng)
    finally:
        clock.set_now(None)
    return credentials


def _setup(db: Database, data: dict[str, Any], shipped_models: Path, start: datetime, wall_now: datetime,
           rng: random.Random) -> list[Credentials]:
    credentials = []
    with db.transaction() as session:
        process_models.deploy_directory(session, shipped_models, "demo")
        local_today = wall_now.astimezone(RIYADH).date()
        season = seasons.create_season(session, 1448, start.astimezone(RIYADH).date(),
                                       local_today + timedelta(days=60), actor="demo")
        for entity in data["entities"]:
            entities.create_entity(session, entity["code"], entity["name_ar"], entity["name_en"], entity["kind"],
                                   email=f"{entity['code']}@example.org", actor="demo")
        for username, role, full_name in STAFF:
            credentials.append(_user(session, username, role, full_name, None))
        for entity in data["entities"]:
            credentials.append(_user(session, f"{entity['code']}.user", "entity_user",
                                     f"{entity['name_ar']} — مستخدم", entity["code"]))
        service_entities = [e["code"] for e in data["entities"] if e["kind"] == "service"]
        for offset, meeting in zip((days_ago(start, 0), days_ago(start, -10)), data["meetings"], strict=False):
            meetings.create_meeting(session, season.id, meeting["number"], meeting["title_ar"], offset, "secretariat",
                                    title_en=meeting["title_en"], chair="أمير منطقة المدينة المنورة",
                                    attending=service_entities)
        # The season before, so that recurring obstacles and the seasonal report have something to compare.
        obstacles.seed_demo_previous_season(session, data, 1447, date(2026, 4, 18), date(2026, 7, 16), rng)
    return credentials


def days_ago(start: datetime, offset_days: int) -> datetime:
    return start - timedelta(days=offset_days)


def _user(session: Session, username: str, role: str, full_name: str, entity: str | None) -> Credentials:
    password = secrets.token_urlsafe(9)
    users.create_user(session, username, password, role, full_name=full_name, entity_code=entity,
                      email=f"{username}@example.org", language="ar", actor="demo")
    return Credentials(username, password, role, entity)


@dataclass
class Planned:
    at: datetime
    template: dict[str, Any]
    fate: str
    hours: int
    meeting_number: int | None


def _plan(data: dict[str, Any], rng: random.Random, per_template: int, start: datetime,
          wall_now: datetime) -> list[Planned]:
    span_hours = int((wall_now - start).total_seconds() // 3600)
    planned = []
    for template in data["directives"]:
        for _ in range(per_template):
            fate = rng.choice(FATES)
            if fate == "fresh":
                at = wall_now - timedelta(hours=rng.randint(1, 30))
            else:
                at = start + timedelta(hours=rng.randint(1, max(2, span_hours - 100)))
            hours = {"urgent": rng.choice((6, 12, 24))}.get(template["priority"], rng.choice((48, 72, 96, 120)))
            meeting = rng.choice((1, 2)) if template["kind"] == "recommendation" else None
            planned.append(Planned(at.replace(minute=0, second=0, microsecond=0), template, fate, hours, meeting))
    return sorted(planned, key=lambda p: p.at)


def _play(db: Database, plan: list[Planned], rng: random.Random, start: datetime, wall_now: datetime,
          progress: Callable[[int, int], None] | None) -> None:
    actors = _Actors(db, rng)
    moment, total, index = start, int((wall_now - start).total_seconds() // 3600) + 1, 0
    for step in range(total):
        clock.set_now(moment)
        while index < len(plan) and plan[index].at <= moment:
            actors.fates[_register(db, plan[index])] = plan[index]
            index += 1
        timers.run_until_idle(db)
        actors.act()
        if progress:
            progress(step + 1, total)
        moment += timedelta(hours=1)
    clock.set_now(wall_now)
    timers.run_until_idle(db)


def _register(db: Database, planned: Planned) -> int:
    template = planned.template
    with db.transaction() as session:
        meeting_id = None
        if planned.meeting_number is not None:
            meeting_id = session.scalar(select(meetings.Meeting.id).where(
                meetings.Meeting.number == planned.meeting_number))
        new = NewDirective(
            title=template["title_ar"], title_en=template["title_en"], body=template.get("body_ar"),
            kind=template["kind"], responsible_entity=template["responsible"] or directives.ALL_ENTITIES,
            deadline=f"PT{planned.hours}H",
            track=template["track"], programme_track=template["programme_track"], priority=template["priority"],
            supporting_entities=list(template["supporting"]), tags=list(template["tags"]), meeting_id=meeting_id,
            source=f"محضر الاجتماع {planned.meeting_number}" if planned.meeting_number else "سكرتارية لجنة الحج",
        )
        return directives.create(session, new, "secretariat", launch_now=planned.fate != "draft").id


Action = Callable[[Session], Any]


class _Actors:
    """The people of the demo: what each does next depends on the fate drawn for the directive."""

    def __init__(self, db: Database, rng: random.Random) -> None:
        self.db, self.rng = db, rng
        self.fates: dict[int, Planned] = {}
        self.returned: set[int] = set()
        self.asked_extension: set[int] = set()

    def act(self) -> None:
        now = clock.now()
        with self.db.reading() as session:
            rows = session.execute(
                select(WorkItem, Directive.id, Directive.deadline_at, Directive.launched_at)
                .join(Directive, Directive.instance_id == WorkItem.instance_id)
                .where(WorkItem.status == OPEN)
            ).all()
        for item, directive_id, deadline, launched in rows:
            planned = self.fates.get(directive_id)
            if planned is None or launched is None:  # a directive with open steps was launched
                continue
            action = self.decide(planned.fate, item, deadline, launched, now)
            if action is not None:
                _attempt(self.db, action)

    def decide(self, fate: str, item: WorkItem, deadline: datetime, launched: datetime,
               now: datetime) -> Action | None:
        age_hours = (now - launched).total_seconds() / 3600
        share = age_hours / max(1.0, (deadline - launched).total_seconds() / 3600)
        element, actor = item.element_id, _actor_for(item)
        if fate == "cancelled" and age_hours >= 3:
            return lambda s: directives.cancel(s, _directive_of(s, item).id, "secretariat",
                                               "أُلغي لتكراره مع توجيه سابق")
        if fate in ("escalated", "escalated_twice") and element in ("acknowledge", "execute", "contribute"):
            if fate == "escalated" and element == "acknowledge" and age_hours >= 2:
                return _complete(item, actor, {})
            return None
        if element == "acknowledge" and age_hours >= self.rng.uniform(0.5, 4):
            return _complete(item, actor, {})
        if element == "execute":
            return self._execute(fate, item, actor, deadline, share)
        if element == "contribute" and share >= 0.4 and fate not in ("in_progress", "fresh"):
            return _complete(item, actor, {"summary": "أنجزت الجهة المساندة الجزء المطلوب منها", "evidence": []})
        if element == "consolidate" and share >= 0.7 and fate not in ("in_progress", "fresh"):
            return _complete(item, actor, {"summary": "تم توحيد مساهمات الجهات ورفع التقرير", "evidence": []})
        if element == "verify" and self.rng.random() < 0.5:
            return self._verify(fate, item)
        if element == "review_extension" and self.rng.random() < 0.6:
            approved = fate != "extension_refused"
            note = "تمت الموافقة على التمديد" if approved else "لا يمكن التمديد لارتباط المهمة بوصول الحجاج"
            return _complete(item, "supervisor", {"approved": approved, "note": note})
        if element == "supervisor_decision" and self.rng.random() < 0.3:
            return _complete(item, "supervisor", {})
        return None

    def _execute(self, fate: str, item: WorkItem, actor: str, deadline: datetime, share: float) -> Action | None:
        if fate in ("extended", "extension_refused") and share >= 0.5 and item.instance_id not in self.asked_extension:
            self.asked_extension.add(item.instance_id)
            hours = 48 if fate == "extended" else 24
            return _extension(item, deadline + timedelta(hours=hours))
        due_share = {"late": 1.3, "in_progress": 9.0, "fresh": 9.0}.get(fate, 0.7)
        if share >= due_share:
            return _complete(item, actor, {"summary": "تم التنفيذ ورُفعت الشواهد إلى غرفة التنسيق والعمليات",
                                           "evidence": []})
        return None

    def _verify(self, fate: str, item: WorkItem) -> Action:
        if fate == "rework" and item.instance_id not in self.returned:
            self.returned.add(item.instance_id)
            reason = "الشواهد غير مكتملة، يرجى إرفاق محضر المعاينة"
            return _complete(item, "officer", {"accepted": False, "reason": reason})
        return _complete(item, "officer", {"accepted": True, "reason": ""})


def _extension(item: WorkItem, new_deadline: datetime) -> Action:
    return lambda s: directives.request_extension(s, _directive_of(s, item).id, _actor_for(item),
                                                  new_deadline.isoformat(), "تأخر توريد المستلزمات من المورد")


def _complete(item: WorkItem, actor: str, data: dict[str, Any]) -> Action:
    return lambda s: instances.complete_task(s, item.id, data, actor)


def _directive_of(session: Session, item: WorkItem) -> Directive:
    directive = session.scalar(select(Directive).where(Directive.instance_id == item.instance_id))
    if directive is None:  # the demo acts on directives' steps only
        raise RuntimeError(f"step {item.id} belongs to no directive")
    return directive


def _actor_for(item: WorkItem) -> str:
    if item.assignee_entity:
        return f"{item.assignee_entity}.user"
    return {"follow_up_officer": "officer", "supervisor": "supervisor"}.get(item.assignee_role or "", "officer")


def _attempt(db: Database, action: Action) -> None:
    try:
        with db.transaction() as session:
            action(session)
    except (Conflict, TansiqError):
        pass  # the step moved on meanwhile (a timer, another actor): the demo simply carries on
