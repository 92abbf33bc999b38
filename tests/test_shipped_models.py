"""The shipped directive models (bpmn/*.bpmn) driven through every path, on SQLite and PostgreSQL.

Each directive is registered and launched by the directive service (so the real `change_deadline`
and `reassign` operations find their directive), then driven with the exact messages and form data
of the contract in docs/directive-models.md, with the clock moved by `engine.foundation.clock.set_now` and the
timer worker run by `engine.work.timers.run_until_idle`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from argon2 import PasswordHasher
from lxml import etree
from sqlalchemy import select

from engine.bpmn import bpmn_runtime, process_models
from engine.bpmn.model_validation import BPMN_NS, NS, SPIFF_NS
from engine.calendar import durations, seasons
from engine.delivery import notification_delivery
from engine.directives import directives
from engine.directives.directives import NewDirective
from engine.foundation import clock
from engine.foundation.errors import Conflict
from engine.people import entities, users
from engine.storage import audit
from engine.work import instances
from engine.work import timers as timer_worker
from engine.work.work_items import WorkItem
from tests.conftest import SHIPPED_BPMN_DIR
from tests.helpers import complete, deploy, escalations, instance, notifications, open_items

T0 = datetime(2026, 5, 20, 6, tzinfo=UTC)  # in the 1447 season
DEADLINE = T0 + timedelta(days=2)
NEW_DEADLINE = DEADLINE + timedelta(days=2)
MINUTE = timedelta(minutes=1)

STANDARD, URGENT, MULTI, CIRCULAR = "directive_standard", "directive_urgent", "directive_multi_entity", \
    "circular_acknowledgement"
FILES = {STANDARD: "directive-standard.bpmn", URGENT: "directive-urgent.bpmn", MULTI: "directive-multi-entity.bpmn",
         CIRCULAR: "circular-acknowledgement.bpmn"}
ALL_MODELS = list(FILES)
VERIFIED_MODELS = [STANDARD, URGENT, MULTI]
WORK_STEP = {STANDARD: "execute", URGENT: "execute", MULTI: "consolidate"}  # where rework goes back to
LEVEL_AT_DEADLINE = {STANDARD: (1, "supervisor"), URGENT: (2, "leadership"), MULTI: (1, "supervisor"),
                     CIRCULAR: (1, "supervisor")}
LEVEL_AFTER_GRACE = {STANDARD: (2, "leadership"), URGENT: (3, "leadership"), MULTI: (2, "leadership"),
                     CIRCULAR: (2, "leadership")}
SUPPORTING = {STANDARD: [], URGENT: [], MULTI: ["transport", "reception"], CIRCULAR: ["transport"]}
WORK = {"summary": "تم التنفيذ — done", "evidence": ["file-1", "file-2"]}


# --- the world and shortcuts ---------------------------------------------------------------------

@dataclass(frozen=True)
class Launched:
    key: str
    directive_id: int
    instance_id: int

    @property
    def lead(self) -> timedelta:
        return durations.parse_duration(directives.TIMING[self.priority][0])

    @property
    def grace(self) -> timedelta:
        return durations.parse_duration(directives.TIMING[self.priority][1])

    @property
    def priority(self) -> str:
        return "urgent" if self.key == URGENT else "normal"


@pytest.fixture
def world(db):
    return seed_world(db)


def seed_world(db):
    """The 1447 season and four entities, at T0 (other modules' fixtures build the same world with it)."""
    clock.set_now(T0)
    with db.transaction() as session:
        seasons.create_season(session, 1447, date(2026, 4, 18), date(2026, 7, 16))
        for code, ar, en in (("housing", "الإسكان", "Housing"), ("transport", "النقل", "Transport"),
                             ("reception", "الاستقبال", "Reception"), ("departure", "المغادرة", "Departure")):
            entities.create_entity(session, code, ar, en)
    return db


def launch(db, key: str, supporting: list[str] | None = None) -> Launched:
    deploy(db, FILES[key])
    new = NewDirective(
        title="تهيئة مراكز الاستقبال قبل وصول الحجاج", title_en="Prepare the reception centres",
        kind="circular" if key == CIRCULAR else "directive", responsible_entity="housing", deadline=DEADLINE,
        supporting_entities=SUPPORTING[key] if supporting is None else supporting,
        priority="urgent" if key == URGENT else "normal", process_model_key=key,
    )
    with db.transaction() as session:
        directive = directives.create(session, new, "secretariat", launch_now=True)
        return Launched(key, directive.id, directive.instance_id)


def at(db, moment: datetime) -> timer_worker.BatchResult:
    clock.set_now(moment)
    return timer_worker.run_until_idle(db)


def send(db, run: Launched, name: str, payload: dict[str, Any], actor: str = "supervisor") -> None:
    with db.transaction() as session:
        instances.send_message(session, run.instance_id, name, payload, actor)


def supervisor_action(db, run: Launched, action: str, **fields: Any) -> None:
    send(db, run, "supervisor_action", {"action": action, "note": f"{action} by the supervisor",
                                        "actor": "supervisor", **fields})


def request_extension(db, run: Launched, new_deadline: datetime = NEW_DEADLINE) -> None:
    send(db, run, "extension_requested", {"new_deadline": new_deadline.isoformat(), "reason": "awaiting permits",
                                          "requested_by": "housing.user"}, actor="housing.user")


def steps(db, run: Launched) -> list[tuple[str, str | None, str | None, datetime | None]]:
    """The open steps: (element, entity, role, due)."""
    return sorted((i.element_id, i.assignee_entity, i.assignee_role, i.due_at) for i in open_items(db, run.instance_id))


def step(db, run: Launched, element_id: str, entity: str | None = None) -> WorkItem:
    items = [i for i in open_items(db, run.instance_id)
             if i.element_id == element_id and (entity is None or i.assignee_entity == entity)]
    assert len(items) == 1, f"expected one open {element_id} ({entity}), found {steps(db, run)}"
    return items[0]


def do(db, run: Launched, element_id: str, data: dict[str, Any] | None = None, entity: str | None = None) -> None:
    complete(db, step(db, run, element_id, entity).id, data or {}, actor=f"{entity or 'someone'}.user")


def raised(db, run: Launched) -> list[tuple[int, str, str, str | None]]:
    return sorted((e.level, e.target_role, e.reason, e.entity) for e in escalations(db, run.instance_id))


def reminded(db, run: Launched) -> list[tuple[str, str | None]]:
    return sorted((n.template, n.recipient_entity) for n in notifications(db, run.instance_id)
                  if n.template != "escalation")


def the_directive(db, run: Launched) -> directives.Directive:
    with db.reading() as session:
        return directives.get(session, run.directive_id)


def deadline_changes(db, run: Launched) -> list[tuple[str, str]]:
    """What `change_deadline` recorded: (new deadline, reason)."""
    with db.reading() as session:
        events = audit.timeline(session, directives.subject(run.directive_id))
    return [(e.payload["to"], e.payload["reason"]) for e in events if e.action == "directive.deadline_changed"]


def data_of(db, run: Launched, element_id: str) -> dict[str, Any]:
    """The task data a step's form is shown with (what the UI can read)."""
    stored = instance(db, run.instance_id)
    with db.reading() as session:
        model = process_models.get_model(session, run.key)
        runtime = bpmn_runtime.Runtime.load(process_models.compiled_model(model), stored.state, None, 25, 2000)
    [view] = [v for v in runtime.ready_user_tasks() if v.element_id == element_id]
    return view.data


def register(db, code: str) -> list[int]:
    """The directives in the register of an entity user of `code`."""
    with db.reading() as session:
        user = SimpleNamespace(username=f"{code}.user", role="entity_user", active=True,
                               entity_id=entities.get_by_code(session, code).id)
        return [d.id for d in directives.search(session, user)[0]]


def entity_work(db, run: Launched, rework: bool = False) -> None:
    """What the entities do between launch and verification (or the end of a circular)."""
    if run.key == CIRCULAR:
        for item in open_items(db, run.instance_id):
            complete(db, item.id, {"note": "received"}, actor=f"{item.assignee_entity}.user")
        return
    if not rework:
        do(db, run, "acknowledge", {"note": "received"}, "housing")
    if run.key == MULTI and not rework:
        for entity in SUPPORTING[MULTI]:
            do(db, run, "contribute", {"summary": f"{entity} did its part"}, entity)
    do(db, run, WORK_STEP[run.key], WORK, "housing")


def assert_closed(db, run: Launched, business_status: str, directive_status: str) -> None:
    finished = instance(db, run.instance_id)
    assert (finished.status, finished.business_status) == (instances.COMPLETED, business_status)
    assert open_items(db, run.instance_id) == []
    assert the_directive(db, run).status == directive_status
    assert at(db, DEADLINE + timedelta(days=30)).processed == 0, "nothing may fire after the end"


# --- the models as files ---------------------------------------------------------------------------

BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DI = "http://www.omg.org/spec/DD/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
FLOW_NODES = ("startEvent", "endEvent", "userTask", "serviceTask", "scriptTask", "exclusiveGateway",
              "parallelGateway", "intermediateCatchEvent", "intermediateThrowEvent", "subProcess", "boundaryEvent",
              "businessRuleTask")


def _bounds(shape: etree._Element) -> tuple[float, float, float, float]:
    b = shape.find(f"{{{DC}}}Bounds")
    return tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


@pytest.mark.parametrize("key", ALL_MODELS)
def test_each_file_is_a_complete_readable_diagram_of_the_contract(key):
    root = etree.parse(str(SHIPPED_BPMN_DIR / FILES[key])).getroot()
    [process] = root.findall("bpmn:process", NS)
    assert (process.get("id"), process.get("isExecutable")) == (key, "true")
    names = {p.get("name"): p.get("value") for p in process.findall(
        "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS)}
    assert names["name_ar"] and names["name_en"]
    shapes = {s.get("bpmnElement"): s for s in root.iter(f"{{{BPMNDI}}}BPMNShape")}
    edges = {e.get("bpmnElement"): e for e in root.iter(f"{{{BPMNDI}}}BPMNEdge")}
    nodes = [n for tag in FLOW_NODES for n in process.iter(f"{{{BPMN_NS}}}{tag}")]
    lanes = list(process.iter(f"{{{BPMN_NS}}}lane"))
    assert {n.get("id") for n in nodes + lanes} <= set(shapes), "every flow node and lane has a shape"
    for flow in process.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        assert len(edges[flow.get("id")].findall(f"{{{DI}}}waypoint")) >= 2
    in_lanes = {ref.text for lane in lanes for ref in lane.findall("bpmn:flowNodeRef", NS)}
    assert {n.get("id") for n in nodes if n.getparent() is process} == in_lanes
    # no two shapes overlap, except a sub-process with its content and a boundary event with its host
    parent = {n.get("id"): n.getparent().get("id") for n in nodes}
    host = {n.get("id"): n.get("attachedToRef") for n in nodes}

    def related(a: str, b: str) -> bool:
        return b in (parent[a], host[a]) or a in (parent[b], host[b])

    placed = [(i, _bounds(shapes[i])) for i in parent]
    for n, (a, (ax, ay, aw, ah)) in enumerate(placed):
        for b, (bx, by, bw, bh) in placed[n + 1:]:
            assert related(a, b) or not (ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah), (a, b)
    # the contract's user tasks
    users = {t.get("id"): t for t in process.iter(f"{{{BPMN_NS}}}userTask")}
    expected = {"acknowledge", "review_extension"} | ({"execute", "verify", "supervisor_decision"}
                                                     if key in (STANDARD, URGENT) else set())
    expected |= {"verify", "supervisor_decision", "contribute", "consolidate"} if key == MULTI else set()
    assert set(users) == expected
    for task_id, task in users.items():
        props = {p.get("name"): p.get("value") for p in task.iter(f"{{{SPIFF_NS}}}property")}
        assert props["name_ar"] and props["name_en"] and props["role"], task_id
        if props["role"] == "entity_user":
            assert props["due"] == "deadline" and props["assignee_entity"] in ("responsible_entity", "entity")
    timer_boundaries = [n for n in nodes if n.find("bpmn:timerEventDefinition", NS) is not None]
    assert len(timer_boundaries) == 3 and all(t.get("cancelActivity") == "false" for t in timer_boundaries)
    for boundary in timer_boundaries:
        [flow] = [f for f in process.iter(f"{{{BPMN_NS}}}sequenceFlow") if f.get("sourceRef") == boundary.get("id")]
        [target] = [n for n in nodes if n.get("id") == flow.get("targetRef")]
        assert etree.QName(target).localname == "serviceTask"


ARABIC_LETTER = re.compile(r"[\u0600-\u06FF]")


@pytest.mark.parametrize("key", ALL_MODELS)
def test_every_drawn_named_element_has_its_arabic_and_english_names(key):
    """The diagram shows each label in the page's language (api/static/js/diagram.js): every element with a shape
    or an edge and a name (pool, lanes, events, gateways, tasks, sub-processes, flows, data) carries both."""
    root = etree.parse(str(SHIPPED_BPMN_DIR / FILES[key])).getroot()
    drawn = {d.get("bpmnElement") for d in root.iter(f"{{{BPMNDI}}}BPMNShape", f"{{{BPMNDI}}}BPMNEdge")}
    named = [e for e in root.iter() if isinstance(e.tag, str) and e.get("id") in drawn and e.get("name")]
    assert len(named) > 40
    kinds = {etree.QName(e).localname for e in named}
    assert {"participant", "lane", "startEvent", "endEvent", "boundaryEvent", "exclusiveGateway", "serviceTask",
            "sequenceFlow", "subProcess"} <= kinds
    for element in named:
        names = {p.get("name"): p.get("value") for p in element.findall(
            "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS)}
        ar, en = names.get("name_ar"), names.get("name_en")
        assert ar and en, element.get("id")
        assert ARABIC_LETTER.search(ar) and not re.search("[A-Za-z]", ar), (element.get("id"), ar)
        assert not ARABIC_LETTER.search(en), (element.get("id"), en)


@pytest.mark.parametrize("key", ALL_MODELS)
def test_each_model_deploys_with_its_names(world, key):
    [model] = deploy(world, FILES[key])
    assert model.key == key and model.name_ar and model.name_en
    assert deploy(world, FILES[key])[0].version == 1  # identical content: the same version


# --- on time -------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", VERIFIED_MODELS)
def test_on_time_the_steps_follow_each_other_and_nothing_is_escalated(world, key):
    run = launch(world, key)
    assert steps(world, run) == [("acknowledge", "housing", "entity_user", DEADLINE)]
    do(world, run, "acknowledge", {"note": "received"}, "housing")
    if key == MULTI:
        assert steps(world, run) == [("contribute", "reception", "entity_user", DEADLINE),
                                     ("contribute", "transport", "entity_user", DEADLINE)]
        for entity in SUPPORTING[MULTI]:
            do(world, run, "contribute", {"summary": f"{entity} did its part"}, entity)
    assert steps(world, run) == [(WORK_STEP[key], "housing", "entity_user", DEADLINE)]
    do(world, run, WORK_STEP[key], WORK, "housing")
    assert steps(world, run) == [("verify", None, "follow_up_officer", None)]
    assert the_directive(world, run).current_steps == ["verify"]
    do(world, run, "verify", {"accepted": True})
    assert raised(world, run) == [] and reminded(world, run) == []
    assert_closed(world, run, "completed", directives.COMPLETED)
    assert the_directive(world, run).completed_on_time is True


def test_a_circular_is_completed_when_every_addressed_entity_acknowledges(world):
    run = launch(world, CIRCULAR, ["transport", "reception"])
    assert steps(world, run) == [("acknowledge", e, "entity_user", DEADLINE) for e in ("housing", "reception",
                                                                                         "transport")]
    entity_work(world, run)
    assert raised(world, run) == [] and reminded(world, run) == []
    assert_closed(world, run, "completed", directives.COMPLETED)


# --- late --------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", VERIFIED_MODELS)
def test_late_the_reminder_and_both_levels_fire_once_each(world, key):
    run = launch(world, key)
    ack = step(world, run, "acknowledge")
    assert at(world, DEADLINE - run.lead - MINUTE).processed == 0
    assert at(world, DEADLINE - run.lead + MINUTE).fired == 1
    assert reminded(world, run) == [("reminder", "housing")] and raised(world, run) == []
    at(world, DEADLINE + MINUTE)
    first_level, first_role = LEVEL_AT_DEADLINE[key]
    assert raised(world, run) == [(first_level, first_role, "unacknowledged", "housing")]
    assert at(world, DEADLINE + 2 * MINUTE).processed == 0, "the worker running again fires nothing"
    assert step(world, run, "acknowledge").id == ack.id, "the timers never interrupt the entity's step"
    do(world, run, "acknowledge", {}, "housing")  # acknowledged late: the next level says overdue
    at(world, DEADLINE + run.grace + MINUTE)
    second_level, second_role = LEVEL_AFTER_GRACE[key]
    assert raised(world, run) == [(first_level, first_role, "unacknowledged", "housing"),
                                  (second_level, second_role, "overdue", "housing")]
    assert at(world, DEADLINE + timedelta(days=20)).processed == 0
    assert len(reminded(world, run)) == 1 and len(raised(world, run)) == 2
    assert the_directive(world, run).escalation_level == second_level


def test_a_missing_acknowledgement_of_a_circular_chases_that_entity_only(world):
    run = launch(world, CIRCULAR, ["transport", "reception"])
    do(world, run, "acknowledge", {}, "housing")
    do(world, run, "acknowledge", {}, "reception")
    at(world, DEADLINE - run.lead + MINUTE)
    at(world, DEADLINE + MINUTE)
    at(world, DEADLINE + run.grace + MINUTE)
    at(world, DEADLINE + timedelta(days=5))
    assert reminded(world, run) == [("reminder", "transport")]
    assert raised(world, run) == [(1, "supervisor", "unacknowledged", "transport"),
                                  (2, "leadership", "unacknowledged", "transport")]
    do(world, run, "acknowledge", {}, "transport")
    assert_closed(world, run, "completed", directives.COMPLETED)


# --- extensions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ALL_MODELS)
def test_an_approved_extension_rearms_every_timer_on_the_new_deadline(world, key):
    run = launch(world, key)
    before = step(world, run, "acknowledge", "housing")
    request_extension(world, run)
    assert step(world, run, "acknowledge", "housing").id == before.id, "the step stays open during the review"
    assert step(world, run, "review_extension").assignee_role == "supervisor"
    with pytest.raises(Conflict, match="not waiting"):  # one request at a time
        request_extension(world, run)
    do(world, run, "review_extension", {"approved": True, "note": "agreed"})
    assert deadline_changes(world, run) == [(NEW_DEADLINE.isoformat(), "extension")]
    assert the_directive(world, run).deadline_at == NEW_DEADLINE
    assert {i.due_at for i in open_items(world, run.instance_id)} == {NEW_DEADLINE}
    at(world, DEADLINE + run.grace + MINUTE)
    assert raised(world, run) == [], "the old deadline passes with no escalation"
    at(world, NEW_DEADLINE + MINUTE)
    at(world, NEW_DEADLINE + 2 * MINUTE)
    level, role = LEVEL_AT_DEADLINE[key]
    addressed = ["housing", *SUPPORTING[key]] if key == CIRCULAR else ["housing"]
    assert raised(world, run) == [(level, role, "unacknowledged", e) for e in sorted(addressed)]
    assert reminded(world, run) == [("reminder", e) for e in sorted(addressed)]
    request_extension(world, run, NEW_DEADLINE + timedelta(days=1))  # the listener waits again
    assert step(world, run, "review_extension")


@pytest.mark.parametrize("key", [STANDARD, CIRCULAR])
def test_a_rejected_extension_changes_nothing(world, key):
    run = launch(world, key)
    before = step(world, run, "acknowledge", "housing")
    request_extension(world, run)
    do(world, run, "review_extension", {"approved": False, "note": "no"})
    assert deadline_changes(world, run) == [] and the_directive(world, run).deadline_at == DEADLINE
    assert step(world, run, "acknowledge", "housing").id == before.id
    at(world, DEADLINE + MINUTE)
    assert (1, "supervisor", "unacknowledged", "housing") in raised(world, run)


# --- rework --------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", VERIFIED_MODELS)
def test_a_returned_step_is_reworked_with_the_reason_then_accepted(world, key):
    run = launch(world, key)
    entity_work(world, run)
    do(world, run, "verify", {"accepted": False, "reason": "the photos are missing"})
    work = WORK_STEP[key]
    assert steps(world, run) == [(work, "housing", "entity_user", DEADLINE)]
    data = data_of(world, run, work)
    assert (data["accepted"], data["reason"]) == (False, "the photos are missing")
    if key == MULTI:
        assert sorted(c["entity"] for c in data["contributions"]) == ["reception", "transport"]
    entity_work(world, run, rework=True)
    assert data_of(world, run, "verify")["reason"] == "", "a new verification starts without the old reason"
    do(world, run, "verify", {"accepted": True})
    assert_closed(world, run, "completed", directives.COMPLETED)


@pytest.mark.parametrize("decision, business_status, status", [("accept", "completed", directives.COMPLETED),
                                                                ("cancel", "cancelled", directives.CANCELLED)])
def test_returned_too_often_the_supervisor_decides(world, decision, business_status, status):
    run = launch(world, STANDARD)
    entity_work(world, run)
    for _ in range(directives.MAX_RETURNS - 1):
        do(world, run, "verify", {"accepted": False, "reason": "not yet"})
        entity_work(world, run, rework=True)
    do(world, run, "verify", {"accepted": False, "reason": "still not"})
    assert steps(world, run) == [("supervisor_decision", None, "supervisor", None)]
    do(world, run, "supervisor_decision", {"decision": "return", "note": "one more try"})
    entity_work(world, run, rework=True)
    do(world, run, "verify", {"accepted": False, "reason": "again"})
    do(world, run, "supervisor_decision", {"decision": decision})
    assert_closed(world, run, business_status, status)


# --- supervisor actions --------------------------------------------------------------------------

@pytest.mark.parametrize("key", ALL_MODELS)
def test_a_supervisor_extension_rearms_like_an_approved_one(world, key):
    run = launch(world, key)
    supervisor_action(world, run, "extend", new_deadline=NEW_DEADLINE.isoformat())
    assert deadline_changes(world, run) == [(NEW_DEADLINE.isoformat(), "supervisor")]
    assert {i.due_at for i in open_items(world, run.instance_id)} == {NEW_DEADLINE}
    at(world, DEADLINE + run.grace + MINUTE)
    assert raised(world, run) == []
    at(world, NEW_DEADLINE + MINUTE)
    assert LEVEL_AT_DEADLINE[key] + ("unacknowledged", "housing") in raised(world, run)


@pytest.mark.parametrize("key", ALL_MODELS)
def test_a_reassignment_recreates_the_open_step_for_the_new_entity(world, key):
    run = launch(world, key)
    supervisor_action(world, run, "reassign", entity="departure")
    directive = the_directive(world, run)
    assert directive.responsible_entity.code == "departure"
    assert run.directive_id in register(world, "departure") and run.directive_id not in register(world, "housing")
    assert step(world, run, "acknowledge", "departure").due_at == DEADLINE
    assert [i for i in open_items(world, run.instance_id) if i.assignee_entity == "housing"] == []
    at(world, DEADLINE - run.lead + MINUTE)
    at(world, DEADLINE + MINUTE)
    assert ("reminder", "departure") in reminded(world, run)
    assert LEVEL_AT_DEADLINE[key] + ("unacknowledged", "departure") in raised(world, run)
    assert all(entity != "housing" for *_, entity in raised(world, run))


@pytest.mark.parametrize("key", ALL_MODELS)
def test_a_manual_escalation_leaves_the_work_open_and_the_supervisor_can_act_again(world, key):
    run = launch(world, key)
    before = step(world, run, "acknowledge", "housing")
    supervisor_action(world, run, "escalate", level=2)
    supervisor_action(world, run, "escalate", level=3)
    assert raised(world, run) == [(2, "leadership", "manual", "housing"), (3, "leadership", "manual", "housing")]
    assert step(world, run, "acknowledge", "housing").id == before.id
    assert instance(world, run.instance_id).status == instances.RUNNING


@pytest.mark.parametrize("outcome, business_status, status", [("done", "completed", directives.COMPLETED),
                                                              ("cancelled", "cancelled", directives.CANCELLED)])
@pytest.mark.parametrize("key", ALL_MODELS)
def test_the_supervisor_closes_the_directive_at_any_moment(world, key, outcome, business_status, status):
    run = launch(world, key)
    request_extension(world, run)  # a pending review disappears with the rest
    supervisor_action(world, run, "close", outcome=outcome)
    assert_closed(world, run, business_status, status)
    assert raised(world, run) == [] and reminded(world, run) == []


def test_supervisor_actions_are_accepted_while_verification_is_open(world):
    run = launch(world, STANDARD)
    entity_work(world, run)
    verify = step(world, run, "verify")
    supervisor_action(world, run, "extend", new_deadline=NEW_DEADLINE.isoformat())
    supervisor_action(world, run, "reassign", entity="transport")
    assert step(world, run, "verify").id == verify.id, "verification is not disturbed"
    do(world, run, "verify", {"accepted": False, "reason": "redo with the new entity"})
    assert steps(world, run) == [("execute", "transport", "entity_user", NEW_DEADLINE)]
    at(world, NEW_DEADLINE + MINUTE)
    assert raised(world, run) == [(1, "supervisor", "overdue", "transport")]


@pytest.mark.parametrize("key", ALL_MODELS)
def test_cancelling_the_instance_withdraws_every_step_and_stops_the_timers(world, key):
    run = launch(world, key)
    request_extension(world, run)
    with world.transaction() as session:
        instances.cancel(session, run.instance_id, "secretariat")
    assert instance(world, run.instance_id).status == instances.CANCELLED
    assert open_items(world, run.instance_id) == []
    with world.reading() as session:
        withdrawn = session.scalars(select(WorkItem).where(WorkItem.instance_id == run.instance_id)).all()
    assert withdrawn and {i.status for i in withdrawn} == {"withdrawn"}
    assert at(world, DEADLINE + timedelta(days=30)).processed == 0
    assert raised(world, run) == [] and reminded(world, run) == []


# --- several entities ------------------------------------------------------------------------------

def test_supporting_entities_contribute_in_parallel_and_keep_their_work_across_an_extension(world):
    run = launch(world, MULTI, ["transport", "reception", "departure"])
    do(world, run, "acknowledge", {}, "housing")
    do(world, run, "contribute", {"summary": "buses booked", "evidence": ["f-7"]}, "transport")
    supervisor_action(world, run, "extend", new_deadline=NEW_DEADLINE.isoformat())
    assert steps(world, run) == [("contribute", "departure", "entity_user", NEW_DEADLINE),
                                 ("contribute", "reception", "entity_user", NEW_DEADLINE)]
    do(world, run, "contribute", {"summary": "desks staffed"}, "reception")
    do(world, run, "contribute", {"summary": "gates ready"}, "departure")
    assert steps(world, run) == [("consolidate", "housing", "entity_user", NEW_DEADLINE)]
    contributions = {c["entity"]: c for c in data_of(world, run, "consolidate")["contributions"]}
    assert contributions["transport"] == {"entity": "transport", "summary": "buses booked", "evidence": ["f-7"]}
    assert set(contributions) == {"transport", "reception", "departure"}
    do(world, run, "consolidate", WORK, "housing")
    do(world, run, "verify", {"accepted": True})
    assert_closed(world, run, "completed", directives.COMPLETED)


def test_without_supporting_entities_the_responsible_entity_consolidates_alone(world):
    run = launch(world, MULTI, [])
    do(world, run, "acknowledge", {}, "housing")
    assert steps(world, run) == [("consolidate", "housing", "entity_user", DEADLINE)]


# --- scale ---------------------------------------------------------------------------------------

def test_a_circular_to_forty_entities_is_not_mistaken_for_a_runaway_loop(world):
    """Parallel acknowledgements widen the task tree; only loops deepen it, and only loops are capped."""
    codes = [f"entity_{n:02d}" for n in range(40)]
    with world.transaction() as session:
        for code in codes:
            entities.create_entity(session, code, f"جهة {code}", f"Entity {code}")
    run = launch(world, CIRCULAR, codes)
    assert len(steps(world, run)) == 41
    for code in ["housing", *codes]:
        do(world, run, "acknowledge", entity=code)
    assert_closed(world, run, "completed", directives.COMPLETED)


def test_twenty_six_supervisor_actions_do_not_stop_the_directive(world):
    run = launch(world, STANDARD)
    for _ in range(26):
        supervisor_action(world, run, "escalate", level=2)
    assert instance(world, run.instance_id).status == instances.RUNNING


# --- people hear of it, by email ----------------------------------------------------------------

def test_late_the_entity_is_reminded_and_each_level_told_by_email(world, smtp, monkeypatch):
    server = smtp()
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    with world.transaction() as session:
        for name, role, entity, language in (("housing.user", "entity_user", "housing", "ar"),
                                             ("supervisor", "supervisor", None, "en"),
                                             ("leader", "leadership", None, "ar")):
            users.create_user(session, name, "a long password", role, entity_code=entity,
                              email=f"{name}@unit.example", language=language)
    run = launch(world, STANDARD)
    reference = the_directive(world, run).reference
    for moment in (DEADLINE - run.lead + MINUTE, DEADLINE + MINUTE, DEADLINE + run.grace + MINUTE):
        at(world, moment)
        report = notification_delivery.run_once(world, server.settings())
        assert report.failed == 0
    [reminder] = server.mailbox.to("housing.user@unit.example")
    assert reminder.subject.startswith(f"تذكير: التوجيه {reference}")
    [first] = server.mailbox.to("supervisor@unit.example")
    assert first.subject == f"Escalation, level 1: directive {reference}"
    [second] = server.mailbox.to("leader@unit.example")
    assert second.subject == f"تصعيد من المستوى ٢: التوجيه {reference}"
    assert notification_delivery.run_once(world, server.settings()).sent == 0
    assert len(server.mailbox.received) == 3


@pytest.fixture(autouse=True)
def _the_audit_chain_holds(request):
    db = request.getfixturevalue("world") if "world" in request.fixturenames else None
    yield
    if db is not None:
        with db.reading() as session:
            result = audit.verify(session)
        assert result.ok, str(result)
