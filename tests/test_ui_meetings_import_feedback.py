"""Issue 9's pages without a browser, on SQLite and PostgreSQL: meetings (form, minutes, recommendations,
launch all with its per-row report, carried-forward directives, agenda), the Excel import (template,
validation report by row and column, the user's choice, progress, all or nothing), pilgrim feedback (the
unit's list, raising a directive, the public form's defences) and recurring obstacles — each in Arabic
and English, with the API's access rules, bad input refused with clear errors and nothing changed."""

from __future__ import annotations

import io
import re
import time
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from engine.calendar import seasons
from engine.directives import directives, meetings
from engine.directives.directives import Directive, NewDirective
from engine.directives.meetings import Meeting, MeetingDocument
from engine.feedback import FeedbackItem, NewFeedback
from engine.foundation import clock
from engine.foundation.errors import InvalidInput
from engine.storage import audit
from tests.conftest import deploy_shipped
from tests.test_api_support import NOW, PDF, World, open_world
from tests.test_directive_import import HEADERS_AR, HEADERS_EN, SHIPPED, row, workbook
from tests.ui_support import Browser, signed_in


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        with db.transaction() as session:
            for name in SHIPPED:
                deploy_shipped(session, name)
        yield built


def _meeting(world: World, number: int = 1, attending: tuple[str, ...] = ("housing", "transport"),
             held: str = "1447-11-28") -> int:
    with world.db.transaction() as session:
        return meetings.create(session, number=number, title_ar=f"الاجتماع الدوري {number}", held=held,
                               actor="secretariat", title_en=f"Periodic meeting {number}",
                               attending=list(attending)).id


def _recommend(world: World, meeting_id: int, entity: str = "transport", deadline: str = "PT6H",
               title: str = "زيادة عدد الحافلات") -> int:
    with world.db.transaction() as session:
        return meetings.add_recommendation(session, meeting_id, NewDirective(
            title=title, kind="recommendation", responsible_entity=entity, deadline=deadline,
            process_model_key="api_flow", tags=["bus_delay"]), "secretariat").id


def _feedback(world: World, **values) -> int:
    from engine import feedback

    fields = {"service": "transport", "rating": 2, "text": "تأخرت الحافلة ثلاث ساعات", "entity": "transport",
              "tags": ["bus_delay"]}
    fields.update(values)
    with world.db.transaction() as session:
        return feedback.record(session, NewFeedback(**fields), "officer").id


def _count(world: World, model) -> int:
    with world.db.reading() as session:
        return session.scalar(select(func.count()).select_from(model))


def _actions(world: World, subject: str) -> list[str]:
    with world.db.reading() as session:
        return [e.action for e in audit.timeline(session, subject)]


# --- every page, both languages --------------------------------------------------------------------------

def _check_page(response, language: str, where: str) -> str:
    assert response.status_code == 200, (where, response.text[:800])
    html = response.text
    assert f'<html lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}">' in html, where
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), where
    assert ' style="' not in html and "<style" not in html, where
    assert html.count('name="csrf_token"') == html.count('<form method="post"'), where
    return html


@pytest.mark.parametrize("language", ["ar", "en"])
def test_every_new_page_renders_in_both_languages_without_inline_script(world: World, language: str):
    meeting = _meeting(world)
    _recommend(world, meeting)
    item = _feedback(world)
    pages = {
        "secretariat": ["/meetings", "/meetings?season=1447", "/meetings/new", f"/meetings/{meeting}",
                        f"/meetings/{meeting}/edit", "/import", "/feedback", "/feedback?service=transport&rating_max=3",
                        f"/feedback/raise?ids={item}", "/obstacles"],
        "housing.user": ["/meetings", f"/meetings/{meeting}", "/feedback"],
        "leader": ["/meetings", "/feedback", "/obstacles", "/obstacles?season=1447"],
    }
    for username, urls in pages.items():
        browser = signed_in(world, username, language)
        for url in urls:
            html = _check_page(browser.get(url), language, f"{username} {url}")
            if language == "ar":
                assert "تنسيق" in html
    anonymous = Browser(world, language)
    html = _check_page(anonymous.get("/public/feedback"), language, "public form")
    assert 'name="website"' in html and 'class="hp"' in html and 'name="token"' in html
    page = signed_in(world, "secretariat", language).get(f"/meetings/{meeting}").text
    if language == "ar":
        assert "الاجتماع الدوري 1" in page and "هـ</span>" in page and "توصيات هذا الاجتماع" in page
    else:
        assert "Periodic meeting 1" in page and " AH</span>" in page and "Recommendations of this meeting" in page


