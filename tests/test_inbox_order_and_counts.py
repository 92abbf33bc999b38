"""The inbox's order (due first, undated last, then by id) and its totals, counted on work_item alone: the
API's filters that need the directive still count right, and the page caps its count of done steps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from api.web.pages import work
from engine.foundation import clock
from engine.work.work_items import WorkItem
from tests.test_api_support import World, open_world
from tests.ui_support import signed_in

HOUSING = "housing.user"


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


def _acknowledge_steps(world: World, count: int, **overrides) -> list[int]:
    directives = [world.create_directive(deadline="PT6H", **overrides)["id"] for _ in range(count)]
    return [world.open_step(directive_id, "acknowledge") for directive_id in directives]


def _set_due(world: World, item_id: int, hours: float | None) -> None:
    due = None if hours is None else clock.now() + timedelta(hours=hours)
    with world.db.transaction() as session:
        session.execute(update(WorkItem).where(WorkItem.id == item_id).values(due_at=due))


def test_the_inbox_lists_the_earliest_due_first_and_undated_steps_last(world: World):
    steps = _acknowledge_steps(world, 5)
    for item_id, hours in zip(steps, [None, 30, -2, None, 5], strict=True):
        _set_due(world, item_id, hours)
    expected = [steps[2], steps[4], steps[1], steps[0], steps[3]]
    listed = world.call(HOUSING, "GET", "/api/v1/tasks").json()
    assert [task["id"] for task in listed["items"]] == expected and listed["total"] == 5
    paged = [world.call(HOUSING, "GET", f"/api/v1/tasks?limit=2&offset={offset}").json() for offset in (0, 2, 4)]
    assert [task["id"] for page in paged for task in page["items"]] == expected
    assert [page["total"] for page in paged] == [5, 5, 5]
    page = signed_in(world, HOUSING, "en").get("/inbox").text
    assert [page.index(f"/steps/{item_id}\"") for item_id in expected] == sorted(
        page.index(f"/steps/{item_id}\"") for item_id in expected)


def test_totals_of_full_pages_count_with_the_filters_that_need_the_directive(world: World):
    high = _acknowledge_steps(world, 3, priority="high")
    _acknowledge_steps(world, 2)
    first = world.call(HOUSING, "GET", "/api/v1/tasks?limit=1").json()
    assert first["total"] == 5 and len(first["items"]) == 1
    by_priority = world.call(HOUSING, "GET", "/api/v1/tasks?priority=high&limit=1").json()
    assert by_priority["total"] == 3 and by_priority["items"][0]["id"] in high
    directive_id = world.create_directive(deadline="PT6H")["id"]
    step = world.open_step(directive_id, "acknowledge")
    one = world.call(HOUSING, "GET", f"/api/v1/tasks?directive={directive_id}&limit=1").json()
    assert one["total"] == 1 and [task["id"] for task in one["items"]] == [step]
    _set_due(world, high[0], -1)
    overdue = world.call(HOUSING, "GET", "/api/v1/tasks?overdue=true&limit=1").json()
    assert overdue["total"] == 1 and overdue["items"][0]["id"] == high[0]
    assert world.call("transport.user", "GET", "/api/v1/tasks?limit=1").json()["total"] == 0


def test_the_page_counts_done_steps_up_to_its_cap(world: World, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(work, "DONE_COUNT_CAP", 2)
    steps = _acknowledge_steps(world, 3)
    browser = signed_in(world, HOUSING, "en")
    assert '<span class="kpi-value">3</span><span class="kpi-label">Open steps' in browser.get("/inbox").text
    for item_id in steps:
        response = world.call(HOUSING, "POST", f"/api/v1/tasks/{item_id}/complete", json={"data": {}})
        assert response.status_code == 200, response.text
    page = browser.get("/inbox").text
    assert '<span class="kpi-value">2+</span><span class="kpi-label">Done' in page
    done = browser.get("/inbox?show=done").text
    assert all(f"/steps/{item_id}\"" in done for item_id in steps)
