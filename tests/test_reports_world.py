"""A small world for the report tests, played through the engine with the clock moved (no rows written
by hand): two seasons, three entities, directives completed on time and late, escalated, cancelled,
left as drafts and left open. The expected figures in the report tests are worked out by hand from
the timeline below, not by the report code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select

from engine.bpmn import process_models
from engine.calendar import seasons
from engine.directives import directives, supervision
from engine.directives.directives import NewDirective
from engine.foundation import clock
from engine.people import entities
from engine.storage.db import Database
from engine.work import instances, timers
from engine.work.escalations import Escalation
from engine.work.work_items import OPEN, WorkItem
from tests.conftest import read_model


def use_reports_dir(monkeypatch, folder):
    """Archive into `folder` (TANSIQ_REPORTS_DIR) for the rest of a test."""
    from engine.reports.settings import get_report_settings

    monkeypatch.setenv("TANSIQ_REPORTS_DIR", str(folder))
    get_report_settings.cache_clear()
    return folder


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


ENTITIES = (("housing", "الإسكان", "Housing"), ("transport", "النقل", "Transport"),
            ("civil_defence", "الدفاع المدني", "Civil Defence"))

# name: (season, entity, kind, track, programme track, tags, deadline from creation, launched?)
DIRECTIVES = {
    # previous season, Hajj 1446
    "P1": (1446, "housing", "decision", "business", "tansiq", ["safety", "lifts"], "PT6H", True),
    "P2": (1446, "transport", "directive", "business", "baraa", ["bus_delay"], "PT2H", True),
    "P3": (1446, "transport", "circular", "technology", "none", ["safety"], "PT6H", False),
    # this season, Hajj 1447
    "I": (1447, "transport", "decision", "business", "tansiq", [], "PT6H", True),
    "A": (1447, "housing", "decision", "business", "tansiq", ["safety"], "PT48H", True),
    "B": (1447, "transport", "directive", "business", "baraa", ["bus_delay"], "PT9H", True),
    "H": (1447, "housing", "recommendation", "human_resources", "tansiq", [], "PT30H", True),
    "C": (1447, "housing", "circular", "business", "none", ["lifts"], "PT6H", True),
    "D": (1447, "civil_defence", "directive", "human_resources", "baraa", [], "PT4H", True),
    "E": (1447, "transport", "decision", "technology", "tansiq", ["signage"], "PT13H", True),
    "F": (1447, "housing", "recommendation", "business", "none", [], "PT6H", True),
    "G": (1447, "civil_defence", "decision", "business", "none", [], "PT6H", False),
}

# The timeline, in UTC (Riyadh is UTC+3: the local day 2026-05-20 is [05-19 21:00, 05-20 21:00) UTC).
# Timers fire on the first tick after their moment, hence the ticks a minute past a deadline.
TIMELINE = [
    (at(2025, 5, 20, 6), "create", "P1"), (at(2025, 5, 20, 6), "create", "P2"), (at(2025, 5, 20, 6), "create", "P3"),
    (at(2025, 5, 20, 7), "acknowledge", "P1"),
    (at(2025, 5, 20, 8, 1), "tick", None),  # P2 passes its deadline: escalation level 1
    (at(2025, 5, 20, 9), "review", "P2"),  # the supervisor closes the review: P2 completed late
    (at(2026, 5, 18, 6), "create", "I"),
    (at(2026, 5, 18, 7), "acknowledge", "I"),  # completed on time, on the 18th
    (at(2026, 5, 19, 6), "create", "A"), (at(2026, 5, 19, 6), "create", "B"),
    (at(2026, 5, 19, 10), "create", "H"),
    (at(2026, 5, 19, 15, 1), "tick", None),  # B passes its deadline: escalation level 1, still open
    (at(2026, 5, 20, 3), "create", "C"), (at(2026, 5, 20, 3), "create", "D"),
    (at(2026, 5, 20, 4), "create", "E"),
    (at(2026, 5, 20, 5), "acknowledge", "C"), (at(2026, 5, 20, 5), "create", "F"),
    (at(2026, 5, 20, 6), "cancel", "F"), (at(2026, 5, 20, 6), "create", "G"),
    (at(2026, 5, 20, 7, 1), "tick", None),  # D passes its deadline: escalation level 1
    (at(2026, 5, 20, 8), "acknowledge", "H"),  # due 05-20 16:00, on time
    (at(2026, 5, 20, 9), "resolve", "D"),  # the supervisor resolves D's escalation
    (at(2026, 5, 20, 10), "review", "D"),  # D completed, late
    (at(2026, 5, 20, 12), "tick", None),  # the reports are made now
]
END = at(2026, 5, 20, 12)
DAY = date(2026, 5, 20)


def deadline_model() -> bytes:
    """tests/bpmn/deadline.bpmn, plus a supervisor's action (a message) accepted during the review, so that
    an escalation can be resolved through `supervision.resolve` as with the shipped models."""
    source = read_model("deadline.bpmn").decode()
    source = source.replace("<bpmn:process ", '<bpmn:message id="supervisor_action_message" name="supervisor_action" />'
                            "\n  <bpmn:process ", 1)
    source = source.replace("</bpmn:process>", """
    <bpmn:boundaryEvent id="supervisor_acted" attachedToRef="supervisor_review" cancelActivity="false">
      <bpmn:outgoing>f_acted</bpmn:outgoing>
      <bpmn:messageEventDefinition id="acted_definition" messageRef="supervisor_action_message">
        <bpmn:extensionElements>
          <spiffworkflow:messageVariable>action_message</spiffworkflow:messageVariable>
        </bpmn:extensionElements>
      </bpmn:messageEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="acted"><bpmn:incoming>f_acted</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f_acted" sourceRef="supervisor_acted" targetRef="acted" />
  </bpmn:process>""", 1)
    return source.encode()


@dataclass
class World:
    db: Database
    ids: dict[str, int] = field(default_factory=dict)


def build(db: Database, until: datetime = END) -> World:
    world = World(db)
    clock.set_now(at(2025, 5, 1, 0))
    with db.transaction() as session:
        process_models.deploy(session, deadline_model(), "report-deadline.bpmn", "tester")
    with db.transaction() as session:
        seasons.create_season(session, 1446, date(2025, 4, 28), date(2025, 7, 27))
        seasons.create_season(session, 1447, date(2026, 4, 18), date(2026, 7, 16))
        for code, name_ar, name_en in ENTITIES:
            entities.create_entity(session, code, name_ar, name_en)
    for moment, action, name in TIMELINE:
        if moment > until:
            break
        clock.set_now(moment)
        timers.run_until_idle(db)
        if action != "tick":
            _act(world, action, name)
    clock.set_now(until)
    timers.run_until_idle(db)
    return world


def _act(world: World, action: str, name: str) -> None:
    db = world.db
    with db.transaction() as session:
        if action == "create":
            year, entity, kind, track, programme, tags, deadline, launch = DIRECTIVES[name]
            directive = directives.create(session, NewDirective(
                title=f"توجيه {name}: متابعة جاهزية الخدمات", title_en=f"Directive {name}: service readiness",
                kind=kind, responsible_entity=entity, deadline=deadline, track=track, programme_track=programme,
                tags=tags, season_year=year, process_model_key="deadline", reference=f"{year}/{name}",
            ), "secretariat", launch_now=launch)
            world.ids[name] = directive.id
        elif action in ("acknowledge", "review"):
            directive = directives.get(session, world.ids[name])
            element = "acknowledge" if action == "acknowledge" else "supervisor_review"
            [item] = session.scalars(select(WorkItem).where(
                WorkItem.instance_id == directive.instance_id, WorkItem.status == OPEN, WorkItem.element_id == element))
            instances.complete_task(session, item.id, {}, "housing.user" if action == "acknowledge" else "supervisor")
        elif action == "cancel":
            directives.cancel(session, world.ids[name], "secretariat", "مكرر")
        elif action == "resolve":
            [escalation] = session.scalars(select(Escalation).where(Escalation.directive_id == world.ids[name]))
            supervision.resolve(session, escalation.id, "close", "supervisor", "تمت المعالجة", outcome="done")
        else:  # pragma: no cover
            raise AssertionError(action)