def test_the_menu_shows_each_role_the_pages_it_may_use(world: World):
    links = {"secretariat": {"/meetings", "/import", "/feedback", "/obstacles"},
             "housing.user": {"/meetings", "/feedback"}, "viewer": {"/meetings", "/feedback", "/obstacles"},
             "admin": {"/meetings", "/import", "/feedback", "/obstacles"}}
    for username, expected in links.items():
        nav = signed_in(world, username).get("/meetings").text.split('class="main-nav"')[1].split("</nav>")[0]
        shown = {href for href in ("/meetings", "/import", "/feedback", "/obstacles") if f'href="{href}"' in nav}
        assert shown == expected, username


# --- meetings ------------------------------------------------------------------------------------------------

def test_the_secretariat_registers_a_meeting_with_a_hijri_date_and_bad_input_changes_nothing(world: World):
    browser = signed_in(world, "secretariat", "en")
    browser.get("/meetings/new")
    form = {"number": "3", "title_ar": "اجتماع التنسيق الثالث", "title_en": "Third coordination meeting",
            "chair": "أمير المنطقة", "minutes": "ناقش الاجتماع جاهزية النقل", "held_mode": "hijri",
            "held_hijri_day": "28", "held_hijri_month": "11", "held_hijri_year": "1447", "held_time": "10:30"}
    bad = ({"held_hijri_day": "31"}, {"number": "x"}, {"title_ar": ""},
           {"held_mode": "gregorian", "held_date": "2026-13-01"})
    for change in bad:
        response = browser.post("/meetings/new", [*{**form, **change}.items(), ("attending", "housing")])
        assert response.status_code == 422 and 'role="alert"' in response.text, change
        assert 'value="اجتماع التنسيق الثالث"' in response.text or change == {"title_ar": ""}  # what was typed stays
    unknown = browser.post("/meetings/new", [*form.items(), ("attending", "atlantis")])
    assert unknown.status_code == 422 and "atlantis" in unknown.text
    assert _count(world, Meeting) == 0
    created = browser.post("/meetings/new", [*form.items(), ("attending", "housing"), ("attending", "transport")])
    assert created.status_code == 303, created.text[:500]
    location = created.headers["location"]
    page = browser.get(location).text
    assert "The meeting was saved." in page and "Third coordination meeting" in page
    assert "28 Dhu al-Qa&#39;dah 1447 AH" in page or "28 Dhu al-Qa'dah 1447 AH" in page
    assert "15 May 2026" in page and "10:30" in page
    again = browser.post("/meetings/new", [*form.items()])
    assert again.status_code == 422 and "exists already" in again.text
    meeting_id = int(location.split("/")[2].split("?")[0])
    edit = browser.get(f"/meetings/{meeting_id}/edit")
    assert 'value="2026-05-15"' in edit.text and 'value="10:30"' in edit.text
    changed = browser.post(f"/meetings/{meeting_id}/edit", [*{**form, "chair": "وكيل الإمارة"}.items(),
                                                            ("attending", "civil_defence")])
    assert changed.status_code == 303
    with world.db.reading() as session:
        meeting = session.get(Meeting, meeting_id)
        assert meeting.chair == "وكيل الإمارة" and [e.code for e in meeting.attendees] == ["civil_defence"]
    refused = browser.post(f"/meetings/{meeting_id}/edit", [*{**form, "chair": "x", "held_hijri_day": "31"}.items()])
    assert refused.status_code == 422 and "not a Hijri date" in refused.text
    assert browser.post("/meetings/999/edit", list(form.items())).status_code == 404
    assert _actions(world, meetings.subject(meeting_id)) == ["meeting.created", "meeting.updated"]


