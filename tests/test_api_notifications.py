"""The notification centre over the REST API (issue 21): the caller's own in-app notifications, newest first,
paged and filtered; the unread count; marking one or all read. Notifications reach the outbox through the
engine's own path (`notifications.queue`, or a directive whose deadline passes) and the delivery fan-out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.delivery import notification_delivery as nd
from engine.directives.directives import Directive
from engine.foundation import clock
from engine.work import notifications
from tests.test_api_support import NOW, World, assert_problem, open_world

ROUTES = [("GET", "/api/v1/notifications"), ("GET", "/api/v1/notifications/unread-count"),
          ("POST", "/api/v1/notifications/1/read"), ("POST", "/api/v1/notifications/read-all")]


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


def notify(world: World, directive_id: int, count: int, *, entity: str | None = "housing", role: str | None = None,
           template: str = "reminder") -> None:
    """`count` notifications about a directive, a minute apart, queued and fanned out as the workers do."""
    with world.db.transaction() as session:
        instance_id = session.scalar(select(Directive.instance_id).where(Directive.id == directive_id))
        for n in range(count):
            notifications.queue(session, instance_id, f"test:{directive_id}:{template}:{role}:{entity}:{n}", template,
                                role, entity, {"step": f"Step {n + 1}"}, created_at=NOW + timedelta(minutes=n))
    with world.db.transaction() as session:
        nd.fan_out(session)


def listed(world: World, username: str, **params) -> dict:
    response = world.call(username, "GET", "/api/v1/notifications", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def unread(world: World, username: str) -> int:
    response = world.call(username, "GET", "/api/v1/notifications/unread-count")
    assert response.status_code == 200, response.text
    return response.json()["unread"]


def test_the_list_is_newest_first_paged_and_links_to_the_step_and_the_directive(world: World):
    directive = world.create_directive(launch=True)
    notify(world, directive["id"], 3)
    step = world.open_step(directive["id"], "acknowledge")

    page = listed(world, "housing.user")
    assert page["total"] == 3 and len(page["items"]) == 3
    stamps = [item["created_at"] for item in page["items"]]
    assert stamps == sorted(stamps, reverse=True)
    first = page["items"][0]
    assert first["template"] == "reminder" and first["read"] is False and first["read_at"] is None
    assert directive["reference"] in first["subject"] and "Step 3" in first["body"]  # the newest, in Arabic
    assert (first["step_id"], first["directive_id"]) == (step, directive["id"])
    assert first["links"] == {"step": f"/api/v1/tasks/{step}", "directive": f"/api/v1/directives/{directive['id']}"}
    assert world.call("housing.user", "GET", first["links"]["step"]).status_code == 200

    one, two = listed(world, "housing.user", limit=2), listed(world, "housing.user", limit=2, offset=2)
    assert (one["total"], len(one["items"]), two["total"], len(two["items"])) == (3, 2, 3, 1)
    assert [i["id"] for i in one["items"] + two["items"]] == [i["id"] for i in page["items"]]
    assert_problem(world.call("housing.user", "GET", "/api/v1/notifications", params={"limit": 0}), 422)


def test_unread_count_filter_mark_one_and_mark_all(world: World):
    directive = world.create_directive(launch=True)
    notify(world, directive["id"], 3)
    assert unread(world, "housing.user") == 3
    newest = listed(world, "housing.user")["items"][0]

    clock.set_now(NOW + timedelta(hours=1))
    response = world.call("housing.user", "POST", f"/api/v1/notifications/{newest['id']}/read")
    assert response.status_code == 200, response.text
    assert response.json()["read"] is True and response.json()["read_at"].startswith("2026-05-20T07:00")
    assert world.call("housing.user", "POST", f"/api/v1/notifications/{newest['id']}/read").status_code == 200
    assert unread(world, "housing.user") == 2
    only_unread = listed(world, "housing.user", unread="true")
    assert only_unread["total"] == 2 and newest["id"] not in [i["id"] for i in only_unread["items"]]
    assert listed(world, "housing.user")["total"] == 3  # read ones stay in "all"

    response = world.call("housing.user", "POST", "/api/v1/notifications/read-all")
    assert response.status_code == 200 and response.json() == {"marked": 2}
    assert unread(world, "housing.user") == 0 and listed(world, "housing.user", unread="true")["total"] == 0
    assert world.call("housing.user", "POST", "/api/v1/notifications/read-all").json() == {"marked": 0}


def test_a_user_only_sees_and_marks_their_own_notifications(world: World):
    directive = world.create_directive(launch=True)
    notify(world, directive["id"], 2)  # to the housing entity
    notify(world, directive["id"], 1, entity=None, role="follow_up_officer", template="submitted")
    housing = listed(world, "housing.user")["items"]
    assert len(housing) == 2 and {i["template"] for i in housing} == {"reminder"}
    assert listed(world, "transport.user") == {"items": [], "total": 0, "limit": 50, "offset": 0}
    officer = listed(world, "officer")["items"]
    assert [i["template"] for i in officer] == ["submitted"]
    assert officer[0]["step_id"] is None  # the open step is the entity's, not the officer's
    assert officer[0]["links"]["directive"] == f"/api/v1/directives/{directive['id']}"

    for stranger in ("transport.user", "officer", "admin"):
        body = assert_problem(world.call(stranger, "POST", f"/api/v1/notifications/{housing[0]['id']}/read"), 404,
                              "not-found")
        assert "inbox" in body["detail"]
        assert world.call(stranger, "POST", "/api/v1/notifications/read-all").json()["marked"] in (0, 1)
    assert unread(world, "housing.user") == 2  # nobody else's marking touched them
    assert_problem(world.call("housing.user", "POST", "/api/v1/notifications/987654/read"), 404)


def test_an_escalation_raised_by_the_timer_worker_reaches_the_supervisors_bell(world: World):
    directive = world.escalated_standard_directive()  # the deadline passed: level 1, to the supervisors
    with world.db.transaction() as session:
        nd.fan_out(session)
    items = listed(world, "supervisor")["items"]
    escalation = [i for i in items if i["template"] == "escalation"]
    assert len(escalation) == 1 and escalation[0]["directive_id"] == directive["id"]
    assert directive["reference"] in escalation[0]["subject"]
    assert unread(world, "supervisor") == len(items) and unread(world, "housing.user") == len(
        listed(world, "housing.user")["items"])


def test_every_route_wants_a_signed_in_caller(world: World):
    for method, url in ROUTES:
        response = world.call(None, method, url)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_routes_are_documented_with_their_models(world: World):
    schema = world.client.get("/api/v1/openapi.json").json()
    paths = schema["paths"]
    assert {"/api/v1/notifications", "/api/v1/notifications/unread-count", "/api/v1/notifications/read-all",
            "/api/v1/notifications/{notification_id}/read"} <= set(paths)
    assert "404" in paths["/api/v1/notifications/{notification_id}/read"]["post"]["responses"]
    assert {"NotificationOut", "UnreadCount", "MarkedRead", "Page_NotificationOut_"} <= set(
        schema["components"]["schemas"])
