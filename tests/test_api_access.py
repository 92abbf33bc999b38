"""Every endpoint × every role (and an entity user of another entity, and nobody): allowed or refused.

The directive under test belongs to `housing`; `transport.user` belongs to another entity and must
be told such directives do not exist (404), while roles that may see but not act get 403. Each case
arranges fresh objects of its own, so the order of the cases does not matter.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine.directives import access, directives
from engine.directives.directives import NewDirective
from engine.foundation import clock
from engine.work import instances, timers
from engine.work.escalations import Escalation
from engine.work.work_items import OPEN, WorkItem
from tests.conftest import SHIPPED_BPMN_DIR, deploy_shipped
from tests.test_api_support import FLOW_BPMN, NOW, PASSWORD, PDF, PEOPLE, World, open_shared_world

ANONYMOUS = "(nobody)"
IDENTITIES = [*PEOPLE, ANONYMOUS]
READERS = {"admin", "secretariat", "officer", "supervisor", "leader", "viewer"}
EVERYONE = set(PEOPLE)
HAS_STANDARD = (SHIPPED_BPMN_DIR / "directive-standard.bpmn").exists()
_numbers = itertools.count(1)
_years = itertools.count(1360)  # seasons the table creates (never 1447, the world's)
_clock = {"now": NOW}


@pytest.fixture(scope="module")
def world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world for the whole table (built once per database): cases arrange what they need."""
    _clock["now"] = NOW
    with open_shared_world(database_url, tmp_path_factory.mktemp("home")) as built:
        if HAS_STANDARD:

            with built.db.transaction() as session:
                deploy_shipped(session, "directive-standard.bpmn")
        yield built




@pytest.fixture(autouse=True)
def _keep_the_worlds_clock(world: World) -> None:
    """conftest resets the clock to the wall clock before each test; this table runs on the world's."""
    clock.set_now(_clock["now"])


def _advance(world: World, delta: timedelta) -> None:
    _clock["now"] += delta
    clock.set_now(_clock["now"])


# --- arranging fresh objects ------------------------------------------------------------------------

def _directive(w: World, *, launch: bool = True, model: str = "api_flow", deadline: str = "PT6H") -> int:
    with w.db.transaction() as session:
        new = NewDirective(title="توجيه للاختبار", kind="decision", responsible_entity="housing", deadline=deadline,
                           process_model_key=model)
        return directives.create(session, new, "secretariat", launch_now=launch).id


def _step(w: World, directive_id: int, element: str) -> int:
    with w.db.reading() as session:
        instance_id = directives.get(session, directive_id).instance_id
        return session.scalar(select(WorkItem.id).where(WorkItem.instance_id == instance_id,
                                                        WorkItem.element_id == element, WorkItem.status == OPEN))


def _complete(w: World, item_id: int, data: dict[str, Any] | None = None) -> None:
    with w.db.transaction() as session:
        instances.complete_task(session, item_id, data or {}, "tester")


def _at_execute(w: World) -> int:
    directive_id = _directive(w)
    _complete(w, _step(w, directive_id, "acknowledge"))
    return directive_id


def _at_verify(w: World) -> int:
    directive_id = _at_execute(w)
    _complete(w, _step(w, directive_id, "execute"), {"summary": "done"})
    return _step(w, directive_id, "verify")


def _at_review_extension(w: World) -> int:
    directive_id = _at_execute(w)
    with w.db.transaction() as session:
        directives.request_extension(session, directive_id, "housing.user", "PT24H", "late supplies")
    return _step(w, directive_id, "review_extension")


def _escalation(w: World, model: str = "api_flow") -> int:
    directive_id = _directive(w, model=model, deadline="PT1H")
    if model == "api_flow":
        _complete(w, _step(w, directive_id, "acknowledge"))
    _advance(w, timedelta(minutes=61))
    timers.run_until_idle(w.db)
    with w.db.reading() as session:
        return session.scalar(select(Escalation.id).where(Escalation.directive_id == directive_id,
                                                          Escalation.status == "open").order_by(Escalation.id))