def test_minutes_files_recommendations_and_launch_all_with_its_report(world: World):
    meeting = _meeting(world)
    browser = signed_in(world, "secretariat", "en")
    browser.get(f"/meetings/{meeting}")
    attached = browser.post(f"/meetings/{meeting}/documents", files=[("files", ("محضر.pdf", PDF, "application/pdf"))])
    assert attached.status_code == 303
    page = browser.get(f"/meetings/{meeting}").text
    [link] = re.findall(rf'href="(/meetings/{meeting}/documents/\d+)"', page)
    download = browser.get(link)
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-disposition"].startswith("attachment;")
    refused = browser.post(f"/meetings/{meeting}/documents", files=[("files", ("x.exe", b"MZ\x90\x00", "x"))])
    assert refused.status_code == 415 and _count(world, MeetingDocument) == 1
    rec = {"title": "زيادة عدد الحافلات", "kind": "recommendation", "responsible_entity": "transport",
           "process_model_key": "api_flow", "deadline_mode": "duration", "deadline_duration": "PT3H",
           "tags": "bus_delay"}
    for change in ({"responsible_entity": "atlantis"}, {"deadline_duration": "soon"}, {"title": " "}):
        response = browser.post(f"/meetings/{meeting}/recommendations", {**rec, **change})
        assert response.status_code == 422 and 'role="alert"' in response.text, change
    assert _count(world, Directive) == 0
    assert browser.post(f"/meetings/{meeting}/recommendations", rec).status_code == 303
    late = browser.post(f"/meetings/{meeting}/recommendations", {**rec, "title": "متأخرة", "deadline_duration": "PT1H"})
    assert late.status_code == 303
    page = browser.get(f"/meetings/{meeting}").text
    assert "Launch all 2 drafts" in page and "متأخرة" in page
    clock.set_now(NOW + timedelta(minutes=90))  # the second draft's deadline has passed
    report = browser.post(f"/meetings/{meeting}/launch-all", {})
    assert report.status_code == 422
    assert "Nothing was launched." in report.text and "Not launched" in report.text and "Failed" in report.text
    assert "passed" in report.text  # the reason
    with world.db.reading() as session:
        assert set(session.scalars(select(Directive.status))) == {"draft"}
    with world.db.transaction() as session:
        late_id = session.scalar(select(Directive.id).where(Directive.title == "متأخرة"))
        directives.cancel(session, late_id, "secretariat", "replaced")
    browser.get(f"/meetings/{meeting}")
    launched = browser.post(f"/meetings/{meeting}/launch-all", {})
    assert launched.status_code == 200 and "1 directive was launched." in launched.text
    with world.db.reading() as session:
        assert sorted(session.scalars(select(Directive.status))) == ["active", "cancelled"]
    assert browser.post(f"/meetings/{meeting}/launch-all", {}).status_code == 409  # no drafts left
    assert _actions(world, meetings.subject(meeting)) == [
        "meeting.created", "meeting.minutes_attached", "meeting.recommendation_added", "meeting.recommendation_added",
        "meeting.launch_all_refused", "meeting.launched_all"]


def test_carried_forward_directives_and_the_agenda_exports(world: World):
    first = _meeting(world, 1, held="1447-11-20")
    _recommend(world, first, title="توصية مفتوحة من الاجتماع الأول", deadline="P5D")
    second = _meeting(world, 2, held="1447-11-28")
    browser = signed_in(world, "viewer", "ar")
    page = browser.get(f"/meetings/{second}").text
    carried = page.split('id="carried"')[1]
    assert "توصية مفتوحة من الاجتماع الأول" in carried and f'href="/meetings/{first}"' in carried
    csv_file = browser.get(f"/meetings/{second}/agenda.csv?lang=ar")
    assert csv_file.status_code == 200 and csv_file.content.startswith(b"\xef\xbb\xbf")
    assert "توصية مفتوحة من الاجتماع الأول" in csv_file.content.decode("utf-8-sig")
    xlsx = browser.get(f"/meetings/{second}/agenda.xlsx?lang=en")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.title == "Agenda" and not sheet.sheet_view.rightToLeft
    assert browser.get(f"/meetings/{second}/agenda.pdf").status_code == 404
    assert "لا يوجد توجيه مفتوح من اجتماع سابق." in browser.get(f"/meetings/{first}").text


