"""The operations pages (administrators only, both languages): incidents in the navigation, an instance
with its diagram and variables, retry with corrected variables, and a version migration after a dry run."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine.bpmn import process_models
from engine.work import instances
from engine.work.work_items import WorkItem
from tests.conftest import SHIPPED_BPMN_DIR, deploy_shipped, read_model
from tests.model_changes import with_step_before_every_end
from tests.test_api_support import World, open_world
from tests.ui_support import signed_in


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        with built.db.transaction() as session:
            process_models.deploy(session, read_model("incident-bad-data.bpmn"), "incident-bad-data.bpmn", "tester")
        yield built


def failed_report(world: World) -> int:
    with world.db.transaction() as session:
        instance_id = instances.start(session, "incident_bad_data", {"elapsed_days": 4}, "tester").id
        [item] = session.scalars(select(WorkItem).where(WorkItem.instance_id == instance_id)).all()
        instances.complete_task(session, item.id, {"percent": 0}, "housing.user")
    return instance_id


@pytest.mark.parametrize("language", ["ar", "en"])
def test_an_incident_is_found_from_the_navigation_corrected_and_retried(world: World, language: str):
    instance_id = failed_report(world)
    admin = signed_in(world, "admin", language)
    home = admin.get("/admin/entities").text
    assert 'class="nav-incidents" href="/admin/incidents"' in home
    assert ('الحوادث <span class="badge badge-incident">١</span>' if language == "ar"
            else 'Incidents <span class="badge badge-incident">1</span>') in home
    listing = admin.get("/admin/incidents")
    assert listing.status_code == 200 and f'href="/admin/instances/{instance_id}"' in listing.text
    assert "remaining_days" in listing.text and "division by zero" in listing.text
    page = admin.get(f"/admin/instances/{instance_id}")
    assert page.status_code == 200
    assert 'data-failed="[&#34;remaining_days&#34;]"' in page.text or 'data-failed="["remaining_days"]"' in page.text
    assert 'name="var:percent"' in page.text and 'name="kind:percent" value="number"' in page.text
    assert ("تصحيح المتغيرات وإعادة المحاولة" if language == "ar" else "Correct the variables and retry") in page.text

    bad = admin.post(f"/admin/instances/{instance_id}/retry", {
        "mode": "corrected", "var:percent": "half", "kind:percent": "number",
        "var:elapsed_days": "4", "kind:elapsed_days": "number"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    assert ("المتوقع رقم" if language == "ar" else "a number is expected") in bad.text
    refused = admin.post(f"/admin/instances/{instance_id}/retry", {
        "mode": "corrected", "var:percent": "150", "kind:percent": "number",
        "var:elapsed_days": "4", "kind:elapsed_days": "number"})
    assert refused.status_code == 422 and "percent" in refused.text
    fixed = admin.post(f"/admin/instances/{instance_id}/retry", {
        "mode": "corrected", "var:percent": "50", "kind:percent": "number",
        "var:elapsed_days": "4", "kind:elapsed_days": "number"})
    assert fixed.status_code == 303 and fixed.headers["location"].endswith("msg=retried")
    after = admin.get(fixed.headers["location"]).text
    assert ("صُحّحت المتغيرات" if language == "ar" else "Variables corrected") in after
    assert "nav-incidents" not in admin.get("/admin/incidents").text
    with world.db.reading() as session:
        assert instances.get_instance(session, instance_id).status == instances.RUNNING


def test_the_instances_page_filters_and_refuses_a_bad_filter(world: World):
    failed = failed_report(world)
    directive = world.create_directive(launch=True)
    admin = signed_in(world, "admin", "en")
    page = admin.get("/admin/instances?status=incident").text
    assert f"/admin/instances/{failed}" in page and directive["reference"] not in page
    page = admin.get(f"/admin/instances?directive={directive['id']}").text
    assert directive["reference"] in page and f'"/admin/instances/{failed}"' not in page
    assert admin.get("/admin/instances?version=1").status_code == 422
    assert admin.get("/admin/instances?started_from=yesterday").status_code == 422


def test_a_migration_from_the_model_page_dry_run_first(world: World):
    standard = SHIPPED_BPMN_DIR / "directive-standard.bpmn"
    with world.db.transaction() as session:
        deploy_shipped(session, "directive-standard.bpmn")
    first = world.create_directive(launch=True, process_model_key="directive_standard")
    world.create_directive(launch=True, process_model_key="directive_standard")
    with world.db.transaction() as session:
        process_models.deploy(session, with_step_before_every_end(standard.read_bytes()), "v2.bpmn", "tester")
    admin = signed_in(world, "admin", "ar")
    page = admin.get("/admin/models/directive_standard?version=1")
    assert 'href="/admin/instances?model=directive_standard&version=1&status=running">٢<' in page.text
    dry = admin.post("/admin/models/directive_standard/1/migrate", {"to_version": "2", "apply": "no"})
    assert dry.status_code == 200 and dry.text.count("ستُنقل") == 2 and 'value="yes"' in dry.text
    with world.db.reading() as session:
        assert instance_versions(session) == [1, 1]
    done = admin.post("/admin/models/directive_standard/1/migrate", {"to_version": "2", "apply": "yes"})
    assert done.status_code == 200 and done.text.count("نُقلت") >= 2
    with world.db.reading() as session:
        assert instance_versions(session) == [2, 2]
    assert first["reference"] in admin.get("/admin/instances?model=directive_standard&version=2").text


def instance_versions(session) -> list[int]:
    return sorted(i.model.version for i in instances.list_instances(
        session, instances.InstanceFilter(model="directive_standard")))


@pytest.mark.parametrize("who", ["secretariat", "supervisor", "viewer", "housing.user"])
def test_only_administrators_see_the_operations_pages(world: World, who: str):
    instance_id = failed_report(world)
    browser = signed_in(world, who, "en")
    expected = 404 if who == "housing.user" else 403
    for url in ("/admin/instances", "/admin/incidents", f"/admin/instances/{instance_id}"):
        assert browser.get(url).status_code == expected, url
    assert "nav-incidents" not in browser.get("/directives").text


def test_the_board_lets_a_supervisor_choose_the_escalation_level(world: World):
    directive = world.escalated_standard_directive()
    supervisor = signed_in(world, "supervisor", "ar")
    board = supervisor.get("/escalations").text
    [escalation_id] = {int(n) for n in re.findall(r'action="/escalations/(\d+)/resolve"', board)}
    assert f'id="lvl-{escalation_id}" name="level"' in board and '<option value="2">٢</option>' in board
    response = supervisor.post(f"/escalations/{escalation_id}/resolve", {"action": "escalate", "level": "4",
                                                                         "note": "يحتاج قرار القيادة"})
    assert response.status_code == 303, response.text
    detail = world.call("supervisor", "GET", f"/api/v1/directives/{directive['id']}").json()
    assert detail["escalation_level"] == 4


def test_a_decision_table_is_uploaded_shown_as_a_table_and_its_model_shows_it(world: World):
    admin = signed_in(world, "admin", "ar")
    admin.get("/admin/models")
    refused = admin.post("/admin/models", files={"file": ("ruled.bpmn", read_model("ruled.bpmn"), "application/xml")})
    assert refused.status_code == 422 and "ladder_by_days" in refused.text
    admin.get("/admin/models")
    response = admin.post("/admin/models", files={"file": ("ladder-by-days.dmn", read_model("ladder-by-days.dmn"),
                                                           "application/xml")})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/decisions/ladder_by_days?msg=decision_deployed"
    page = admin.get(response.headers["location"]).text
    assert 'class="data decision-table" data-decision="ladder_by_days" data-version="1"' in page
    assert page.count("<tr><td>") == 4  # four rules (the version row is marked current)
    admin.get("/admin/models")
    assert admin.post("/admin/models", files={"file": ("ruled.bpmn", read_model("ruled.bpmn"),
                                                       "application/xml")}).status_code == 303
    model = admin.get("/admin/models/ruled").text
    assert "جداول القرار التي يستخدمها" in model and 'data-decision="ladder_by_days"' in model
    assert "ladder_by_days" in admin.get("/admin/models").text
