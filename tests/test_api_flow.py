"""Directives walked through their process over HTTP only, each step by the role it belongs to."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.foundation import clock
from engine.work import timers
from tests.conftest import SHIPPED_BPMN_DIR
from tests.test_api_support import NOW, PDF, World, assert_problem, open_world

STANDARD_MODEL = SHIPPED_BPMN_DIR / "directive-standard.bpmn"


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


def _steps(world: World, username: str, directive_id: int) -> dict[str, dict]:
    response = world.call(username, "GET", f"/api/v1/directives/{directive_id}")
    assert response.status_code == 200, response.text
    return {step["element_id"]: step for step in response.json()["steps"]}


def test_a_directive_walks_acknowledge_execute_verify_with_rework_and_an_escalation(world: World):
    housing, officer, supervisor = "housing.user", "officer", "supervisor"

    directive = world.create_directive(launch=True, deadline="PT6H")
    assert directive["status"] == "active" and directive["current_steps"] == ["acknowledge"]
    did = directive["id"]

    # The entity sees the step in its inbox and acknowledges it.
    inbox = world.call(housing, "GET", "/api/v1/tasks").json()
    assert inbox["total"] == 1 and inbox["items"][0]["directive"]["id"] == did
    acknowledge = inbox["items"][0]["id"]
    assert world.call(housing, "POST", f"/api/v1/tasks/{acknowledge}/claim").json()["claimed_by"] == housing
    response = world.call(housing, "POST", f"/api/v1/tasks/{acknowledge}/complete", json={"data": {}})
    assert response.status_code == 200 and response.json()["status"] == "completed", response.text

    # The deadline passes while executing: the timer worker escalates to the supervisor.
    execute = _steps(world, housing, did)["execute"]["id"]
    clock.set_now(NOW + timedelta(hours=6, minutes=5))
    timers.run_until_idle(world.db)
    board = world.call(supervisor, "GET", "/api/v1/escalations").json()
    assert board["total"] == 1
    escalation = board["items"][0]
    assert escalation["directive"]["id"] == did and escalation["level"] == 1 and escalation["entity"] == "housing"
    response = world.call(supervisor, "POST", f"/api/v1/escalations/{escalation['id']}/resolve",
                          json={"action": "comment", "note": "تمت المتابعة هاتفياً مع الجهة"})
    assert response.status_code == 200, response.text

    # The entity asks for more time; the supervisor grants it through the process.
    response = world.call(housing, "POST", f"/api/v1/tasks/{execute}/extension-request",
                          json={"new_deadline": "PT24H", "reason": "تأخر توريد المستلزمات"})
    assert response.status_code == 202, response.text
    review = world.call(supervisor, "GET", "/api/v1/tasks").json()["items"]
    assert [t["element_id"] for t in review] == ["review_extension"]
    response = world.call(supervisor, "POST", f"/api/v1/tasks/{review[0]['id']}/complete",
                          json={"data": {"approved": True, "note": "موافق"}})
    assert response.status_code == 200, response.text
    detail = world.call(housing, "GET", f"/api/v1/directives/{did}").json()
    assert detail["extension_count"] == 1
    assert detail["deadline_at"].startswith((NOW + timedelta(hours=30, minutes=5)).date().isoformat())

    # Progress with a file, then completion naming the evidence.
    response = world.call(housing, "POST", f"/api/v1/tasks/{execute}/progress/upload",
                          data={"percent": "60", "note": "تم تجهيز نصف المراكز"},
                          files=[("files", ("محضر المعاينة.pdf", PDF, "application/pdf"))])
    assert response.status_code == 200, response.text
    progress = response.json()
    assert progress["progress_percent"] == 60 and len(progress["evidence"]) == 1
    evidence_id = progress["evidence"][0]["id"]
    response = world.call(housing, "POST", f"/api/v1/tasks/{execute}/complete",
                          json={"data": {"summary": "تم التنفيذ", "evidence": [evidence_id]}})
    assert response.status_code == 200, response.text

    # The officer returns the work once, then accepts it.
    verify = _steps(world, officer, did)["verify"]["id"]
    response = world.call(officer, "POST", f"/api/v1/tasks/{verify}/complete",
                          json={"data": {"accepted": False, "reason": "الشواهد غير مكتملة"}})
    assert response.status_code == 200, response.text
    execute_again = _steps(world, housing, did)["execute"]["id"]
    assert execute_again != execute
    response = world.call(housing, "POST", f"/api/v1/tasks/{execute_again}/complete/upload",
                          data={"data": '{"summary": "أرفقنا محضر المعاينة"}'},
                          files=[("files", ("scan.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "image/png"))])
    assert response.status_code == 200, response.text
    assert len(response.json()["completion_data"]["evidence"]) == 1
    verify_again = _steps(world, officer, did)["verify"]["id"]
    response = world.call(officer, "POST", f"/api/v1/tasks/{verify_again}/complete",
                          json={"data": {"accepted": True}})
    assert response.status_code == 200, response.text

    detail = world.call("viewer", "GET", f"/api/v1/directives/{did}").json()
    assert detail["status"] == "completed" and detail["steps"] == []
    assert len(detail["evidence"]) == 2 and detail["escalations"][0]["status"] == "open"
    actions = [event["action"] for event in detail["timeline"]]
    for expected in ("directive.created", "directive.launched", "step.claimed", "escalation.raised",
                     "escalation.commented", "extension.requested", "directive.deadline_changed", "step.progress",
                     "evidence.uploaded", "step.completed", "instance.completed"):
        assert expected in actions, (expected, actions)
    verification = world.call("admin", "GET", "/api/v1/audit/verify").json()
    assert verification["ok"] is True and verification["checked"] > 10


def test_a_draft_is_launched_later_and_can_be_cancelled(world: World):
    draft = world.create_directive(launch=False)
    assert draft["status"] == "draft" and draft["reference"] == "1447/0001"
    launched = world.call("secretariat", "POST", f"/api/v1/directives/{draft['id']}/launch")
    assert launched.status_code == 200 and launched.json()["status"] == "active"
    again = world.call("secretariat", "POST", f"/api/v1/directives/{draft['id']}/launch")
    assert_problem(again, 409, "conflict")
    cancelled = world.call("secretariat", "POST", f"/api/v1/directives/{draft['id']}/cancel",
                           json={"reason": "مكرر"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert world.call("housing.user", "GET", "/api/v1/tasks").json()["total"] == 0


def test_the_register_filters_sorts_pages_and_counts(world: World):
    made = [
        world.create_directive(title="نقل الحجاج", responsible_entity="transport", priority="urgent",
                               track="technology", deadline="PT2H"),
        world.create_directive(title="Housing permits", responsible_entity="housing", priority="high",
                               supporting_entities=["transport"], deadline="PT8H"),
        world.create_directive(title="سكن الحجاج", responsible_entity="housing", launch=False, deadline="PT4H",
                               kind="circular", process_model_key="api_flow"),
    ]

    def search(username: str = "viewer", **params):
        response = world.call(username, "GET", "/api/v1/directives", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    assert search()["total"] == 3
    assert [d["id"] for d in search(sort="deadline", order="asc")["items"]] == [made[0]["id"], made[2]["id"],
                                                                               made[1]["id"]]
    assert search(sort="priority", order="desc")["items"][0]["priority"] == "urgent"
    assert [d["reference"] for d in search(sort="reference", order="asc", limit=2)["items"]] == ["1447/0001",
                                                                                                 "1447/0002"]
    page = search(limit=1, offset=2, sort="reference", order="asc")
    assert page["total"] == 3 and [d["reference"] for d in page["items"]] == ["1447/0003"]
    assert search(status="draft")["total"] == 1
    assert search(entity="transport")["total"] == 2  # responsible or supporting
    assert search(track="technology")["total"] == 1 and search(kind="circular")["total"] == 1
    assert search(priority="high")["total"] == 1 and search(season=1447)["total"] == 3
    assert search(season=1446)["total"] == 0
    assert search(q="الحجاج")["total"] == 2 and search(q="permits")["total"] == 1
    assert search(q="1447/0002")["total"] == 1
    assert search(q="%")["total"] == 0 and search(q="_")["total"] == 0
    assert search(overdue=True)["total"] == 0 and search(escalated=False)["total"] == 3

    clock.set_now(NOW + timedelta(hours=3))
    assert [d["id"] for d in search(overdue=True)["items"]] == [made[0]["id"]]
    assert search(overdue=False)["total"] == 2

    # An entity user sees only what their entity is responsible for or supports, in lists and counts.
    assert search("housing.user")["total"] == 2
    assert search("transport.user")["total"] == 2
    assert search("transport.user", q="سكن")["total"] == 0
    assert search("transport.user", status="draft")["total"] == 0


def test_the_standard_directive_model_over_http_only(world: World):
    """Deploy the shipped standard model (after the decision table it names) over HTTP and walk it as each role
    would."""
    ladder = STANDARD_MODEL.parent / "escalation-ladder.dmn"
    table = world.call("admin", "POST", "/api/v1/decisions",
                       files={"file": (ladder.name, ladder.read_bytes(), "application/xml")})
    assert table.status_code == 201, table.text
    with STANDARD_MODEL.open("rb") as handle:
        deployed = world.call("admin", "POST", "/api/v1/process-models",
                              files={"file": ("directive-standard.bpmn", handle, "application/xml")})
    assert deployed.status_code in (200, 201), deployed.text
    assert deployed.json()["model"]["key"] == "directive_standard"
    housing, officer, supervisor = "housing.user", "officer", "supervisor"

    directive = world.create_directive(launch=True, deadline="PT48H", process_model_key=None)
    did = directive["id"]
    assert directive["process_model_key"] == "directive_standard"

    acknowledge = _steps(world, housing, did)["acknowledge"]["id"]
    task = world.call(housing, "GET", f"/api/v1/tasks/{acknowledge}").json()
    assert task["can_act"] is True
    response = world.call(housing, "POST", f"/api/v1/tasks/{acknowledge}/complete", json={"data": {}})
    assert response.status_code == 200, response.text

    execute = _steps(world, housing, did)["execute"]["id"]
    response = world.call(housing, "POST", f"/api/v1/tasks/{execute}/progress/upload",
                          data={"percent": "50", "note": "نصف العمل"},
                          files=[("files", ("evidence.pdf", PDF, "application/pdf"))])
    assert response.status_code == 200, response.text

    # The deadline passes: the worker escalates; the supervisor extends through the escalation board.
    clock.set_now(NOW + timedelta(hours=49))
    timers.run_until_idle(world.db)
    board = world.call(supervisor, "GET", "/api/v1/escalations", params={"directive": did}).json()
    assert board["total"] >= 1, board
    response = world.call(supervisor, "POST", f"/api/v1/escalations/{board['items'][0]['id']}/resolve",
                          json={"action": "extend", "new_deadline": "PT24H", "note": "مهلة أخيرة"})
    assert response.status_code == 200, response.text

    steps = _steps(world, housing, did)
    execute = steps["execute"]["id"]
    evidence_id = world.call(housing, "POST", f"/api/v1/tasks/{execute}/evidence",
                             files=[("files", ("report.pdf", PDF, "application/pdf"))]).json()[0]["id"]
    response = world.call(housing, "POST", f"/api/v1/tasks/{execute}/complete",
                          json={"data": {"summary": "تم التنفيذ", "evidence": [str(evidence_id)]}})
    assert response.status_code == 200, response.text

    verify = _steps(world, officer, did)["verify"]["id"]
    response = world.call(officer, "POST", f"/api/v1/tasks/{verify}/complete",
                          json={"data": {"accepted": False, "reason": "أرفقوا محضر المعاينة"}})
    assert response.status_code == 200, response.text
    execute = _steps(world, housing, did)["execute"]["id"]
    response = world.call(housing, "POST", f"/api/v1/tasks/{execute}/complete",
                          json={"data": {"summary": "أرفقنا المحضر", "evidence": [str(evidence_id)]}})
    assert response.status_code == 200, response.text
    verify = _steps(world, officer, did)["verify"]["id"]
    response = world.call(officer, "POST", f"/api/v1/tasks/{verify}/complete",
                          json={"data": {"accepted": True, "reason": ""}})
    assert response.status_code == 200, response.text

    detail = world.call("viewer", "GET", f"/api/v1/directives/{did}").json()
    assert detail["status"] == "completed", detail