def test_meeting_pages_follow_the_apis_access_rules(world: World):
    attended = _meeting(world, 1, attending=("housing",))
    other = _meeting(world, 2, attending=("civil_defence",))
    _recommend(world, attended, entity="housing", title="للإسكان")
    _recommend(world, attended, entity="transport", title="للنقل")
    housing = signed_in(world, "housing.user")
    listed = housing.get("/meetings").text
    assert f'href="/meetings/{attended}"' in listed and f'href="/meetings/{other}"' not in listed
    page = housing.get(f"/meetings/{attended}").text
    assert "للإسكان" in page and "للنقل" not in page and "/launch-all" not in page and "/edit" not in page
    for url in (f"/meetings/{other}", f"/meetings/{other}/agenda.csv", f"/meetings/{other}/edit", "/meetings/0",
                "/meetings/99999999999"):
        assert housing.get(url).status_code in (404, 400), url
    assert housing.get("/meetings/new").status_code == 403
    assert housing.post(f"/meetings/{attended}/launch-all", {}).status_code == 403
    assert housing.post(f"/meetings/{other}/launch-all", {}).status_code == 404
    assert housing.post(f"/meetings/{attended}/recommendations", {"title": "x"}).status_code == 403
    viewer = signed_in(world, "viewer")
    assert viewer.get(f"/meetings/{other}").status_code == 200
    assert viewer.post(f"/meetings/{attended}/documents", files=[("files", ("a.pdf", PDF, "application/pdf"))]
                       ).status_code == 403
    assert viewer.get("/meetings/new").status_code == 403 and viewer.get("/import").status_code == 403
    assert Browser(world).get("/meetings").status_code == 303  # to the sign-in page
    assert _count(world, MeetingDocument) == 0
    with world.db.reading() as session:
        assert set(session.scalars(select(Directive.status))) == {"draft"}


# --- the Excel import ---------------------------------------------------------------------------------------

