"""A lifecycle in three requests: a launch answers with the steps it opened and a completion with the
instance's next open steps, each with its form and whether the caller may work it, so no client reads the
inbox between them; on SQLite and PostgreSQL, on the two-step model and on the shipped standard model (whose
service tasks run under a savepoint: its open steps are read, not remembered)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.work.work_items import OPEN, WorkItem
from tests.conftest import deploy_shipped
from tests.test_api_support import World, open_world


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


def _open_in_database(world: World, instance_id: int) -> list[int]:
    with world.db.reading() as session:
        return list(session.scalars(select(WorkItem.id).where(WorkItem.instance_id == instance_id,
                                                              WorkItem.status == OPEN).order_by(WorkItem.id)))


def test_a_two_step_lifecycle_in_three_requests(world: World):
    launched = world.create_directive(process_model_key="two_steps")
    [first] = launched["open_steps"]
    assert first["element_id"] == "first" and first["assignee_entity"] == "housing"
    assert first["form_schema"] is not None and first["can_act"] is False  # the secretariat does not work it
    assert [first["id"]] == _open_in_database(world, first["instance_id"])

    done = world.call("housing.user", "POST", f"/api/v1/tasks/{first['id']}/complete", json={"data": {"note": "تم"}})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "completed" and body["id"] == first["id"]
    [second] = body["next_steps"]
    assert second["element_id"] == "second" and second["assignee_role"] == "follow_up_officer"
    assert second["can_act"] is False and [second["id"]] == _open_in_database(world, first["instance_id"])

    last = world.call("officer", "POST", f"/api/v1/tasks/{second['id']}/complete", json={"data": {}})
    assert last.status_code == 200, last.text
    assert last.json()["next_steps"] == []
    directive = world.call("secretariat", "GET", f"/api/v1/directives/{launched['id']}").json()
    assert directive["status"] == "completed"


def test_the_caller_is_told_which_next_step_is_theirs(world: World):
    with world.db.transaction() as session:
        deploy_shipped(session, "directive-standard.bpmn")
    launched = world.create_directive(process_model_key="directive_standard", deadline="P3D")
    [acknowledge] = [s for s in launched["open_steps"] if s["element_id"] == "acknowledge"]
    assert {s["id"] for s in launched["open_steps"]} == set(_open_in_database(world, acknowledge["instance_id"]))
    body = world.call("housing.user", "POST", f"/api/v1/tasks/{acknowledge['id']}/complete",
                      json={"data": {}}).json()
    mine = [s for s in body["next_steps"] if s["can_act"]]
    assert [s["element_id"] for s in mine] == ["execute"] and mine[0]["form_schema"]["properties"]
    assert {s["id"] for s in body["next_steps"]} == set(_open_in_database(world, acknowledge["instance_id"]))


def test_a_draft_opens_no_step_and_its_launch_answers_with_them(world: World):
    draft = world.create_directive(launch=False, process_model_key="two_steps")
    assert draft["open_steps"] == [] and draft["status"] == "draft"
    launched = world.call("secretariat", "POST", f"/api/v1/directives/{draft['id']}/launch")
    assert launched.status_code == 200, launched.text
    assert [s["element_id"] for s in launched.json()["open_steps"]] == ["first"]


def test_the_openapi_document_names_the_answers(world: World):
    schemas = world.client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert "next_steps" in schemas["TaskCompleted"]["properties"]
    assert "open_steps" in schemas["DirectiveLaunched"]["properties"]
