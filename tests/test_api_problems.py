"""Problem details for every kind of refusal; hostile and malformed input is 4xx or plain text, never 5xx."""

from __future__ import annotations

import json

import pytest

from tests.conftest import BPMN_DIR
from tests.test_api_support import World, assert_problem, open_world

RLO, LRI, PDI = "\u202e", "\u2066", "\u2069"


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


def test_problem_details_for_404_403_409_422(world: World):
    body = assert_problem(world.call("viewer", "GET", "/api/v1/directives/424242"), 404, "not-found")
    assert body["detail"] == "no directive 424242" and body["instance"] == "/api/v1/directives/424242"
    assert body["code"] == "not-found"

    body = assert_problem(world.call("viewer", "POST", "/api/v1/directives", json={
        "title": "t", "kind": "decision", "responsible_entity": "housing", "deadline": "PT6H"}), 403, "forbidden")
    assert "viewer" in body["detail"]

    draft = world.create_directive(launch=False)
    world.call("secretariat", "POST", f"/api/v1/directives/{draft['id']}/launch")
    body = assert_problem(world.call("secretariat", "POST", f"/api/v1/directives/{draft['id']}/launch"), 409,
                          "conflict")
    assert "launched already" in body["detail"]

    body = assert_problem(world.call("secretariat", "POST", "/api/v1/directives", json={
        "title": "", "kind": "memo", "responsible_entity": "housing"}), 422, "invalid-input")
    fields = {error["field"] for error in body["errors"]}
    assert {"body:title", "body:kind", "body:deadline"} <= fields

    body = assert_problem(world.call("secretariat", "POST", "/api/v1/directives", json={
        "title": "t", "kind": "decision", "responsible_entity": "ministry_of_magic", "deadline": "PT6H",
        "process_model_key": "api_flow"}), 422, "invalid-input")
    assert body["detail"] == "unknown entity: ministry_of_magic"


def test_unknown_routes_and_methods_are_problems_too(world: World):
    assert_problem(world.call("viewer", "GET", "/api/v1/no-such-thing"), 404, "not-found")
    assert_problem(world.call("viewer", "DELETE", "/api/v1/directives"), 405, "method-not-allowed")


def test_a_refused_form_names_every_error(world: World):
    directive = world.create_directive()
    step = world.open_step(directive["id"], "acknowledge")
    world.call("housing.user", "POST", f"/api/v1/tasks/{step}/complete", json={"data": {}})
    execute = world.open_step(directive["id"], "execute")
    body = assert_problem(world.call("housing.user", "POST", f"/api/v1/tasks/{execute}/complete",
                                     json={"data": {"summary": 42, "extra": True}}), 422, "invalid-input")
    assert body["detail"] == "the form data does not match the step's form" and len(body["errors"]) == 2
    body = assert_problem(world.call("housing.user", "POST", f"/api/v1/tasks/{execute}/complete",
                                     json={"data": {"__class__": 1, "len": 2}}), 422)
    assert "__class__" in body["detail"] and "len" in body["detail"]
    body = assert_problem(world.call("housing.user", "POST", f"/api/v1/tasks/{execute}/complete",
                                     json={"data": {"summary": "x", "evidence": [99999]}}), 422)
    assert "99999" in body["detail"]


def test_a_rejected_model_names_its_element(world: World):
    hostile = (BPMN_DIR / "hostile" / "condition-rce.bpmn").read_bytes()
    response = world.call("admin", "POST", "/api/v1/process-models",
                          files={"file": ("condition-rce.bpmn", hostile, "application/xml")})
    body = assert_problem(response, 422, "model-rejected")
    assert body["code"] == "model-rejected" and body["element_id"], body
    response = world.call("admin", "POST", "/api/v1/process-models",
                          files={"file": ("../../x.bpmn", b"<not xml", "application/xml")})
    assert_problem(response, 422)


def test_nul_in_search_is_refused(world: World):
    assert_problem(world.call("admin", "GET", "/api/v1/directives", params={"q": "a\x00b"}), 422)


def test_audit_subjects_are_checked_not_interpolated(world: World):
    for subject in ("directive:1 OR 1=1", "directive:'", "instance:-1", "directive:99999999999"):
        response = world.call("housing.user", "GET", "/api/v1/audit", params={"subject": subject})
        assert response.status_code in (403, 404), (subject, response.text)


def test_right_to_left_overrides_in_titles_are_kept_as_text(world: World):
    title = f"تنبيه {RLO}txt.exe{PDI} {LRI}مهم{PDI}"
    created = world.create_directive(title=title, title_en=f"Invoice {RLO}fdp.exe")
    assert created["title"] == title
    fetched = world.call("housing.user", "GET", f"/api/v1/directives/{created['id']}").json()
    assert fetched["title"] == title and fetched["title_en"] == f"Invoice {RLO}fdp.exe"
    found = world.call("viewer", "GET", "/api/v1/directives", params={"q": RLO}).json()
    assert found["total"] == 1
    assert json.loads(world.call("viewer", "GET", f"/api/v1/directives/{created['id']}").content)["title"] == title


def test_deeply_nested_form_data_is_refused(world: World):
    directive = world.create_directive()
    step = world.open_step(directive["id"], "acknowledge")
    nested: object = 1
    for _ in range(300):
        nested = {"a": [nested]}
    response = world.call("housing.user", "POST", f"/api/v1/tasks/{step}/complete", json={"data": {"n": nested}})
    assert_problem(response, 422)
    response = world.call("housing.user", "POST", f"/api/v1/tasks/{step}/complete/upload",
                          data={"data": json.dumps({"n": nested})}, files=[("files", ("a.txt", b"hi", "text/plain"))])
    assert_problem(response, 422)
    response = world.call("housing.user", "POST", f"/api/v1/tasks/{step}/complete",
                          json={"data": {"big": "x" * 70_000}})
    assert_problem(response, 422)


def test_multipart_form_data_must_be_json(world: World):
    directive = world.create_directive()
    step = world.open_step(directive["id"], "acknowledge")
    for data in ("{not json", "[]", '"text"', '{"_private": 1}'):
        response = world.call("housing.user", "POST", f"/api/v1/tasks/{step}/complete/upload", data={"data": data},
                              files=[("files", ("a.txt", b"hello", "text/plain"))])
        assert_problem(response, 422)


def test_escalation_actions_need_their_fields(world: World):
    for body in ({"action": "extend"}, {"action": "reassign"}, {"action": "close"}, {"action": "fly"},
                 {"action": "extend", "new_deadline": ""}):
        response = world.call("supervisor", "POST", "/api/v1/escalations/1/resolve", json=body)
        assert_problem(response, 422)
    assert_problem(world.call("supervisor", "POST", "/api/v1/escalations/1/resolve",
                              json={"action": "comment", "note": "x"}), 404)
    assert_problem(world.call("supervisor", "POST", "/api/v1/escalations/resolve",
                              json={"ids": list(range(1, 300)), "action": "comment", "note": "x"}), 422)
