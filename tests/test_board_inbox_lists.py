"""The inbox and the escalation board at a season's volume, without a browser, on SQLite and PostgreSQL: text
search however the Arabic is typed, sorts in both directions with a stable tie-break (pages never repeat or skip
a row), validated parameters (problem details, the OpenAPI document), bulk actions on every escalation that
matches the filters (confirmed with their count; succeeded and failed counted), the notice that says what an
action did, and the "extension requested, pending" state read from the stored review step."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.foundation import clock
from engine.foundation.text_search import fold
from engine.storage import audit
from engine.work import instances
from engine.work.escalations import Escalation
from tests.test_api_support import World, assert_problem, open_world
from tests.ui_support import signed_in
from tests.volume_support import Volume, seed_volume

COUNT = 60
READINESS = "جاهزيه مراكز الإستقبال"  # stored as "جاهزية مراكز الاستقبال": another taa marbuta and alef
CENTRES = "مراكز الاستقبال"


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


@pytest.fixture
def volume(world: World) -> Volume:
    return seed_volume(world.db, "housing", COUNT)


def _all_pages(world: World, user: str, path: str, limit: int = 25) -> tuple[list[dict[str, Any]], set[int]]:
    items, totals, offset = [], set(), 0
    while True:
        page = world.call(user, "GET", f"{path}{'&' if '?' in path else '?'}limit={limit}&offset={offset}")
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        totals.add(body["total"])
        offset += limit
        if offset >= body["total"]:
            return items, totals


def _titled(volume: Volume, text: str) -> set[int]:
    return {d for d, (ar, _en) in zip(volume.directive_ids, volume.titles, strict=True) if fold(text) in fold(ar)}


def test_the_board_and_the_inbox_find_arabic_however_it_is_typed(world: World, volume: Volume):
    expected = _titled(volume, READINESS)
    assert 0 < len(expected) < COUNT
    board = world.call("supervisor", "GET", f"/api/v1/escalations?q={READINESS}&limit=200").json()
    assert {e["directive"]["id"] for e in board["items"]} == expected and board["total"] == len(expected)
    inbox = world.call("housing.user", "GET", f"/api/v1/tasks?q={READINESS}&limit=200").json()
    assert {t["directive"]["id"] for t in inbox["items"]} == expected and inbox["total"] == len(expected)
    reference = world.call("supervisor", "GET", "/api/v1/escalations?q=١٤٤٧/٠٥٠٠٧").json()  # Arabic-Indic digits
    assert [e["directive"]["reference"] for e in reference["items"]] == ["1447/05007"]
    # Another entity's user finds none of them, whatever they search.
    assert world.call("transport.user", "GET", f"/api/v1/tasks?q={READINESS}").json()["total"] == 0


BOARD_SORTS = {  # sort: the key each escalation is ordered by, in the sort's natural direction
    "level": lambda e: (-e["level"], e["raised_at"], e["id"]),
    "due": lambda e: (e["directive"]["deadline_at"], e["id"]),
    "age": lambda e: (e["raised_at"], e["id"]),
    "entity": lambda e: (e["entity"], e["id"]),
}


@pytest.mark.parametrize("sort", list(BOARD_SORTS))
def test_the_board_sorts_each_way_and_pages_through_every_row_once(world: World, volume: Volume, sort: str):
    natural, totals = _all_pages(world, "supervisor", f"/api/v1/escalations?sort={sort}")
    assert totals == {COUNT} and len({e["id"] for e in natural}) == COUNT
    assert natural == sorted(natural, key=BOARD_SORTS[sort])
    reverse = "asc" if sort in ("level", "age") else "desc"
    reversed_rows, _ = _all_pages(world, "supervisor", f"/api/v1/escalations?sort={sort}&order={reverse}")
    if sort == "level":  # the level reversed; within a level still the oldest first, then by id
        assert [e["level"] for e in reversed_rows] == sorted(e["level"] for e in natural)
    else:
        assert [e["id"] for e in reversed_rows] == [e["id"] for e in reversed(natural)]


INBOX_SORTS = {
    "due": lambda t: (t["due_at"], t["id"]),
    "age": lambda t: (-_seconds(t["created_at"]), t["id"]),  # "age" ascending: the newest first
    "level": lambda t: (LEVELS[t["directive"]["id"]], t["id"]),
    "entity": lambda t: (t["assignee_entity"], t["id"]),
}


LEVELS: dict[int, int] = {}  # each seeded directive's escalation level (the API's summary does not carry it)


def _seconds(moment: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(moment).timestamp()


@pytest.mark.parametrize("sort", list(INBOX_SORTS))
def test_the_inbox_sorts_each_way_and_pages_through_every_step_once(world: World, volume: Volume, sort: str):
    LEVELS.update({d: n % 3 + 1 for n, d in enumerate(volume.directive_ids)})  # as seed_volume levels them
    rows, totals = _all_pages(world, "housing.user", f"/api/v1/tasks?sort={sort}")
    assert totals == {COUNT} and len({t["id"] for t in rows}) == COUNT
    assert rows == sorted(rows, key=INBOX_SORTS[sort])
    backwards, _ = _all_pages(world, "housing.user", f"/api/v1/tasks?sort={sort}&order=desc")
    assert [t["id"] for t in backwards] == [t["id"] for t in reversed(rows)]


@pytest.mark.parametrize("query", ["sort=deadline", "order=up", "q=" + "ا" * 201, "level=9", "track=sports",
                                   "limit=0"])
def test_bad_list_parameters_are_problems_and_change_nothing(world: World, query: str):
    for user, path in (("supervisor", "/api/v1/escalations"), ("housing.user", "/api/v1/tasks")):
        if query.startswith(("level", "track")) and path.endswith("tasks"):
            continue
        problem = assert_problem(world.call(user, "GET", f"{path}?{query}"), 422)
        assert problem["detail"], problem


def test_the_openapi_document_describes_the_list_parameters(world: World):
    paths = world.client.get("/api/v1/openapi.json").json()["paths"]
    for path, sorts in (("/api/v1/escalations", {"level", "due", "age", "entity"}),
                        ("/api/v1/tasks", {"due", "level", "age", "entity"})):
        parameters = {p["name"]: p for p in paths[path]["get"]["parameters"]}
        assert {"q", "sort", "order", "limit", "offset"} <= set(parameters)
        assert "Arabic" in parameters["q"]["description"] and parameters["q"]["schema"]["anyOf"][0]["maxLength"] == 200
        assert sorts <= set(re.findall(r'"(\w+)"', str(parameters["sort"]["schema"]).replace("'", '"')))
    assert "track" in {p["name"] for p in paths["/api/v1/escalations"]["get"]["parameters"]}


def _comments(world: World) -> int:
    with world.db.reading() as session:
        return session.scalar(select(func.count()).select_from(audit.AuditEvent)
                              .where(audit.AuditEvent.action == "escalation.commented")) or 0


def test_a_bulk_action_on_every_match_is_confirmed_with_its_count_then_counted(world: World, volume: Volume):
    matching = _titled(volume, CENTRES)
    supervisor = signed_in(world, "supervisor")
    board = supervisor.get(f"/escalations?q={CENTRES}&sort=age").text
    carried = re.search(r'name="filters" value="([^"]*)"', board).group(1)
    assert carried.replace("&amp;", "&").endswith("&sort=age") and 'value="matching"' in board
    form = [("scope", "matching"), ("filters", f"q={CENTRES}&sort=age"), ("action", "comment"),
            ("note", "يرجى الإفادة بالمستجدات"), ("back", "/escalations?q=x")]
    asked = supervisor.post("/escalations/bulk", form)
    assert asked.status_code == 200 and _comments(world) == 0  # nothing happens before the confirmation
    count = re.search(r'name="confirmed" value="(\d+)"', asked.text).group(1)
    assert int(count) == len(matching) and _arabic(len(matching)) in asked.text
    stale = supervisor.post("/escalations/bulk", [*form, ("confirmed", str(len(matching) - 1))])
    assert 'name="confirmed"' in stale.text and _comments(world) == 0  # a different count asks again
    done = supervisor.post("/escalations/bulk", [*form, ("confirmed", count)])
    assert done.status_code == 200 and _comments(world) == len(matching)
    assert f"نجح: {_arabic(len(matching))}" in done.text and "فشل: ٠" in done.text
    assert done.text.count('href="/directives/') >= len(matching)


def test_a_bulk_close_counts_the_escalations_it_could_not_close(world: World, volume: Volume):
    real = world.escalated_standard_directive()
    supervisor = signed_in(world, "supervisor")
    ids = [*volume.escalation_ids[:3], *_escalations_of(world, real["id"])]
    result = supervisor.post("/escalations/bulk", [*(("ids", str(i)) for i in ids), ("action", "close"),
                                                   ("outcome", "done"), ("note", "أُنجز")])
    assert result.status_code == 200, result.text
    assert "نجح: ١" in result.text and "فشل: ٣" in result.text
    assert f'href="/directives/{real["id"]}"' in result.text
    only_failures = supervisor.post("/escalations/bulk", [*(("ids", str(i)) for i in volume.escalation_ids[:2]),
                                                          ("action", "close"), ("outcome", "done")])
    assert only_failures.status_code == 409 and "نجح: ٠" in only_failures.text


def _arabic(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


def _escalations_of(world: World, directive_id: int) -> list[int]:
    with world.db.reading() as session:
        return list(session.scalars(select(Escalation.id).where(Escalation.directive_id == directive_id,
                                                                Escalation.status == "open")))


NOTICES = {  # action: its form fields, and the notice's words (Arabic, then English)
    "extend": ({"deadline_{id}_mode": "duration", "deadline_{id}_duration": "48 hours"},
               "مُدّد الموعد النهائي لـ", "The deadline of"),
    "reassign": ({"entity": "transport"}, "إلى النقل", "was reassigned to Transport"),
    "escalate": ({"level": "2"}, "إلى المستوى ٢", "was escalated to level 2"),
    "close": ({"outcome": "done"}, "بالإنجاز", "was closed as done"),
}


@pytest.mark.parametrize("action", list(NOTICES))
def test_the_notice_says_what_the_action_did(world: World, action: str):
    real = world.escalated_standard_directive()
    [escalation_id] = _escalations_of(world, real["id"])
    fields, arabic, english = NOTICES[action]
    form = {"action": action, "note": "قرار المشرف", "back": "/escalations?sort=age",
            **{k.format(id=escalation_id): v for k, v in fields.items()}}
    supervisor = signed_in(world, "supervisor")
    response = supervisor.post(f"/escalations/{escalation_id}/resolve", form)
    assert response.status_code == 303, response.text[-2000:]
    assert response.headers["location"] == f"/escalations?sort=age&done={escalation_id}"
    page = supervisor.get(response.headers["location"]).text
    notice = page[page.index('id="resolution-notice"'):][:1500]
    assert arabic in notice and real["reference"] in notice
    if action == "extend":  # the new deadline, in both calendars
        assert notice.count("<time") == 1 and "هـ" in notice
    english_page = signed_in(world, "supervisor", "en").get(response.headers["location"]).text
    assert english in english_page
    # Someone who may not see the escalation gets no notice about it.
    outsider = "housing.user" if action == "reassign" else "transport.user"
    assert 'id="resolution-notice"' not in signed_in(world, outsider).get(
        f"/escalations?done={escalation_id}").text


def test_a_request_for_more_time_shows_as_pending_until_it_is_decided(world: World):
    real = world.escalated_standard_directive()
    housing = signed_in(world, "housing.user")
    step = world.open_step(real["id"], "execute") if _has_open(world, real["id"], "execute") else world.open_step(
        real["id"], "acknowledge")
    assert "badge-pending" not in housing.get("/inbox").text
    asked = world.call("housing.user", "POST", f"/api/v1/directives/{real['id']}/extension-request",
                       json={"new_deadline": (clock.now() + timedelta(days=3)).isoformat(), "reason": "تأخر التوريد"})
    assert asked.status_code == 202, asked.text
    inbox = housing.get("/inbox").text
    row = inbox[inbox.index(f'href="/steps/{step}"'):][:1500]
    assert "طُلب تمديد، بانتظار القرار" in row
    page = housing.get(f"/steps/{step}").text
    assert 'id="extension-pending"' in page and "<time" in page[page.index('id="extension-pending"'):][:800]
    assert 'id="extension-form"' not in page  # one request at a time
    review = world.open_step(real["id"], "review_extension")
    with world.db.transaction() as session:
        instances.complete_task(session, review, {"approved": False, "note": "لا"}, "supervisor")
    assert "badge-pending" not in housing.get("/inbox").text
    assert 'id="extension-pending"' not in housing.get(f"/steps/{step}").text


def _has_open(world: World, directive_id: int, element_id: str) -> bool:
    try:
        world.open_step(directive_id, element_id)
        return True
    except AssertionError:
        return False


def test_people_are_shown_by_their_display_name(world: World, volume: Volume):
    with world.db.transaction() as session:
        from engine.people import users
        from engine.work.work_items import WorkItem

        users.update_user(session, "housing.user", "admin", full_name="مستخدم الإسكان")
        session.get(WorkItem, volume.step_ids[0]).claimed_by = "housing.user"
    inbox = signed_in(world, "housing.user").get("/inbox?sort=due").text
    assert '<bdi class="person" title="housing.user">مستخدم الإسكان</bdi>' in inbox


def test_the_page_keeps_its_filters_in_every_link(world: World, volume: Volume):
    supervisor = signed_in(world, "supervisor")
    page = supervisor.get("/escalations?sort=due&order=desc&entity=housing").text
    assert 'href="/escalations?entity=housing&amp;sort=due&amp;order=desc&page=2"' in page
    assert 'name="back" value="/escalations?entity=housing&amp;sort=due&amp;order=desc"' in page
    second_board = supervisor.get("/escalations?sort=due&order=desc&entity=housing&page=2").text
    assert 'name="back" value="/escalations?entity=housing&amp;sort=due&amp;order=desc&amp;page=2"' in second_board
    housing = signed_in(world, "housing.user")
    inbox = housing.get("/inbox?sort=age&order=desc").text
    assert 'href="/inbox?sort=age&amp;order=desc&page=2"' in inbox
    assert 'href="/inbox?show=overdue&amp;sort=age&amp;order=desc"' in inbox
    second = housing.get("/inbox?sort=age&order=desc&page=2").text
    first_ids = set(re.findall(r'href="/steps/(\d+)"', inbox))
    assert first_ids and not first_ids & set(re.findall(r'href="/steps/(\d+)"', second))