def _evidence(w: World) -> int:
    item_id = _step(w, _directive(w), "acknowledge")
    response = w.call("housing.user", "POST", f"/api/v1/tasks/{item_id}/evidence",
                      files=[("files", ("a.pdf", PDF, "application/pdf"))])
    assert response.status_code == 201, response.text
    return response.json()[0]["id"]


def _throwaway_user(w: World) -> str:
    from engine.people import users

    name = f"temp{next(_numbers)}"
    with w.db.transaction() as session:
        users.create_user(session, name, PASSWORD, "viewer")
    return name


# --- the table --------------------------------------------------------------------------------------

Arrange = Callable[[World], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    arrange: Arrange
    allowed: set[str]
    ok: int = 200
    hidden_from: set[str] = field(default_factory=set)  # refused with 404 rather than 403
    expect: dict[str, int] = field(default_factory=dict)  # any other exception to the rule
    public: bool = False  # no token needed
    after: Callable[[World], None] | None = None


def path(url: str, **kwargs: Any) -> Arrange:
    return lambda w: (url, kwargs)


HOUSING_ONLY = {"transport.user"}


def _ladder() -> bytes:
    from tests.conftest import read_model

    return read_model("ladder-by-days.dmn")


def _deployed_ladder(w: World) -> str:
    from engine.bpmn import decision_tables

    with w.db.transaction() as session:  # the same content each time: deployed once
        return decision_tables.deploy(session, _ladder(), "ladder-by-days.dmn", "tester").decision.key
CASES = [
    Case("sign in", "POST", lambda w: ("/api/v1/auth/token", {"data": {"username": "viewer", "password": PASSWORD}}),
         EVERYONE | {ANONYMOUS}, public=True),
    Case("revoke my tokens", "POST", path("/api/v1/auth/revoke"), EVERYONE, ok=204,
         after=lambda w: _advance(w, timedelta(seconds=1))),
    Case("who am I", "GET", path("/api/v1/me"), EVERYONE),
    Case("health", "GET", path("/healthz"), EVERYONE | {ANONYMOUS}, public=True),
    Case("list entities", "GET", path("/api/v1/entities"), EVERYONE),
    Case("create an entity", "POST", lambda w: ("/api/v1/entities", {"json": {
        "code": f"entity_{next(_numbers)}", "name_ar": "جهة", "name_en": "Entity"}}), {"admin"}, ok=201),
    Case("list users", "GET", path("/api/v1/users"), {"admin"}),
    Case("create a user", "POST", lambda w: ("/api/v1/users", {"json": {
        "username": f"user{next(_numbers)}", "password": PASSWORD, "role": "viewer"}}), {"admin"}, ok=201),
    Case("deactivate a user", "PATCH", lambda w: (f"/api/v1/users/{_throwaway_user(w)}", {"json": {"active": False}}),
         {"admin"}),
    Case("list seasons", "GET", path("/api/v1/seasons"), EVERYONE),
    Case("create a season", "POST", lambda w: ("/api/v1/seasons", {"json": {
        "hijri_year": next(_years), "starts_on": "1980-01-01", "ends_on": "1980-03-01"}}), {"admin"}, ok=201),
    Case("move a season", "PATCH", path("/api/v1/seasons/1447", json={"holidays": []}), {"admin"}),
    Case("list models", "GET", path("/api/v1/process-models"), EVERYONE),
    Case("deploy a model", "POST", path("/api/v1/process-models", files={
        "file": ("api_flow.bpmn", FLOW_BPMN.encode(), "application/xml")}), {"admin"}),
    Case("read a model", "GET", path("/api/v1/process-models/api_flow"), EVERYONE),
    Case("read a model's XML", "GET", path("/api/v1/process-models/api_flow/versions/1/xml"), EVERYONE),
    Case("deploy a decision table", "POST", lambda w: (_deployed_ladder(w) and "/api/v1/decisions", {"files": {
        "file": ("ladder-by-days.dmn", _ladder(), "application/xml")}}), {"admin"}),  # deployed: 200
    Case("list decision tables", "GET", path("/api/v1/decisions"), EVERYONE),
    Case("read a decision table", "GET", lambda w: (f"/api/v1/decisions/{_deployed_ladder(w)}", {}), EVERYONE),
    Case("read a decision table's XML", "GET",
         lambda w: (f"/api/v1/decisions/{_deployed_ladder(w)}/versions/1/xml", {}), EVERYONE),
    Case("search directives", "GET", path("/api/v1/directives"), EVERYONE),
    Case("create a directive", "POST", path("/api/v1/directives", json={
        "title": "توجيه", "kind": "directive", "responsible_entity": "housing", "deadline": "PT6H",
        "process_model_key": "api_flow", "launch": True}), {"admin", "secretariat"}, ok=201),
    Case("read a directive", "GET", lambda w: (f"/api/v1/directives/{_directive(w)}", {}),
         READERS | {"housing.user"}, hidden_from=HOUSING_ONLY),
    Case("launch a draft", "POST", lambda w: (f"/api/v1/directives/{_directive(w, launch=False)}/launch", {}),
         {"admin", "secretariat"}, hidden_from=HOUSING_ONLY),
    Case("cancel a directive", "POST", lambda w: (f"/api/v1/directives/{_directive(w)}/cancel",
                                                  {"json": {"reason": "مكرر"}}),
         {"admin", "secretariat"}, hidden_from=HOUSING_ONLY),
    Case("ask a directive for more time", "POST", lambda w: (f"/api/v1/directives/{_at_execute(w)}/extension-request",
                                                             {"json": {"new_deadline": "PT48H", "reason": "late"}}),
         {"admin", "housing.user"}, ok=202, hidden_from=HOUSING_ONLY),
    Case("my inbox", "GET", path("/api/v1/tasks"), EVERYONE - {"viewer"}),
    Case("read a step", "GET", lambda w: (f"/api/v1/tasks/{_step(w, _directive(w), 'acknowledge')}", {}),
         READERS | {"housing.user"}, hidden_from=HOUSING_ONLY),
    Case("claim an entity's step", "POST",
         lambda w: (f"/api/v1/tasks/{_step(w, _directive(w), 'acknowledge')}/claim", {}),
         {"admin", "housing.user"}, hidden_from=HOUSING_ONLY),
    Case("release an entity's step", "POST",
         lambda w: (f"/api/v1/tasks/{_step(w, _directive(w), 'acknowledge')}/release", {}),
         {"admin", "housing.user"}, hidden_from=HOUSING_ONLY),
    Case("report progress", "POST",
         lambda w: (f"/api/v1/tasks/{_step(w, _directive(w), 'acknowledge')}/progress", {"json": {"percent": 40}}),
         {"admin", "housing.user"}, hidden_from=HOUSING_ONLY),
    Case("report progress with a file", "POST",
         lambda w: (f"/api/v1/tasks/{_step(w, _directive(w), 'acknowledge')}/progress/upload",
                    {"data": {"percent": "40"}, "files": [("files", ("a.pdf", PDF, "application/pdf"))]}),
         {"admin", "housing.user"}, hidden_from=HOUSING_ONLY),
    Case("upload evidence", "POST",
         lambda w: (f"/api/v1/tasks/{_step(w, _directive(w), 'acknowledge')}/evidence",
                    {"files": [("files", ("a.pdf", PDF, "application/pdf"))]}),
         {"admin", "housing.user"}, ok=201, hidden_from=HOUSING_ONLY),
    Case("complete an entity's step", "POST",
         lambda w: (f"/api/v1/tasks/{_step(w, _directive(w), 'acknowledge')}/complete", {"json": {"data": {}}}),
         {"admin", "housing.user"}, hidden_from=HOUSING_ONLY),
    Case("complete an entity's step with a file", "POST",
         lambda w: (f"/api/v1/tasks/{_step(w, _directive(w), 'acknowledge')}/complete/upload",
                    {"files": [("files", ("a.pdf", PDF, "application/pdf"))]}),
         {"admin", "housing.user"}, hidden_from=HOUSING_ONLY),
    Case("ask a step for more time", "POST",
         lambda w: (f"/api/v1/tasks/{_step(w, _at_execute(w), 'execute')}/extension-request",
                    {"json": {"new_deadline": "PT48H", "reason": "late"}}),
         {"admin", "housing.user"}, ok=202, hidden_from=HOUSING_ONLY),
    Case("verify (an officer's step)", "POST",
         lambda w: (f"/api/v1/tasks/{_at_verify(w)}/complete", {"json": {"data": {"accepted": True}}}),
         {"admin", "officer"}, hidden_from=HOUSING_ONLY),
    Case("decide an extension (a supervisor's step)", "POST",
         lambda w: (f"/api/v1/tasks/{_at_review_extension(w)}/complete", {"json": {"data": {"approved": False}}}),
         {"admin", "supervisor"}, hidden_from=HOUSING_ONLY),
    Case("the escalation board", "GET", path("/api/v1/escalations", params={"status": "all"}), EVERYONE),
    Case("comment on an escalation", "POST",
         lambda w: (f"/api/v1/escalations/{_escalation(w)}/resolve", {"json": {"action": "comment", "note": "n"}}),
         {"admin", "supervisor", "officer", "leader"}, hidden_from=HOUSING_ONLY),
    Case("bulk-comment on escalations", "POST",
         lambda w: ("/api/v1/escalations/resolve", {"json": {"ids": [_escalation(w)], "action": "comment",
                                                             "note": "n"}}),
         EVERYONE),
    Case("read the audit trail of a directive", "GET",
         lambda w: ("/api/v1/audit", {"params": {"subject": f"directive:{_directive(w)}"}}),
         READERS | {"housing.user"}, hidden_from=HOUSING_ONLY),
    Case("read the whole audit trail", "GET", path("/api/v1/audit"), {"admin"},
         expect={who: 422 for who in EVERYONE - {"admin"}}),
    Case("verify the audit chain", "GET", path("/api/v1/audit/verify"), {"admin"}),
    Case("download evidence", "GET", lambda w: (f"/api/v1/evidence/{_evidence(w)}", {}),
         READERS | {"housing.user"}, hidden_from=HOUSING_ONLY),
]
ENTITY_USERS = {"housing.user", "transport.user"}


def _instance(w: World, directive_id: int | None = None) -> int:
    with w.db.reading() as session:
        return directives.get(session, directive_id or _directive(w)).instance_id


def _reference(w: World, directive_id: int) -> str:
    with w.db.reading() as session:
        return directives.get(session, directive_id).reference


def _second_version(w: World, name: str) -> int:
    from engine.bpmn import process_models
    from tests.conftest import read_model
    from tests.model_changes import with_step_before_every_end

    with w.db.transaction() as session:  # the same content each time: deployed once
        changed = with_step_before_every_end(read_model(name))
        return process_models.deploy(session, changed, name, "tester").model.version


OPERATIONS = [  # the operations view: administrators only, and to entity users it does not exist
    Case("list instances", "GET", path("/api/v1/instances"), {"admin"}),
    Case("read an instance", "GET", lambda w: (f"/api/v1/instances/{_instance(w)}", {}), {"admin"}),
    Case("list incidents", "GET", path("/api/v1/incidents"), {"admin"}),
    Case("retry an instance", "POST", lambda w: (f"/api/v1/instances/{_instance(w)}/retry", {}), {"admin"},
         ok=409),  # running, not in incident: the administrator passes the check and is refused by the state
    Case("cancel an instance", "POST", lambda w: (f"/api/v1/instances/{_instance(w)}/cancel", {}), {"admin"}),
    Case("send a message", "POST", lambda w: ("/api/v1/messages", {"json": {
        "name": "extension_requested", "business_key": _reference(w, _at_execute(w)),
        "payload": {"new_deadline": "2026-06-01T00:00:00+00:00", "reason": "r", "requested_by": "housing.user"}}}),
         {"admin"}),
    Case("count instances by version", "GET", path("/api/v1/process-models/api_flow/instance-counts"), {"admin"}),
    Case("plan a migration", "POST", lambda w: ("/api/v1/process-models/two_steps/versions/1/migrations", {
        "json": {"to_version": _second_version(w, "two-steps.bpmn")}}), {"admin"}),
]
for _case in OPERATIONS:
    CASES.append(Case(_case.name, _case.method, _case.arrange, _case.allowed, ok=_case.ok, hidden_from=ENTITY_USERS))
if HAS_STANDARD:
    CASES.append(Case(
        "extend through an escalation", "POST",
        lambda w: (f"/api/v1/escalations/{_escalation(w, 'directive_standard')}/resolve",
                   {"json": {"action": "extend", "new_deadline": "PT24H", "note": "n"}}),
        {"admin", "supervisor"}, hidden_from=HOUSING_ONLY))


def expected_status(case: Case, who: str) -> int:
    if who in case.expect:
        return case.expect[who]
    if who == ANONYMOUS and not case.public:
        return 401
    if who in case.allowed:
        return case.ok
    return 404 if who in case.hidden_from else 403


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_access(world: World, case: Case, who: str):
    url, kwargs = case.arrange(world)
    response = world.call(None if who == ANONYMOUS else who, case.method, url, **kwargs)
    assert response.status_code == expected_status(case, who), f"{case.name} as {who}: {response.text[:500]}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
    if case.after:
        case.after(world)


@pytest.mark.parametrize("who", ["secretariat", "officer", "supervisor", "leader", "viewer", "transport.user"])
def test_bulk_rows_say_which_escalations_were_refused(world: World, who: str):
    mine = _escalation(world)
    response = world.call(who, "POST", "/api/v1/escalations/resolve",
                          json={"ids": [mine, 2_000_000_000], "action": "extend", "new_deadline": "PT1H"})
    assert response.status_code == 200, response.text
    rows = {row["id"]: row for row in response.json()["results"]}
    # A supervisor may extend, but this test process is not waiting for a supervisor's action: 409.
    expected = {"transport.user": 404, "supervisor": 409}.get(who, 403)
    assert rows[mine]["ok"] is False and rows[mine]["status"] == expected, rows[mine]
    assert rows[2_000_000_000]["status"] == 404


def test_lists_and_counts_never_show_another_entitys_directives(world: World):
    housing_directive = _directive(world)
    _escalation(world)
    for who, visible in (("housing.user", True), ("transport.user", False)):
        found = world.call(who, "GET", "/api/v1/directives", params={"limit": 200}).json()
        ids = {d["id"] for d in found["items"]}
        assert (housing_directive in ids) is visible
        if not visible:
            assert found["total"] == 0
            assert world.call(who, "GET", "/api/v1/escalations", params={"status": "all"}).json()["total"] == 0
            assert world.call(who, "GET", "/api/v1/directives", params={"q": "توجيه"}).json()["total"] == 0
            assert world.call(who, "GET", "/api/v1/tasks").json()["total"] == 0
            instance = world.call("admin", "GET", f"/api/v1/directives/{housing_directive}").json()
            audit_instance = next(e["subject"] for e in instance["timeline"] if e["subject"].startswith("instance:"))
            assert world.call(who, "GET", "/api/v1/audit", params={"subject": audit_instance}).status_code == 404


def test_the_rules_are_plain_functions(world: World):
    """The same rules, called directly as the UI and reports will."""
    from engine.people.users import get_user

    directive_id = _directive(world)
    item_id = _step(world, directive_id, "acknowledge")
    with world.db.reading() as session:
        housing, transport = get_user(session, "housing.user"), get_user(session, "transport.user")
        directive = directives.get(session, directive_id)
        assert access.can_see_directive(session, housing, directive)
        assert not access.can_see_directive(session, transport, directive)
        assert access.visible_directive(session, housing, directive.id).id == directive.id
        item = session.get(WorkItem, item_id)
        assert access.can_act_on_item(housing, item) and not access.can_act_on_item(transport, item)
        with pytest.raises(access.Forbidden):
            access.require(housing, "directive.create")
        assert "directive.create" not in access.permissions(housing)

