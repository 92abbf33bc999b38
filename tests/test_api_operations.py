"""The operations view over REST, on SQLite and PostgreSQL: instances, incidents (retried with corrected
variables), messages, migrations between versions, and the fixes found while trying them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.bpmn import process_models
from engine.foundation import clock
from engine.work import instances
from engine.work.work_items import WorkItem
from tests.conftest import SHIPPED_BPMN_DIR, deploy_shipped, read_model
from tests.model_changes import with_step_before_every_end
from tests.test_api_support import NOW, World, assert_problem, open_world


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        with built.db.transaction() as session:
            process_models.deploy(session, read_model("incident-bad-data.bpmn"), "incident-bad-data.bpmn", "tester")
        yield built


def reported(world: World, percent: int, **data) -> int:
    """An instance whose entity reported `percent` (0 breaks the next step: an incident)."""
    with world.db.transaction() as session:
        instance_id = instances.start(session, "incident_bad_data", {"elapsed_days": 4, **data}, "tester").id
        [item] = session.scalars(select(WorkItem).where(WorkItem.instance_id == instance_id)).all()
        instances.complete_task(session, item.id, {"percent": percent}, "housing.user")
    return instance_id


def failed_report(world: World) -> int:
    return reported(world, 0)


def test_an_incident_is_found_read_corrected_and_retried(world: World):
    instance_id = failed_report(world)
    incidents = world.call("admin", "GET", "/api/v1/incidents").json()
    assert incidents["total"] == 1
    [listed] = incidents["items"]
    assert listed["id"] == instance_id and listed["incident_element"] == "remaining_days"
    assert "division by zero" in listed["incident_message"]
    detail = world.call("admin", "GET", f"/api/v1/instances/{instance_id}").json()
    assert detail["status"] == "incident" and detail["variables"] == {"elapsed_days": 4, "percent": 0}
    assert "report" in detail["done"] and detail["current"] == ["remaining_days"]
    assert [e["action"] for e in detail["history"]][-1] == "instance.incident"

    refused = world.call("admin", "POST", f"/api/v1/instances/{instance_id}/retry",
                         json={"variables": {"elapsed_days": 4, "percent": "half"}})
    problem = assert_problem(refused, 422, "invalid-input")
    assert problem["errors"] or problem["detail"]
    again = world.call("admin", "POST", f"/api/v1/instances/{instance_id}/retry",
                       json={"variables": {"elapsed_days": 5, "percent": 0}})
    assert assert_problem(again, 409)["code"] == "incident-persists"

    fixed = world.call("admin", "POST", f"/api/v1/instances/{instance_id}/retry",
                       json={"variables": {"elapsed_days": 4, "percent": 50}})
    assert fixed.status_code == 200, fixed.text
    body = fixed.json()
    assert body["status"] == "running" and body["waiting_messages"] == ["progress_checked"]
    corrected = [e for e in body["history"] if e["action"] == "instance.variables_corrected"]
    assert corrected[0]["payload"]["before"] == {"percent": 0} and corrected[0]["payload"]["after"] == {"percent": 50}
    assert world.call("admin", "GET", "/api/v1/incidents").json()["total"] == 0


def test_a_plain_retry_and_a_cancel(world: World):
    first, second = failed_report(world), failed_report(world)
    response = world.call("admin", "POST", f"/api/v1/instances/{first}/retry")
    assert response.status_code == 200 and response.json()["status"] == "incident"  # the same data fails again
    response = world.call("admin", "POST", f"/api/v1/instances/{second}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert_problem(world.call("admin", "POST", f"/api/v1/instances/{second}/cancel"), 409)
    assert_problem(world.call("admin", "POST", f"/api/v1/instances/{second}/retry"), 409)
    assert_problem(world.call("admin", "GET", "/api/v1/instances/999999"), 404)


def test_instances_are_filtered_by_model_version_status_key_directive_and_start(world: World):
    directive = world.create_directive(launch=True)
    clock.set_now(NOW + timedelta(hours=2))
    failed = failed_report(world)
    everything = world.call("admin", "GET", "/api/v1/instances").json()
    assert everything["total"] == 2 and everything["items"][0]["id"] == failed

    def ids(**params):
        response = world.call("admin", "GET", "/api/v1/instances", params=params)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    [flow] = ids(model="api_flow")
    assert ids(model="api_flow", version=1) == [flow] and ids(model="api_flow", version=2) == []
    assert ids(status="incident") == [failed] and ids(status="running") == [flow]
    assert ids(business_key=directive["reference"]) == [flow]
    assert ids(directive=directive["id"]) == [flow]
    assert ids(started_from=(NOW + timedelta(hours=1)).isoformat()) == [failed]
    assert ids(started_until=(NOW + timedelta(hours=1)).isoformat()) == [flow]
    detail = world.call("admin", "GET", f"/api/v1/instances/{flow}").json()
    assert detail["directive_id"] == directive["id"]
    assert [s["element_id"] for s in detail["open_steps"]] == ["acknowledge"]
    assert_problem(world.call("admin", "GET", "/api/v1/instances", params={"version": 1}), 422)
    assert_problem(world.call("admin", "GET", "/api/v1/instances", params={"status": "lost"}), 422)


def test_a_message_over_rest(world: World):
    reported(world, 50, entity="housing")
    transport = reported(world, 50, entity="transport")
    nobody = world.call("admin", "POST", "/api/v1/messages", json={"name": "no_such_message"})
    assert_problem(nobody, 404)
    several = world.call("admin", "POST", "/api/v1/messages", json={"name": "progress_checked"})
    assert_problem(several, 409)
    response = world.call("admin", "POST", "/api/v1/messages", json={
        "name": "progress_checked", "correlation": {"entity": "transport"}, "payload": {"checked_by": "officer"}})
    assert response.status_code == 200, response.text
    assert [(i["id"], i["status"]) for i in response.json()["delivered"]] == [(transport, "completed")]
    bad = world.call("admin", "POST", "/api/v1/messages", json={"name": "progress_checked", "payload": {"_x": 1}})
    assert_problem(bad, 422)
    assert_problem(world.call("admin", "POST", "/api/v1/messages", json={"name": "x", "extra": 1}), 422)


def test_a_version_migration_over_rest_dry_run_first(world: World):
    standard = SHIPPED_BPMN_DIR / "directive-standard.bpmn"
    with world.db.transaction() as session:
        deploy_shipped(session, "directive-standard.bpmn")
    first = world.create_directive(launch=True, process_model_key="directive_standard")
    second = world.create_directive(launch=True, process_model_key="directive_standard")
    with world.db.transaction() as session:
        process_models.deploy(session, with_step_before_every_end(standard.read_bytes()), "v2.bpmn", "tester")
    counts = world.call("admin", "GET", "/api/v1/process-models/directive_standard/instance-counts").json()
    assert counts == [{"version": 1, "running": 2, "incident": 0}, {"version": 2, "running": 0, "incident": 0}]

    url = "/api/v1/process-models/directive_standard/versions/1/migrations"
    dry = world.call("admin", "POST", url, json={"to_version": 2})
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    assert plan["dry_run"] is True and plan["migrated"] == 0 and plan["refused"] == 0
    assert "v2_before_completed" in plan["added"] and plan["removed"] == []
    assert [row["possible"] for row in plan["instances"]] == [True, True]
    assert "acknowledge" in [m["element_id"] for m in plan["instances"][0]["moves"]]
    still = world.call("admin", "GET", "/api/v1/process-models/directive_standard/instance-counts").json()
    assert still[0]["running"] == 2, "a dry run changes nothing"

    one = world.call("admin", "POST", url, json={"to_version": 2, "dry_run": False,
                                                 "instance_ids": [_instance_of(world, first["id"])]})
    assert one.status_code == 200 and one.json()["migrated"] == 1, one.text
    rest = world.call("admin", "POST", url, json={"to_version": 2, "dry_run": False})
    assert rest.json()["migrated"] == 1
    counts = world.call("admin", "GET", "/api/v1/process-models/directive_standard/instance-counts").json()
    assert counts == [{"version": 1, "running": 0, "incident": 0}, {"version": 2, "running": 2, "incident": 0}]
    steps = world.call("housing.user", "GET", f"/api/v1/directives/{second['id']}").json()["steps"]
    assert [s["element_id"] for s in steps] == ["acknowledge"]
    assert_problem(world.call("admin", "POST", url, json={"to_version": 1}), 422)
    assert_problem(world.call("admin", "POST", url, json={"to_version": 9}), 404)


def _instance_of(world: World, directive_id: int) -> int:
    from engine.directives import directives

    with world.db.reading() as session:
        return directives.get(session, directive_id).instance_id


@pytest.mark.parametrize("who", ["secretariat", "officer", "supervisor", "leader", "viewer"])
def test_only_administrators_operate_and_entity_users_are_told_nothing_exists(world: World, who: str):
    instance_id = failed_report(world)
    for method, url, body in (("GET", "/api/v1/instances", None), ("GET", f"/api/v1/instances/{instance_id}", None),
                              ("GET", "/api/v1/incidents", None),
                              ("POST", f"/api/v1/instances/{instance_id}/retry", None),
                              ("POST", "/api/v1/messages", {"name": "progress_checked"})):
        assert_problem(world.call(who, method, url, json=body), 403)
        assert_problem(world.call("housing.user", method, url, json=body), 404)


# --- fixes found while trying the operations view ----------------------------------------------------------

def test_season_holidays_are_set_over_json(world: World):
    response = world.call("admin", "PATCH", "/api/v1/seasons/1447", json={"holidays": ["2026-05-27", "2026-05-28"]})
    assert response.status_code == 200, response.text
    assert response.json()["holidays"] == ["2026-05-27", "2026-05-28"]
    created = world.call("admin", "POST", "/api/v1/seasons", json={
        "hijri_year": 1448, "starts_on": "2027-04-08", "ends_on": "2027-07-06", "holidays": ["2027-05-16"]})
    assert created.status_code == 201 and created.json()["holidays"] == ["2027-05-16"], created.text
    for bad in ([1_780_000_000], ["27/05/2026"], ["2026-02-30"]):
        assert_problem(world.call("admin", "PATCH", "/api/v1/seasons/1447", json={"holidays": bad}), 422)
    seasons = {s["hijri_year"]: s for s in world.call("admin", "GET", "/api/v1/seasons").json()}
    assert seasons[1447]["holidays"] == ["2026-05-27", "2026-05-28"], "a refused change changes nothing"


def test_a_supervisor_chooses_the_level_an_escalation_goes_to(world: World):
    directive = world.escalated_standard_directive()
    [raised] = world.call("supervisor", "GET", "/api/v1/escalations").json()["items"]
    assert raised["level"] == 1
    url = f"/api/v1/escalations/{raised['id']}/resolve"
    for level in (1, 6):
        assert_problem(world.call("supervisor", "POST", url, json={"action": "escalate", "level": level}), 422)
    response = world.call("supervisor", "POST", url, json={"action": "escalate", "level": 3, "note": "عاجل"})
    assert response.status_code == 200, response.text
    board = world.call("supervisor", "GET", "/api/v1/escalations", params={"status": "all"}).json()["items"]
    assert sorted(e["level"] for e in board) == [1, 3]
    assert world.call("supervisor", "GET", f"/api/v1/directives/{directive['id']}").json()["escalation_level"] == 3


# --- decision tables ------------------------------------------------------------------------------------------

def _upload(world: World, who: str, content: bytes, name: str = "ladder-by-days.dmn"):
    return world.call(who, "POST", "/api/v1/decisions", files={"file": (name, content, "application/xml")})


def test_decision_tables_over_rest(world: World):
    ladder = read_model("ladder-by-days.dmn")
    created = _upload(world, "admin", ladder)
    assert created.status_code == 201 and created.json()["decision"]["version"] == 1, created.text
    assert _upload(world, "admin", ladder).status_code == 200
    assert_problem(_upload(world, "admin", ladder.replace(b"<text>kind</text>", b"<text>__class__</text>")), 422)
    assert_problem(_upload(world, "secretariat", ladder), 403)
    assert [d["key"] for d in world.call("viewer", "GET", "/api/v1/decisions").json()] == ["ladder_by_days"]
    detail = world.call("admin", "GET", "/api/v1/decisions/ladder_by_days").json()
    assert detail["hit_policy"] == "FIRST" and len(detail["rules"]) == 4
    assert detail["rules"][0] == {"inputs": ['"urgent"', "-", "-"], "outputs": ['"PT2H"', '"PT2H"']}
    xml = world.call("admin", "GET", "/api/v1/decisions/ladder_by_days/versions/1/xml")
    assert xml.status_code == 200 and xml.content == ladder
    assert_problem(world.call("admin", "GET", "/api/v1/decisions/nothing"), 404)
    model = world.call("admin", "POST", "/api/v1/process-models",
                       files={"file": ("ruled.bpmn", read_model("ruled.bpmn"), "application/xml")})
    assert model.status_code == 201, model.text
