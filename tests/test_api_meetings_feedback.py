"""Issue 9 over the REST API: meetings (launch all, agenda), the Excel import, pilgrim feedback (public form
and the unit's list), raising a directive, recurring obstacles — with the access rules per role, problem
details, and the audit trail."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from engine import feedback
from engine.calendar import seasons
from engine.directives import directives, meetings
from engine.directives.directives import Directive, NewDirective
from engine.feedback import FeedbackItem, NewFeedback
from engine.foundation import clock
from engine.storage import audit
from tests.conftest import deploy_shipped
from tests.test_api_support import NOW, PDF, World, assert_problem, open_world
from tests.test_directive_import import SHIPPED, row, workbook

API = "/api/v1"


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        with db.transaction() as session:
            for name in SHIPPED:
                deploy_shipped(session, name)
        yield built


def _meeting(world: World, number: int = 1, attending: list[str] | None = None, **body) -> dict:
    payload = {"number": number, "title_ar": f"الاجتماع الدوري {number}", "held": "1447-11-28 هـ",
               "attending": ["housing", "transport"] if attending is None else attending}
    payload.update(body)
    response = world.call("secretariat", "POST", f"{API}/meetings", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def _recommend(world: World, meeting_id: int, **body) -> dict:
    payload = {"title": "زيادة عدد الحافلات", "responsible_entity": "transport", "deadline": "PT6H",
               "process_model_key": "api_flow", "tags": ["bus_delay"]}
    payload.update(body)
    response = world.call("secretariat", "POST", f"{API}/meetings/{meeting_id}/recommendations", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_meeting_from_registration_to_launch_all(world: World):
    meeting = _meeting(world, title_en="First periodic meeting", chair="أمير المنطقة")
    assert (meeting["held_on"], meeting["held_on_hijri"], meeting["season"]) == ("2026-05-15", "1447-11-28", 1447)
    assert [e["code"] for e in meeting["attending"]] == ["housing", "transport"]
    patched = world.call("secretariat", "PATCH", f"{API}/meetings/{meeting['id']}",
                         json={"minutes": "ناقش الاجتماع جاهزية النقل", "attending": ["civil_defence", "housing"]})
    assert patched.status_code == 200 and patched.json()["minutes"].startswith("ناقش")
    upload = world.call("secretariat", "POST", f"{API}/meetings/{meeting['id']}/documents",
                        files=[("files", ("محضر.pdf", PDF, "application/pdf"))])
    assert upload.status_code == 201, upload.text
    [document] = upload.json()
    download = world.call("viewer", "GET", document["download_url"])
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-disposition"].startswith("attachment;")
    first = _recommend(world, meeting["id"])
    second = _recommend(world, meeting["id"], responsible_entity="housing", kind="decision")
    assert first["status"] == "draft" and first["meeting_id"] == meeting["id"] and first["kind"] == "recommendation"
    page = world.call("secretariat", "GET", f"{API}/meetings/{meeting['id']}").json()
    assert page["drafts"] == 2 and page["can_manage"] and len(page["documents"]) == 1
    listed = world.call("viewer", "GET", f"{API}/meetings", params={"season": 1447}).json()
    assert listed["total"] == 1 and (listed["items"][0]["directives"], listed["items"][0]["drafts"]) == (2, 2)
    launched = world.call("secretariat", "POST", f"{API}/meetings/{meeting['id']}/launch-all")
    assert launched.status_code == 200, launched.text
    assert launched.json()["ok"] and [r["outcome"] for r in launched.json()["rows"]] == ["launched"] * 2
    for directive in (first, second):
        assert world.call("admin", "GET", f"{API}/directives/{directive['id']}").json()["status"] == "active"
    again = world.call("secretariat", "POST", f"{API}/meetings/{meeting['id']}/launch-all")
    assert_problem(again, 409, "conflict")
    with world.db.reading() as session:
        actions = [e.action for e in audit.timeline(session, meetings.subject(meeting["id"]))]
    assert actions == ["meeting.created", "meeting.updated", "meeting.minutes_attached",
                       "meeting.recommendation_added", "meeting.recommendation_added", "meeting.launched_all"]


def test_launch_all_answers_422_listing_each_failure_and_launches_nothing(world: World):
    meeting = _meeting(world)
    ok = _recommend(world, meeting["id"], deadline="PT3H")
    late = _recommend(world, meeting["id"], deadline="PT1H")
    clock.set_now(NOW + timedelta(minutes=90))
    response = world.call("secretariat", "POST", f"{API}/meetings/{meeting['id']}/launch-all")
    body = assert_problem(response, 422, "invalid-input")
    assert body["code"] == "launch-refused" and "1 of 2" in body["detail"]
    assert [e["field"] for e in body["errors"]] == [late["reference"]] and "passed" in body["errors"][0]["message"]
    assert {r["reference"]: r["outcome"] for r in body["rows"]} == {ok["reference"]: "not_launched",
                                                                    late["reference"]: "failed"}
    with world.db.reading() as session:
        assert set(session.scalars(select(Directive.status))) == {"draft"}
        assert audit.timeline(session, meetings.subject(meeting["id"]))[-1].action == "meeting.launch_all_refused"


def test_meeting_access_per_role(world: World):
    attended = _meeting(world, 1, attending=["housing"])
    other = _meeting(world, 2, attending=["civil_defence"])
    _recommend(world, attended["id"], responsible_entity="housing", title="للإسكان")
    _recommend(world, attended["id"], responsible_entity="transport", title="للنقل")
    _recommend(world, other["id"], responsible_entity="civil_defence", title="للدفاع المدني")
    body = {"number": 9, "title_ar": "اجتماع", "held": "2026-05-18"}
    for who in ("viewer", "officer", "supervisor", "leader", "housing.user"):
        assert_problem(world.call(who, "POST", f"{API}/meetings", json=body), 403, "forbidden")
    assert world.call("admin", "POST", f"{API}/meetings", json=body).status_code == 201
    assert_problem(world.call(None, "GET", f"{API}/meetings"), 401)
    housing = world.call("housing.user", "GET", f"{API}/meetings").json()
    assert [m["number"] for m in housing["items"]] == [1]
    page = world.call("housing.user", "GET", f"{API}/meetings/{attended['id']}").json()
    assert [d["title"] for d in page["directives"]] == ["للإسكان"] and not page["can_manage"]
    assert_problem(world.call("housing.user", "GET", f"{API}/meetings/{other['id']}"), 404, "not-found")
    assert_problem(world.call("transport.user", "GET", f"{API}/meetings/{other['id']}/agenda"), 404)
    assert_problem(world.call("housing.user", "POST", f"{API}/meetings/{attended['id']}/launch-all"), 403)
    assert_problem(world.call("housing.user", "PATCH", f"{API}/meetings/{attended['id']}", json={"chair": "x"}), 403)
    assert_problem(world.call("viewer", "POST", f"{API}/meetings/{attended['id']}/recommendations",
                              json={"title": "x", "responsible_entity": "housing", "deadline": "PT1H"}), 403)
    viewer_page = world.call("viewer", "GET", f"{API}/meetings/{attended['id']}").json()
    assert len(viewer_page["directives"]) == 2
    bad = world.call("secretariat", "POST", f"{API}/meetings", json={**body, "number": 10, "held": "1447-13-01"})
    assert "not a Hijri date" in assert_problem(bad, 422, "invalid-input")["detail"]


def test_the_agenda_downloads_with_carried_forward_directives(world: World):
    first = _meeting(world, 1, held="1447-11-20")
    second = _meeting(world, 2, held="1447-11-27", attending=["transport"])
    carried = _recommend(world, first["id"], responsible_entity="housing")
    own = _recommend(world, second["id"], responsible_entity="transport")
    page = world.call("viewer", "GET", f"{API}/meetings/{second['id']}").json()
    assert [d["reference"] for d in page["carried_forward"]] == [carried["reference"]]
    assert page["carried_forward"][0]["meeting_number"] == 1
    response = world.call("viewer", "GET", f"{API}/meetings/{second['id']}/agenda", params={"format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r[2] for r in rows[1:]] == [own["reference"], carried["reference"]]
    xlsx = world.call("housing.user", "GET", f"{API}/meetings/{second['id']}/agenda", params={"lang": "en"})
    assert xlsx.status_code == 404  # housing neither attended meeting 2 nor holds a directive of it
    xlsx = world.call("transport.user", "GET", f"{API}/meetings/{second['id']}/agenda", params={"lang": "en"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    references = [r[2] for r in sheet.iter_rows(min_row=8, values_only=True)]  # under the header block
    assert references == [own["reference"]]  # the transport user does not see the housing directive


def test_the_excel_import_over_the_api(world: World):
    template = world.call("secretariat", "GET", f"{API}/imports/directives/template", params={"lang": "en"})
    assert template.status_code == 200 and load_workbook(io.BytesIO(template.content)).sheetnames[0] == "Directives"
    for who in ("viewer", "housing.user", "officer"):
        assert_problem(world.call(who, "GET", f"{API}/imports/directives/template"), 403)
    columns = world.call("secretariat", "GET", f"{API}/imports/directives/columns").json()
    assert columns[1] == {"key": "title", "header_ar": "العنوان", "header_en": "Title", "required": True,
                          "help": columns[1]["help"]}

    def upload(data: bytes, who: str = "secretariat", **form):
        return world.call(who, "POST", f"{API}/imports/directives", data={k: str(v).lower() if isinstance(v, bool)
                                                                          else v for k, v in form.items()},
                          files={"file": ("directives.xlsx", data, "application/octet-stream")})

    good = workbook([row(title="أول"), row(title="ثان", kind="قرار", deadline="1447-12-10")])
    dry = upload(good, dry_run=True)
    assert dry.status_code == 200 and dry.json()["valid"] == 2 and dry.json()["imported"] == 0
    done = upload(good)
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["ok"] and report["imported"] == 2 and [r["status"] for r in report["rows"]] == ["imported"] * 2
    mixed = workbook([row(title="سليم"), row(responsible_entity="atlantis"), row(deadline="1447-13-01")])
    refused = upload(mixed)
    body = assert_problem(refused, 422, "invalid-input")
    assert body["code"] == "import-refused" and len(body["errors"]) == 2
    assert body["errors"][0]["field"] == "row 4, column E (responsible_entity)"
    assert body["report"]["imported"] == 0 and body["report"]["errors"][1]["code"] == "bad_date"
    partial = upload(mixed, mode="valid_rows", launch=True)
    assert partial.status_code == 200 and partial.json()["imported"] == 1 and partial.json()["launched"] == 1
    assert [r["status"] for r in partial.json()["rows"]] == ["launched", "invalid", "invalid"]
    headers = assert_problem(upload(workbook([["x"]], headers=[["colour"]])), 422)
    assert "unknown header" in headers["errors"][0]["message"]
    assert_problem(upload(PDF), 422)
    assert_problem(upload(good, who="viewer"), 403)
    assert_problem(upload(good, who="housing.user"), 403)
    with world.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Directive)) == 3


def _public_token(world: World) -> str:
    form = world.client.get(f"{API}/public/feedback/form")
    assert form.status_code == 200, form.text
    body = form.json()
    assert body["honeypot_field"] == "website" and {s["code"] for s in body["services"]} >= {"housing", "other"}
    assert [e["code"] for e in body["entities"]] == ["civil_defence", "housing", "transport"]
    return body["token"]


def test_the_public_form_without_sign_in(world: World):
    token = _public_token(world)
    message = {"token": token, "service": "housing", "rating": 2, "text": "المصاعد متعطلة في المسكن",
               "entity": "housing", "website": ""}
    too_quick = assert_problem(world.client.post(f"{API}/public/feedback", json=message), 422, "invalid-input")
    assert too_quick["errors"][0]["field"] == "token"
    clock.set_now(NOW + timedelta(seconds=5))
    accepted = world.client.post(f"{API}/public/feedback", json=message)
    assert accepted.status_code == 202 and accepted.json()["received"], accepted.text
    reused = assert_problem(world.client.post(f"{API}/public/feedback", json=message), 422)
    assert "sent already" in reused["detail"]
    trap = world.client.post(f"{API}/public/feedback", json={**message, "token": _public_token(world),
                                                              "website": "http://bot.example"})
    assert trap.status_code == 202 and trap.json() == accepted.json()  # a bot learns nothing
    link = assert_problem(world.client.post(f"{API}/public/feedback", json={
        **message, "text": "visit cheap-hajj.com now"}), 422)
    assert any(e["field"] == "text" for e in link["errors"])
    limited = world.client.post(f"{API}/public/feedback", json=message)
    assert_problem(limited, 429, "too-many-requests")
    assert int(limited.headers["retry-after"]) > 0
    with world.db.reading() as session:
        [item] = session.scalars(select(FeedbackItem)).all()
    assert (item.channel, item.submitted_by, item.rating) == ("public", "public", 2)
    assert_problem(world.client.post(f"{API}/public/feedback", json={**message, "extra": 1}), 422)
    clock.set_now(NOW + timedelta(hours=1))  # a new window of the rate limit
    for odd in ({"entity": "\u0000"}, {"text": "نص\u0000"}, {"token": "1.\u0000.2"}, {"service": "\u0000"}):
        assert_problem(world.client.post(f"{API}/public/feedback", json={**message, **odd}), 422)


def _feedback(world: World, who: str = "officer", **body) -> dict:
    payload = {"service": "transport", "rating": 2, "text": "تأخرت الحافلة ثلاث ساعات", "entity": "transport",
               "tags": ["bus_delay"]}
    payload.update(body)
    response = world.call(who, "POST", f"{API}/feedback", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def test_feedback_intake_list_and_triage_per_role(world: World):
    transport = _feedback(world)
    housing = _feedback(world, who="secretariat", service="housing", entity="housing", rating=1,
                        text="The air conditioning is broken", tags=["maintenance"])
    unknown = _feedback(world, who="admin", service="other", entity=None, rating=5, text="لوحات واضحة", tags=[])
    assert (transport["language"], housing["language"]) == ("ar", "en") and unknown["entity"] is None
    for who in ("viewer", "supervisor", "leader", "housing.user"):
        assert_problem(world.call(who, "POST", f"{API}/feedback", json={"service": "other", "rating": 3,
                                                                       "text": "نص"}), 403)
    tricked = assert_problem(world.call("officer", "POST", f"{API}/feedback", json={
        "service": "other", "rating": 3, "text": "نص\u202eمعكوس"}), 422, "invalid-input")
    assert tricked["errors"] == [{"field": "text", "code": "feedback-refused",
                                  "message": "direction-override characters are not accepted"}]
    assert_problem(world.call("officer", "POST", f"{API}/feedback", json={"service": "spa", "rating": 3,
                                                                         "text": "نص"}), 422)
    for url in (f"{API}/feedback?entity=%00", f"{API}/feedback?tag=a%00b", f"{API}/feedback?q=%00",
                f"{API}/feedback/figures?entity=%00"):  # PostgreSQL text cannot hold NUL: a 4xx, never a 500
        assert_problem(world.call("admin", "GET", url), 422)
    listing = world.call("viewer", "GET", f"{API}/feedback", params={"sort": "rating"}).json()
    assert [i["rating"] for i in listing["items"]] == [1, 2, 5] and listing["total"] == 3
    mine = world.call("housing.user", "GET", f"{API}/feedback").json()
    assert [i["id"] for i in mine["items"]] == [housing["id"]]
    assert_problem(world.call("housing.user", "GET", f"{API}/feedback/{transport['id']}"), 404)
    filtered = world.call("officer", "GET", f"{API}/feedback", params={"entity": "none"}).json()
    assert [i["id"] for i in filtered["items"]] == [unknown["id"]]
    figures = world.call("leader", "GET", f"{API}/feedback/figures").json()
    assert (figures["responses"], figures["low_ratings"], figures["by_rating"]["5"]) == (3, 2, 1)
    patched = world.call("officer", "PATCH", f"{API}/feedback/{unknown['id']}",
                         json={"status": "reviewed", "entity": "civil_defence", "tags": ["signage"]})
    assert patched.status_code == 200 and patched.json()["entity"]["code"] == "civil_defence"
    assert patched.json()["tags"] == ["signage"] and patched.json()["status"] == "reviewed"
    assert_problem(world.call("housing.user", "PATCH", f"{API}/feedback/{housing['id']}", json={"note": "x"}), 403)
    assert_problem(world.call("viewer", "PATCH", f"{API}/feedback/{housing['id']}", json={"note": "x"}), 403)
    duplicate = {"service": "other", "rating": 3, "text": "مكرر", "source_ref": "cc-7"}
    assert world.call("officer", "POST", f"{API}/feedback", json=duplicate).status_code == 201
    assert_problem(world.call("officer", "POST", f"{API}/feedback", json=duplicate), 409)
    with world.db.reading() as session:
        events = audit.timeline(session, feedback.subject(unknown["id"]))
    [event] = [e for e in events if e.action == "feedback.updated"]
    assert event.actor == "officer" and event.payload["entity"]["to"] == "civil_defence"


def test_raising_a_directive_from_feedback_over_the_api(world: World):
    first = _feedback(world, tags=["bus_delay", "airport"])
    second = _feedback(world, rating=1, text="The bus never came", tags=["bus_delay"])
    suggestion = world.call("secretariat", "GET", f"{API}/feedback/directive-suggestion",
                            params=[("ids", first["id"]), ("ids", second["id"])])
    assert suggestion.status_code == 200 and suggestion.json()["responsible_entity"] == "transport"
    body = {"feedback_ids": [first["id"], second["id"]], "deadline": "PT24H", "process_model_key": "api_flow",
            "tags": ["transport"]}
    assert_problem(world.call("officer", "POST", f"{API}/feedback/raise-directive", json=body), 403)
    assert_problem(world.call("housing.user", "POST", f"{API}/feedback/raise-directive", json=body), 404)
    raised = world.call("secretariat", "POST", f"{API}/feedback/raise-directive", json=body)
    assert raised.status_code == 201, raised.text
    directive = raised.json()
    assert directive["status"] == "draft" and directive["responsible_entity"] == "transport"
    assert sorted(directive["tags"]) == ["airport", "bus_delay", "transport"]
    item = world.call("viewer", "GET", f"{API}/feedback/{first['id']}").json()
    assert item["status"] == "raised" and [d["id"] for d in item["directives"]] == [directive["id"]]
    assert world.call("viewer", "GET", f"{API}/feedback", params={"raised": True}).json()["total"] == 2


def test_recurring_obstacles_over_the_api(world: World):
    with world.db.transaction() as session:
        seasons.create_season(session, 1446, date(2025, 4, 28), date(2025, 7, 26))
        directives.create(session, NewDirective(title="سابق", kind="directive", responsible_entity="transport",
                                                deadline="PT6H", tags=["bus_delay"], season_year=1446,
                                                process_model_key="api_flow"), "secretariat")
        feedback.record(session, NewFeedback(service="transport", rating=1, text="الحافلة تأخرت",
                                             entity="transport", tags=["bus_delay"],
                                             received_at=datetime(2025, 6, 1, tzinfo=NOW.tzinfo)), "officer")
    _feedback(world, tags=["bus_delay"])
    response = world.call("leader", "GET", f"{API}/obstacles", params={"season": 1447})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["season"], body["previous_season"]) == (1447, 1446)
    [obstacle] = body["obstacles"]
    assert (obstacle["tag"], obstacle["count"], obstacle["previous_count"], obstacle["feedback"],
            obstacle["previous_directives"]) == ("bus_delay", 1, 2, 1, 1)
    assert [e["code"] for e in obstacle["entities"]] == ["transport"]
    assert_problem(world.call("housing.user", "GET", f"{API}/obstacles"), 403)
    assert_problem(world.call("viewer", "GET", f"{API}/obstacles", params={"season": 1446, "previous": 1447}), 422)