def _wait(browser: Browser, job_url: str) -> str:
    """Poll the progress as htmx does until the step is finished; then the job's page."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = browser.get(f"{job_url}/progress", headers={"HX-Request": "true"})
        if response.status_code == 204:
            assert response.headers["HX-Redirect"] == job_url
            break
        assert response.status_code == 200 and "<progress" in response.text
        assert 'hx-trigger="every 500ms"' in response.text
        time.sleep(0.05)
    page = browser.get(job_url)
    assert page.status_code in (200, 422) and 'id="import-progress"' not in page.text
    return page.text


def _upload(browser: Browser, data: bytes, **form) -> str:
    browser.get("/import")
    response = browser.post("/import", form, files={"file": ("directives.xlsx", data, "application/octet-stream")})
    assert response.status_code == 303, response.text[:500]
    return response.headers["location"]


def test_the_template_downloads_in_both_languages(world: World):
    browser = signed_in(world, "secretariat")
    for lang, sheet in (("ar", "التوجيهات"), ("en", "Directives")):
        response = browser.get(f"/import/template.xlsx?lang={lang}")
        assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
        book = load_workbook(io.BytesIO(response.content))
        assert book.sheetnames[0] == sheet
        assert [c.value for c in book.active[2]][:2] == ["Reference", "Title *"]
    assert browser.get("/import/template.xlsx?lang=fr").status_code == 404
    assert signed_in(world, "officer").get("/import/template.xlsx").status_code == 403


def test_a_workbook_is_validated_first_then_only_valid_rows_are_imported_on_request(world: World):
    browser = signed_in(world, "secretariat", "ar")
    mixed = workbook([row(title="سليم", reference="1447/9001"), row(responsible_entity="atlantis"),
                      row(deadline="1447-13-01"), row(reference="1447/9001")])
    job = _upload(browser, mixed)
    page = _wait(browser, job)
    assert "تقرير التحقق" in page  # validation report
    problems = page.split('id="import-errors"')[1]
    assert problems.count('class="import-error"') == 3
    assert 'data-code="unknown_entity"' in problems and "atlantis" in problems and "الجهة المسؤولة" in problems
    assert 'data-code="bad_date"' in problems and 'data-code="duplicate_reference"' in problems
    assert "<bdi dir=\"ltr\">E</bdi>" in problems and "٤" in problems  # column E, row 4 in Arabic digits
    assert 'value="all_or_nothing" disabled' in page  # some rows are invalid
    assert _count(world, Directive) == 0
    assert browser.post(f"{job}/run", {"mode": "whatever"}).status_code == 422
    browser.get(job)
    started = browser.post(f"{job}/run", {"mode": "valid_rows"})
    assert started.status_code == 303
    done = _wait(browser, job)
    assert "تقرير الاستيراد" in done and "استُورد توجيه واحد." in done  # the first row of the duplicated reference
    with world.db.reading() as session:
        assert list(session.scalars(select(Directive.reference))) == ["1447/9001"]
    assert browser.post(f"{job}/run", {"mode": "valid_rows"}).status_code == 409  # imported once only


def test_a_valid_workbook_imports_all_or_nothing_with_its_meeting_and_audit(world: World):
    _meeting(world, 4)
    browser = signed_in(world, "secretariat", "en")
    rows = [row(title=f"توصية {n}", kind="توصية", meeting=4, deadline="1447-12-10", tags="bus_delay")
            for n in range(1, 4)]
    job = _upload(browser, workbook(rows), season="1447")
    page = _wait(browser, job)
    assert "Every row is valid." in page and 'value="all_or_nothing"' in page and "disabled" not in page.split(
        'id="import-choice"')[1].split("</form>")[0]
    other = signed_in(world, "admin")
    assert other.get(job).status_code == 404  # a job is its owner's only
    browser.get(job)
    assert browser.post(f"{job}/run", {"mode": "all_or_nothing"}).status_code == 303
    done = _wait(browser, job)
    assert "3 directives were imported." in done
    with world.db.reading() as session:
        rows_in_db = list(session.scalars(select(Directive)))
        assert len(rows_in_db) == 3 and {d.status for d in rows_in_db} == {"draft"}
        assert {d.meeting_id for d in rows_in_db} == {session.scalar(select(Meeting.id))}
        events = [e.action for e in audit.timeline(session, "season:1447")]
    assert events[-1] == "directives.imported"


def test_wrong_headers_and_files_that_are_not_workbooks_are_reported_and_import_nothing(world: World):
    browser = signed_in(world, "secretariat", "en")
    wrong = workbook([["x", "y"]], headers=[["colour", *HEADERS_EN[1:3]]])
    page = _wait(browser, _upload(browser, wrong))
    assert "This workbook cannot be imported." in page and "Unknown column header" in page and "colour" in page
    assert "A required column is missing" in page and 'id="import-choice"' not in page
    page = _wait(browser, _upload(browser, PDF))
    assert "The file is not an Excel workbook" in page and 'id="import-choice"' not in page
    both = workbook([row()], headers=[HEADERS_AR, HEADERS_EN])
    assert "Every row is valid." in _wait(browser, _upload(browser, both))
    browser.get("/import")
    empty = browser.post("/import", {})
    assert empty.status_code == 422 and "choose the workbook" in empty.text
    assert _count(world, Directive) == 0
    assert signed_in(world, "viewer").post("/import", {}).status_code == 403


# --- pilgrim feedback -----------------------------------------------------------------------------------------

def test_the_feedback_list_filters_and_entity_users_see_only_their_entity(world: World):
    _feedback(world)
    _feedback(world, service="housing", entity="housing", rating=1, text="The air conditioning is broken",
              tags=["maintenance"])
    _feedback(world, service="other", entity=None, rating=5, text="لوحات الإرشاد واضحة", tags=[])
    officer = signed_in(world, "officer", "en")
    page = officer.get("/feedback").text
    assert "3 feedback items" in page and "Raise a directive" not in page  # officers do not raise directives
    assert "1 feedback item" in officer.get("/feedback?service=housing").text
    assert "2 feedback items" in officer.get("/feedback?rating_max=2").text
    assert "1 feedback item" in officer.get("/feedback?entity=none").text
    assert "1 feedback item" in officer.get("/feedback?q=conditioning").text
    today = NOW.date().isoformat()
    assert "3 feedback items" in officer.get(f"/feedback?received_from={today}&received_to={today}").text
    assert "0 feedback items" in officer.get("/feedback?received_from=2026-06-01").text
    assert officer.get("/feedback?service=spa&received_from=nonsense&rating_min=9").status_code == 200
    housing = signed_in(world, "housing.user", "en").get("/feedback").text
    assert "1 feedback item" in housing and "air conditioning" in housing and "الحافلة" not in housing
    assert "/status" not in housing  # entity users read, they do not triage


def test_triage_marks_feedback_reviewed_or_dismissed_and_keeps_the_filters(world: World):
    bus, lift = _feedback(world), _feedback(world, service="housing", entity="housing", text="المصعد معطل")
    officer = signed_in(world, "officer", "en")
    page = officer.get("/feedback?service=transport").text
    assert f'action="/feedback/{bus}/status"' in page
    done = officer.post(f"/feedback/{bus}/status", {"status": "dismissed", "back": "/feedback?service=transport"})
    assert done.status_code == 303 and done.headers["location"] == "/feedback?service=transport"
    assert officer.post(f"/feedback/{bus}/status", {"status": "raised", "back": "//evil.example"}).status_code == 422
    assert officer.post(f"/feedback/{bus}/status", {"status": "reviewed", "back": "//evil.example"}
                        ).headers["location"] == "/feedback"
    viewer = signed_in(world, "viewer")
    assert "/status" not in viewer.get("/feedback").text
    assert viewer.post(f"/feedback/{lift}/status", {"status": "dismissed"}).status_code == 403
    transport = signed_in(world, "transport.user")
    assert transport.post(f"/feedback/{lift}/status", {"status": "dismissed"}).status_code == 404
    with world.db.reading() as session:
        assert dict(session.execute(select(FeedbackItem.id, FeedbackItem.status)).all()) == {bus: "reviewed",
                                                                                               lift: "new"}
    assert _actions(world, f"feedback:{bus}")[-2:] == ["feedback.updated", "feedback.updated"]


def test_raising_a_directive_from_several_feedback_items(world: World):
    first, second = _feedback(world), _feedback(world, rating=1, text="الحافلات مزدحمة", tags=["crowding"])
    browser = signed_in(world, "secretariat", "en")
    page = browser.get("/feedback").text
    assert 'name="ids"' in page and "Raise a directive from the selected feedback" in page
    form = browser.get(f"/feedback/raise?ids={first}&ids={second}").text
    assert "Address pilgrims&#39; feedback on Transport" in form and 'value="P3D"' in form
    assert re.search(r'<option value="transport" selected', form)
    fields = [("ids", str(first)), ("ids", str(second)), ("title", "معالجة تأخر الحافلات"), ("kind", "directive"),
              ("responsible_entity", "transport"), ("deadline_mode", "duration"), ("deadline_duration", "P3D"),
              ("process_model_key", "api_flow"), ("tags", "")]
    bad = browser.post("/feedback/raise", [*fields[:4], ("responsible_entity", "atlantis"), *fields[5:]])
    assert bad.status_code == 422 and "atlantis" in bad.text and _count(world, Directive) == 0
    done = browser.post("/feedback/raise", fields)
    assert done.status_code == 303 and done.headers["location"].endswith("?msg=created")
    with world.db.reading() as session:
        directive = session.scalar(select(Directive))
        assert sorted(t.tag for t in directive.tags) == ["bus_delay", "crowding"]
        assert set(session.scalars(select(FeedbackItem.status))) == {"raised"}
    assert _actions(world, directives.subject(directive.id))[-1] == "directive.raised_from_feedback"
    housing = signed_in(world, "housing.user")
    assert housing.get(f"/feedback/raise?ids={first}").status_code == 403
    lifts = _feedback(world, service="housing", entity="housing", text="المصاعد معطلة", tags=[])
    with world.db.transaction() as session:
        from engine import feedback
        from engine.people.users import User

        secretariat = session.scalar(select(User).where(User.username == "secretariat"))
        other = feedback.raise_directive(session, [lifts], secretariat, NewDirective(
            title="صيانة المصاعد", kind="directive", responsible_entity="transport", deadline="P3D",
            process_model_key="api_flow")).reference
    listed = housing.get("/feedback").text
    assert "المصاعد معطلة" in listed and other not in listed  # raised for another entity: not shown to housing
    assert signed_in(world, "secretariat").get("/feedback/raise?ids=999999").status_code == 404
    assert signed_in(world, "secretariat").get("/feedback/raise").status_code == 422
    assert signed_in(world, "secretariat").get("/feedback/raise?ids=99999999999").status_code == 422


def test_the_public_form_needs_no_sign_in_and_keeps_the_apis_defences(world: World):
    pilgrim = Browser(world, "ar")
    page = pilgrim.get("/public/feedback").text
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    message = {"token": token, "service": "housing", "rating": "2", "text": "المصاعد متعطلة في المسكن",
               "entity": "housing", "website": ""}
    too_quick = pilgrim.post("/public/feedback", message)
    assert too_quick.status_code == 422 and "انتظر بضع ثوانٍ" in too_quick.text
    assert _count(world, FeedbackItem) == 0
    clock.set_now(NOW + timedelta(seconds=5))
    accepted = pilgrim.post("/public/feedback", message)
    assert accepted.status_code == 303 and accepted.headers["location"] == "/public/feedback/thanks"
    assert pilgrim.get("/public/feedback/thanks").status_code == 200
    reused = pilgrim.post("/public/feedback", message)
    assert reused.status_code == 422 and _count(world, FeedbackItem) == 1
    fresh = re.search(r'name="token" value="([^"]+)"', reused.text).group(1)
    assert fresh != token  # a refused token is replaced
    trap = pilgrim.post("/public/feedback", {**message, "token": fresh, "website": "http://bot.example"})
    assert trap.status_code == 303 and trap.headers["location"] == "/public/feedback/thanks"
    assert pilgrim.post("/public/feedback", {**message, "rating": "0"}).status_code == 422
    limited = pilgrim.post("/public/feedback", {**message, "text": "visit cheap-hajj.com now"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0  # the 6th attempt in 10 minutes
    assert _count(world, FeedbackItem) == 1
    clock.set_now(NOW + timedelta(hours=1))
    other = Browser(world, "en")
    fresh = re.search(r'name="token" value="([^"]+)"', other.get("/public/feedback").text).group(1)
    clock.set_now(NOW + timedelta(hours=1, seconds=5))
    link = other.post("/public/feedback", {**message, "token": fresh, "text": "visit cheap-hajj.com now",
                                           "rating": "9"})
    assert link.status_code == 422 and "without links" in link.text and "from 1 to 5" in link.text
    assert 'value="visit cheap-hajj.com now"' not in link.text and "visit cheap-hajj.com now" in link.text
    assert other.post("/public/feedback", message, csrf=False).status_code == 403
    with world.db.reading() as session:
        [item] = session.scalars(select(FeedbackItem)).all()
    assert (item.channel, item.submitted_by, item.rating) == ("public", "public", 2)


# --- recurring obstacles ------------------------------------------------------------------------------------------

def test_recurring_obstacles_from_the_previous_season(world: World):
    clock.set_now(NOW - timedelta(days=365))
    with world.db.transaction() as session:
        seasons.create_season(session, 1446, date(2025, 4, 28), date(2025, 7, 26))
        directives.create(session, NewDirective(title="تأخر الحافلات", kind="directive", responsible_entity="transport",
                                                deadline="P1D", tags=["bus_delay"], season_year=1446,
                                                process_model_key="api_flow"), "secretariat")
    clock.set_now(NOW)
    _feedback(world)
    _feedback(world, service="housing", entity="housing", text="المكيفات معطلة", tags=["maintenance"])
    leader = signed_in(world, "leader", "en")
    page = leader.get("/obstacles").text
    assert "1 obstacle recurred" in page and "bus_delay" in page and "maintenance" not in page
    assert "Transport" in page
    assert leader.get("/obstacles?season=1446").status_code == 200
    assert "There is no earlier season to compare with." in leader.get("/obstacles?season=1446").text
    assert leader.get("/obstacles?season=1440").status_code == 404
    assert leader.get("/obstacles?season=1446&previous=1447").status_code == 422
    assert signed_in(world, "housing.user").get("/obstacles").status_code == 403


def test_import_jobs_belong_to_their_uploader_run_once_and_are_forgotten(world: World):
    from engine.foundation.errors import Conflict, NotFound
    from engine.people.users import User
    from engine.system import import_jobs

    home = world.settings.home
    with world.db.transaction() as session:
        owner, other = (session.scalar(select(User.id).where(User.username == who)) for who in ("secretariat", "admin"))
        job = import_jobs.create(session, home, owner, "a.xlsx", io.BytesIO(b"x" * 10), None, max_bytes=100)
        job_id = job.id
        assert import_jobs.get(session, job_id, owner) is job
        with pytest.raises(NotFound):
            import_jobs.get(session, job_id, other)  # another user's job does not exist for them
        with pytest.raises(Conflict):
            import_jobs.claim_for_import(session, job, "valid_rows", False)  # still being checked
        job.phase = import_jobs.VALIDATED
        session.flush()
        import_jobs.claim_for_import(session, job, "valid_rows", False)
        with pytest.raises(Conflict):
            import_jobs.claim_for_import(session, job, "valid_rows", False)  # a second click
        with pytest.raises(InvalidInput):
            import_jobs.create(session, home, owner, "big.xlsx", io.BytesIO(b"x" * 101), None, max_bytes=100)
        with pytest.raises(InvalidInput):
            import_jobs.create(session, home, owner, "empty.xlsx", io.BytesIO(b""), None, max_bytes=100)
    with world.db.transaction() as session:
        session.execute(import_jobs.ImportJob.__table__.update().values(
            phase=import_jobs.DONE, created_at=clock.now() - import_jobs.JOB_TTL - timedelta(seconds=1)))
    with world.db.transaction() as session:
        import_jobs.create(session, home, owner, "b.xlsx", io.BytesIO(b"y"), None, max_bytes=100)
    with world.db.transaction() as session, pytest.raises(NotFound):
        import_jobs.get(session, job_id, owner)  # expired


def test_the_import_checks_again_at_import_time_and_can_launch(world: World):
    browser = signed_in(world, "secretariat", "en")
    job = _upload(browser, workbook([row(title="أول", reference="1447/7001"), row(title="ثان")]))
    assert "Every row is valid." in _wait(browser, job)
    with world.db.transaction() as session:  # meanwhile, someone takes the first row's reference
        directives.create(session, NewDirective(title="سبق", kind="directive", responsible_entity="housing",
                                                deadline="P2D", reference="1447/7001"), "admin")
    browser.get(job)
    browser.post(f"{job}/run", {"mode": "all_or_nothing", "launch": "yes"})
    page = _wait(browser, job)
    assert "Nothing was imported." in page and 'data-code="reference_taken"' in page
    assert _count(world, Directive) == 1
    job = _upload(browser, workbook([row(title="ثالث", deadline="P3D")]))
    _wait(browser, job)
    browser.get(job)
    browser.post(f"{job}/run", {"mode": "all_or_nothing", "launch": "yes"})
    page = _wait(browser, job)
    assert "1 directive was imported." in page and "1 was launched." in page and ">Launched<" in page
    with world.db.reading() as session:
        assert session.scalar(select(Directive.status).where(Directive.title == "ثالث")) == "active"
