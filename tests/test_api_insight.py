"""Insight over REST, on SQLite and PostgreSQL: the heatmap of a model version and the forecast, with the
access rules (an entity user sees their own entity's forecast and no heatmap)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.directives import directives
from engine.foundation import clock
from engine.work import instances
from tests.conftest import deploy_shipped
from tests.test_api_support import NOW, World, assert_problem, open_world


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        with built.db.transaction() as session:
            deploy_shipped(session, "directive-standard.bpmn")
        yield built


def _standard(world: World, deadline: str = "PT30H", entity: str = "housing") -> dict:
    return world.create_directive(process_model_key="directive_standard", deadline=deadline,
                                  responsible_entity=entity)


def test_the_heatmap_gives_each_step_of_the_version_its_figures(world: World):
    directive = _standard(world)
    clock.set_now(NOW + timedelta(hours=3))
    step = world.open_step(directive["id"], "acknowledge")
    assert world.call("housing.user", "POST", f"/api/v1/tasks/{step}/complete",
                      json={"data": {"note": "received"}}).status_code == 200
    answer = world.call("supervisor", "GET", "/api/v1/insight/heatmap",
                        params={"model": "directive_standard", "season": 1447, "entity": "housing"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model"], body["version"], body["measure"]) == ("directive_standard", 1, "overdue")
    steps = {s["element_id"]: s for s in body["steps"]}
    assert {"acknowledge", "execute", "verify", "review_extension", "supervisor_decision"} <= set(steps)
    assert steps["acknowledge"]["name_ar"] == "استلام التوجيه والإقرار به"
    assert (steps["acknowledge"]["opened"], steps["acknowledge"]["completed"]) == (1, 1)
    assert steps["acknowledge"]["p50_hours"] == pytest.approx(3.0)
    assert (steps["execute"]["opened"], steps["execute"]["open_now"]) == (1, 1)
    assert steps["verify"]["opened"] == 0 and steps["verify"]["band"] == 0
    by_open = world.call("admin", "GET", "/api/v1/insight/heatmap",
                         params={"model": "directive_standard", "measure": "open"}).json()
    assert {s["element_id"]: s["band"] for s in by_open["steps"]}["execute"] == 3


def test_bad_heatmap_requests_are_refused_with_a_problem(world: World):
    assert_problem(world.call("supervisor", "GET", "/api/v1/insight/heatmap", params={"model": "nope"}), 404)
    assert_problem(world.call("supervisor", "GET", "/api/v1/insight/heatmap",
                              params={"model": "directive_standard", "measure": "colour"}), 422)
    assert_problem(world.call("supervisor", "GET", "/api/v1/insight/heatmap",
                              params={"model": "directive_standard", "season": 1400}), 404)
    assert_problem(world.call("housing.user", "GET", "/api/v1/insight/heatmap",
                              params={"model": "directive_standard"}), 403)
    assert world.call(None, "GET", "/api/v1/insight/heatmap", params={"model": "directive_standard"}).status_code == 401


def test_the_forecast_lists_what_escalates_soon_scoped_to_an_entity_user(world: World):
    housing = _standard(world, "PT20H")
    _standard(world, "PT50H", entity="transport")
    answer = world.call("supervisor", "GET", "/api/v1/insight/forecast")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {(e["entity"], e["level"]): (e["within_24h"], e["within_72h"]) for e in body["escalations"]} == {
        ("housing", 1): (1, 1), ("housing", 2): (0, 1), ("transport", 1): (0, 1)}
    assert body["coming"][0]["directive_id"] == housing["id"] and body["coming"][0]["level"] == 1
    assert {s["element_id"] for s in body["steps"]} == {"acknowledge"}  # both acknowledgements are due soon
    own = world.call("housing.user", "GET", "/api/v1/insight/forecast").json()
    assert own["entity"] == "housing" and {e["entity"] for e in own["escalations"]} == {"housing"}
    assert {s["entity"] for s in own["steps"]} == {"housing"}
    assert_problem(world.call("housing.user", "GET", "/api/v1/insight/forecast", params={"entity": "transport"}), 404)
    just_transport = world.call("viewer", "GET", "/api/v1/insight/forecast", params={"entity": "transport"}).json()
    assert {e["entity"] for e in just_transport["escalations"]} == {"transport"}


def test_a_closed_directive_leaves_the_forecast(world: World):
    directive = _standard(world, "PT20H")
    assert world.call("secretariat", "POST", f"/api/v1/directives/{directive['id']}/cancel",
                      json={"reason": "no longer needed"}).status_code == 200
    body = world.call("supervisor", "GET", "/api/v1/insight/forecast").json()
    assert body["escalations"] == [] and body["coming"] == [] and body["steps"] == []
    with world.db.reading() as session:
        instance_id = directives.get(session, directive["id"]).instance_id
        assert instances.get_instance(session, instance_id).waiting_escalations == ""


def test_a_step_past_due_is_counted_apart_from_those_that_may_still_make_it(world: World):
    late = _standard(world, "PT2H")
    _standard(world, "PT30H", entity="transport")
    clock.set_now(NOW + timedelta(hours=3))  # the first acknowledgement is an hour past due
    body = world.call("supervisor", "GET", "/api/v1/insight/forecast").json()
    assert body["past_due"] == 1
    assert [(s["entity"], s["element_id"]) for s in body["steps"]] == [("transport", "acknowledge")]
    assert late["id"] not in {s["directive_id"] for s in body["steps"]}
    assert world.call("transport.user", "GET", "/api/v1/insight/forecast").json()["past_due"] == 0
