"""The web UI's pages without a browser, on SQLite and PostgreSQL: sign-in with a session cookie and
CSRF tokens, each role's pages in Arabic and English, access answered with 404 or 403 like the API,
the secretariat's register and form, the step form from its schema, the escalation board."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.foundation import clock
from engine.people.users import User
from engine.work import timers
from engine.work.escalations import Escalation
from tests.conftest import deploy_shipped
from tests.test_api_support import NOW, PDF, World, open_world
from tests.ui_support import Browser, signed_in


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


def _directive(world: World, **overrides) -> dict:
    return world.create_directive(launch=True, deadline="PT6H", **overrides)


# --- sign-in, cookies, CSRF ----------------------------------------------------------------------------

def test_sign_in_sets_an_httponly_lax_session_cookie_and_opens_the_roles_home(world: World):
    homes = {"secretariat": "/directives", "housing.user": "/inbox", "officer": "/inbox",
             "supervisor": "/escalations", "leader": "/dashboard", "viewer": "/dashboard", "admin": "/admin/entities"}
    for username, home in homes.items():
        browser = Browser(world)
        response = browser.sign_in(username)
        assert response.headers["location"] == home, username
        cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
        session = next(c for c in cookies if c.startswith("tansiq_session="))
        assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/" in session
        assert "Secure" not in session  # plain HTTP here; Secure behind TLS (tested below)
        assert browser.get(home).status_code == 200


def test_the_cookies_are_secure_over_tls(world: World):
    browser = Browser(world)
    browser.client.base_url = "https://testserver"
    response = browser.sign_in("secretariat")
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    assert all("Secure" in c for c in cookies) and len(cookies) >= 2


def test_wrong_password_missing_csrf_and_foreign_origin_are_refused(world: World):
    browser = Browser(world)
    browser.get("/login")
    response = browser.post("/login", {"username": "secretariat", "password": "wrong password!"})
    assert response.status_code == 401 and "tansiq_session" not in response.headers.get("set-cookie", "")
    response = browser.post("/login", {"username": "secretariat", "password": "x" * 12}, csrf=False)
    assert response.status_code == 403
    browser.sign_in("secretariat")
    directive = world.create_directive(launch=False, deadline="PT6H")
    assert browser.post(f"/directives/{directive['id']}/launch", {}, csrf=False).status_code == 403
    forged = browser.post(f"/directives/{directive['id']}/launch", {}, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert browser.post(f"/directives/{directive['id']}/launch", {}).status_code == 303


def test_forms_work_behind_a_proxy_that_ends_tls_without_forwarded_headers(world: World):
    """The browser sends `Origin: https://...`; Tansiq, behind a proxy it does not trust, sees plain http.
    nginx's `$host` drops the port, `$http_host` keeps it: both must pass; another host must not."""
    browser = signed_in(world, "secretariat")
    directive = world.create_directive(launch=False, deadline="PT6H")
    launch = f"/directives/{directive['id']}/launch"
    for host in ("tansiq.example.org", "tansiq.example.org:8443"):
        draft = world.create_directive(launch=False, deadline="PT6H")
        response = browser.post(f"/directives/{draft['id']}/launch", {},
                                headers={"Origin": "https://tansiq.example.org:8443", "Host": host})
        assert response.status_code == 303, (host, response.text)
    forwarded = browser.post(launch, {}, headers={"Origin": "https://tansiq.example.org",
                                                  "X-Forwarded-Host": "tansiq.example.org"})
    assert forwarded.status_code == 303
    for origin, host in (("https://evil.example", "tansiq.example.org"),
                         ("https://tansiq.example.org.evil.example", "tansiq.example.org"),
                         ("https://tansiq.example.org:9443", "tansiq.example.org:8443")):
        assert browser.post(launch, {}, headers={"Origin": origin, "Host": host}).status_code == 403, origin


def test_the_public_url_decides_the_origin_and_the_cookies(world: World, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.test_api_support import make_settings

    settings = make_settings(tmp_path, world.db.url.render_as_string(hide_password=False),
                             public_url="https://tansiq.example.org")
    browser = Browser(world)
    browser.client = TestClient(create_app(settings, database=world.db), follow_redirects=False)
    response = browser.client.get("/login")  # plain http inside the proxy, https for users: Secure
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    assert cookies and all("Secure" in c for c in cookies)
    browser.client.base_url = "https://testserver"  # so that the client sends Secure cookies back
    browser.sign_in("secretariat")
    draft = world.create_directive(launch=False, deadline="PT6H")
    launch = f"/directives/{draft['id']}/launch"
    # The request's own address no longer counts: only the public one.
    assert browser.post(launch, {}, headers={"Origin": "http://testserver"}).status_code == 403
    assert browser.post(launch, {}, headers={"Origin": "https://tansiq.example.org:443"}).status_code == 303


def test_a_report_is_made_now_from_the_reports_page(world: World):
    from engine.reports import runs

    browser = signed_in(world, "secretariat")
    page = browser.get("/reports")
    assert page.status_code == 200 and 'action="/reports/run"' in page.text
    assert "tansiq reports run" not in page.text  # the empty state names no command
    refused = browser.post("/reports/run", {"kind": "daily", "day": "2026-13-40"})
    assert refused.status_code == 422 and "ليس تاريخًا (YYYY-MM-DD)" in refused.text  # in the page's language
    made = browser.post("/reports/run", {"kind": "daily", "day": ""})  # no Prefect API here: made at once
    assert made.status_code == 303 and made.headers["location"].startswith("/reports?msg=report_made#run-")
    with world.db.reading() as session:
        [run] = runs.list_runs(session)
    assert run.status == runs.SUCCEEDED and run.trigger == "web" and run.requested_by == "secretariat"
    listed = browser.get("/reports?msg=report_made")
    assert f'id="run-{run.id}"' in listed.text and f"/reports/{run.id}/0" in listed.text
    viewer = signed_in(world, "viewer")
    assert 'action="/reports/run"' not in viewer.get("/reports").text
    assert viewer.post("/reports/run", {"kind": "daily"}).status_code in (403, 404)


def test_pages_need_a_session_and_a_revoked_one_stops_at_once(world: World):
    anonymous = Browser(world)
    response = anonymous.get("/directives?status=active")
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=%2Fdirectives")
    assert anonymous.get("/inbox", headers={"HX-Request": "true"}).headers["HX-Redirect"].startswith("/login")
    browser = signed_in(world, "secretariat")
    assert browser.get("/directives").status_code == 200
    from engine.people.users import revoke_tokens

    clock.set_now(clock.now() + timedelta(seconds=1))
    with world.db.transaction() as session:
        revoke_tokens(session, session.scalar(select(User).where(User.username == "secretariat")), "admin")
    assert browser.get("/directives").status_code == 303
    browser.get("/directives")
    assert browser.post("/logout", {}).status_code == 303


# --- pages per role, both languages ---------------------------------------------------------------------

PAGES = {
    "secretariat": ["/directives", "/directives/new", "/directives?q=%D8%AA&status=active&overdue=no"],
    "housing.user": ["/inbox", "/inbox?show=done", "/inbox?show=overdue", "/directives"],
    "officer": ["/inbox", "/escalations", "/directives"],
    "supervisor": ["/escalations", "/escalations?level=1&age=6", "/dashboard"],
    "leader": ["/dashboard", "/reports"],
    "admin": ["/admin/entities", "/admin/users", "/admin/seasons", "/admin/models", "/admin/models/api_flow"],
}


@pytest.mark.parametrize("language", ["ar", "en"])
def test_every_page_renders_in_both_languages_with_the_csp_and_no_inline_script(world: World, language: str):
    directive = _directive(world)
    PAGES_WITH_IDS = {**PAGES, "secretariat": [*PAGES["secretariat"], f"/directives/{directive['id']}"]}
    for username, urls in PAGES_WITH_IDS.items():
        browser = signed_in(world, username, language)
        for url in urls:
            response = browser.get(url)
            assert response.status_code == 200, (username, url, response.text[:500])
            html = response.text
            assert f'<html lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}">' in html
            assert "script-src 'self'" in response.headers["content-security-policy"]
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
            assert ' style="' not in html and "<style" not in html, url
            assert 'href="#main"' in html and '<main id="main"' in html
            assert html.count('name="csrf_token"') == html.count("<form method=\"post\""), url
            if language == "ar":
                assert "تنسيق" in html
    page = signed_in(world, "secretariat", language).get(f"/directives/{directive['id']}").text
    if language == "ar":
        # both calendars, Eastern Arabic digits
        assert "هـ</span>" in page and "م)</span>" in page and re.search("[٠-٩]", page)
    else:
        assert " AH</span>" in page and "Dhu al-Hijjah" in page


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_diagram_of_a_shipped_model_carries_its_labels_in_the_page_language(world: World, language: str):
    """Every drawn element's `name` is its `name_ar` or `name_en` (bpmn-js draws `name`); the page has the zoom
    buttons."""
    from lxml import etree

    directive = world.escalated_standard_directive()
    browser = signed_in(world, "officer", language)
    root = etree.fromstring(browser.get(f"/directives/{directive['id']}/diagram.xml").content)
    names = {e.get("id"): e.get("name") for e in root.iter() if isinstance(e.tag, str) and e.get("name")}
    accepted = "flow_verification_result_to_completed_merge"
    expected = {"ar": {"escalate_level_1": "التصعيد إلى المشرف (المستوى الأول)", "lane_supervisor": "المشرف",
                       accepted: "مقبول", "verification_result": "هل تحقق الإنجاز؟"},
                "en": {"escalate_level_1": "Escalate to the supervisor (level 1)", "lane_supervisor": "Supervisor",
                       accepted: "accepted", "verification_result": "Verified?"}}
    assert {key: names[key] for key in expected[language]} == expected[language]
    page = browser.get(f"/directives/{directive['id']}").text
    assert page.count("data-zoom=") == 3 and "data-diagram-tools" in page


def test_a_directive_started_before_the_names_keeps_running_on_its_version_and_draws_its_own(world: World):
    """Deploying the shipped model with its diagram names is a new version: a directive running on the older one
    stays there, works on, and its diagram falls back to `name` where that version has no name in Arabic."""
    from lxml import etree

    from engine.bpmn import decision_tables, process_models
    from tests.conftest import SHIPPED_BPMN_DIR
    from tests.helpers import complete
    from tests.model_changes import without_drawn_names

    shipped = SHIPPED_BPMN_DIR / "directive-standard.bpmn"
    with world.db.transaction() as session:
        decision_tables.deploy(session, (SHIPPED_BPMN_DIR / "escalation-ladder.dmn").read_bytes(),
                               "escalation-ladder.dmn", "admin")
        assert process_models.deploy(session, without_drawn_names(shipped.read_bytes()), shipped.name,
                                     "admin").model.version == 1
    older = world.create_directive(process_model_key="directive_standard", deadline="P2D")
    with world.db.transaction() as session:
        assert deploy_shipped(session, shipped.name).model.version == 2
    newer = world.create_directive(process_model_key="directive_standard", deadline="P2D")
    browser = signed_in(world, "officer", "ar")

    def names(directive: dict) -> dict[str, str]:
        root = etree.fromstring(browser.get(f"/directives/{directive['id']}/diagram.xml").content)
        return {e.get("id"): e.get("name") for e in root.iter() if isinstance(e.tag, str) and e.get("id")}

    assert (names(older)["escalate_level_1"], names(older)["acknowledge"]) == (
        "Escalate to the supervisor (level 1)", "استلام التوجيه والإقرار به")
    assert names(newer)["escalate_level_1"] == "التصعيد إلى المشرف (المستوى الأول)"
    complete(world.db, world.open_step(older["id"], "acknowledge"), {"note": "استُلم"}, "housing.user")
    complete(world.db, world.open_step(older["id"], "execute"), {"summary": "نُفّذ"}, "housing.user")
    assert world.open_step(older["id"], "verify")


def test_the_language_switch_sets_a_cookie_and_returns_to_the_page(world: World):
    browser = signed_in(world, "secretariat")
    assert 'lang="ar"' in browser.get("/directives").text
    response = browser.post("/language", {"language": "en", "next": "/directives?status=draft"})
    assert response.status_code == 303 and response.headers["location"] == "/directives?status=draft"
    assert 'lang="en"' in browser.get("/directives").text
    response = browser.post("/language", {"language": "ar", "next": "//evil.example/"})
    assert response.headers["location"] == "/"


# --- access: 404 when unseen, 403 when seen but not allowed ------------------------------------------------

def test_pages_answer_404_or_403_like_the_api(world: World):
    directive = _directive(world)
    did = directive["id"]
    step = world.open_step(did, "acknowledge")
    transport, viewer, housing, officer = (signed_in(world, u) for u in ("transport.user", "viewer", "housing.user",
                                                                           "officer"))
    assert transport.get(f"/directives/{did}").status_code == 404
    assert transport.get(f"/directives/{did}/diagram.xml").status_code == 404
    assert transport.get(f"/steps/{step}").status_code == 404
    assert transport.get("/directives/999999").status_code == 404
    assert viewer.get("/directives/new").status_code == 403
    assert viewer.get("/inbox").status_code == 403
    assert housing.get("/admin/users").status_code == 403
    assert housing.get("/dashboard").status_code == 403
    assert housing.get(f"/directives/{did}").status_code == 200
    officer.get(f"/directives/{did}")
    assert officer.post(f"/steps/{step}/complete", {}).status_code == 403
    assert officer.post(f"/directives/{did}/cancel", {"reason": "x"}).status_code == 403
    assert "غير مسموح" in officer.post(f"/directives/{did}/cancel", {"reason": "x"}).text


# --- the secretariat ------------------------------------------------------------------------------------

def test_the_secretariat_registers_a_directive_with_a_hijri_deadline_and_launches_it(world: World):
    browser = signed_in(world, "secretariat")
    page = browser.get("/directives/new")
    assert page.status_code == 200 and 'value="api_flow"' in page.text
    form = [("title", "تجهيز مراكز الاستقبال"), ("title_en", "Prepare the reception centres"), ("kind", "directive"),
            ("priority", "high"), ("track", "business"), ("programme_track", "tansiq"),
            ("responsible_entity", "housing"), ("supporting", "transport"), ("process_model_key", "api_flow"),
            ("deadline_mode", "hijri"), ("deadline_hijri_year", "1447"), ("deadline_hijri_month", "12"),
            ("deadline_hijri_day", "5"), ("deadline_time", "14:30"), ("tags", "استقبال, reception"),
            ("action", "launch")]
    response = browser.post("/directives/new", form)
    assert response.status_code == 303, response.text
    detail = browser.get(response.headers["location"])
    assert detail.status_code == 200
    html = detail.text
    assert "أُطلق التوجيه" in html  # the flash message
    assert "٥ ذو الحجة ١٤٤٧هـ" in html and "٢٢ مايو ٢٠٢٦م" in html and "١٤:٣٠" in html
    did = int(response.headers["location"].split("/")[2].split("?")[0])
    api = world.call("secretariat", "GET", f"/api/v1/directives/{did}").json()
    assert api["status"] == "active" and api["deadline_at"].startswith("2026-05-22T11:30")
    assert api["supporting_entities"] == ["transport"] and api["priority"] == "high"

    # A refused form comes back with what was typed and why, status 422.
    bad = browser.post("/directives/new", [("title", "بلا جهة"), ("kind", "directive"), ("deadline_mode", "duration"),
                                           ("deadline_duration", "PT6H"), ("action", "draft")])
    assert bad.status_code == 422 and "بلا جهة" in bad.text and 'role="alert"' in bad.text


def test_the_register_filters_searches_pages_and_exports(world: World):
    for number in range(30):
        world.create_directive(launch=number % 2 == 0, deadline="PT6H", title=f"توجيه رقم {number}",
                               responsible_entity="transport" if number % 3 == 0 else "housing")
    browser = signed_in(world, "secretariat", "en")
    page = browser.get("/directives")
    assert "30 directives" in page.text and "Page 1 of 2" in page.text
    page = browser.get("/directives?status=draft&entity=transport")
    assert "5 directives" in page.text
    partial = browser.get("/directives?q=%D8%B1%D9%82%D9%85%2012", headers={"HX-Request": "true"})
    assert "<html" not in partial.text and "1 directive<" in partial.text
    export = browser.get("/directives/export.csv?status=active")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert rows[0][0] == "Reference" and len(rows) == 16
    assert all(r[3] == "Active" for r in rows[1:]) and "Dhu al-Hijjah" in rows[1][7]
    arabic = signed_in(world, "housing.user").get("/directives/export.csv").text
    assert arabic.lstrip("\ufeff").startswith("المرجع") and "الإسكان" in arabic and "النقل" not in arabic


# --- entity, officer, supervisor ---------------------------------------------------------------------------

def test_the_entity_acknowledges_reports_progress_with_a_file_and_completes_from_the_schema(world: World):
    did = _directive(world)["id"]
    housing = signed_in(world, "housing.user")
    inbox = housing.get("/inbox")
    assert inbox.status_code == 200 and "Acknowledge" in inbox.text
    acknowledge = world.open_step(did, "acknowledge")
    housing.get(f"/steps/{acknowledge}")
    location = housing.post(f"/steps/{acknowledge}/complete", {}).headers["location"]
    execute = world.open_step(did, "execute")
    assert location == f"/steps/{execute}?msg=completed"  # the entity's next step at once
    page = housing.get(f"/steps/{execute}")
    assert 'name="field.summary"' in page.text and "required" in page.text and 'name="files"' in page.text
    response = housing.post(f"/steps/{execute}/progress", {"percent": "40", "note": "نصف العمل"},
                            files=[("files", ("محضر.pdf", PDF, "application/pdf"))])
    assert response.status_code == 303, response.text
    page = housing.get(f"/steps/{execute}")
    assert "٤٠٪" in page.text and "محضر.pdf" in page.text
    missing = housing.post(f"/steps/{execute}/complete", {"field.summary": ""})
    assert missing.status_code == 422 and "summary" in missing.text
    evidence_id = re.search(r'name="field.evidence" value="(\d+)"', housing.get(f"/steps/{execute}").text).group(1)
    response = housing.post(f"/steps/{execute}/complete", [("field.summary", "تم التنفيذ"),
                                                            ("field.evidence", evidence_id)])
    assert response.status_code == 303, response.text
    verify = world.open_step(did, "verify")
    officer = signed_in(world, "officer")
    page = officer.get(f"/steps/{verify}")
    assert "تم التنفيذ" in page.text and 'value="no"' in page.text
    response = officer.post(f"/steps/{verify}/complete", {"field.accepted": "no", "field.reason": "أرفقوا الصور"})
    assert response.status_code == 303
    assert world.open_step(did, "execute")


def _deploy_standard(world: World) -> None:

    with world.db.transaction() as session:
        deploy_shipped(session, "directive-standard.bpmn")


def test_a_supervisor_extends_one_escalation_and_closes_others_in_bulk(world: World):
    _deploy_standard(world)
    ids = [_directive(world, process_model_key="directive_standard")["id"] for _ in range(3)]
    for did in ids:
        with world.db.transaction() as session:
            from engine.work import instances

            instances.complete_task(session, world.open_step(did, "acknowledge"), {}, "housing.user")
    clock.set_now(NOW + timedelta(hours=7))
    timers.run_until_idle(world.db)
    with world.db.reading() as session:
        escalations = list(session.scalars(select(Escalation).order_by(Escalation.id)))
    assert len(escalations) == 3
    supervisor = signed_in(world, "supervisor")
    board = supervisor.get("/escalations")
    assert board.status_code == 200 and board.text.count('name="ids"') == 3
    first = escalations[0].id
    response = supervisor.post(f"/escalations/{first}/resolve", {
        "action": "extend", "note": "تمديد يوم", f"deadline_{first}_mode": "duration",
        f"deadline_{first}_duration": "24 hours", "back": "/escalations?level=1"})
    assert response.status_code == 303, response.text[-3000:]
    assert response.headers["location"] == f"/escalations?level=1&done={first}"
    notice = supervisor.get(response.headers["location"]).text
    assert "مُدّد الموعد النهائي لـ" in notice and 'id="resolution-notice"' in notice
    response = supervisor.post("/escalations/bulk", [("ids", str(escalations[1].id)), ("ids", str(escalations[2].id)),
                                                     ("action", "close"), ("outcome", "done"), ("note", "أُنجز")])
    assert response.status_code == 200, response.text
    assert "نجح: ٢" in response.text and "فشل: ٠" in response.text
    api = world.call("supervisor", "GET", "/api/v1/escalations?status=all").json()["items"]
    assert sorted(e["resolved_action"] for e in api) == ["close", "close", "extend"]
    # The three deadlines fell due at one moment: the timer worker may have escalated them in any order.
    extended = escalations[0].directive_id
    assert [world.call("secretariat", "GET", f"/api/v1/directives/{did}").json()["extension_count"]
            for did in ids] == [1 if did == extended else 0 for did in ids]
    officer = signed_in(world, "officer")
    assert officer.post(f"/escalations/{first}/resolve", {"action": "extend"}).status_code in (403, 422)


# --- languages, digits, dates, forms (no database) -----------------------------------------------------------

def test_the_arabic_catalogue_translates_every_message_with_six_plural_forms():
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    from api.web.i18n import TRANSLATIONS

    root = TRANSLATIONS.parent.parent
    method_map = [("api/web/**.py", "python"), ("api/templates/**.html", "jinja2")]
    options = {"api/templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                         "lstrip_blocks": "true"}}
    found = set()
    for _name, _line, message, _comments, _context in extract_from_dir(
            str(root), method_map, options, keywords={"_": None, "N_": None, "gettext": None,
                                                      "ngettext": (1, 2)}):
        found.add(message[0] if isinstance(message, tuple) else message)
    with (TRANSLATIONS / "ar" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="ar")
    assert catalog.num_plurals == 6
    translated = {m.id[0] if isinstance(m.id, tuple) else m.id: m for m in catalog if m.id and m.string}
    assert sorted(found - set(translated)) == [], "run the pybabel commands in docs/ui.md"
    for message in translated.values():
        assert not message.fuzzy, message.id
        if isinstance(message.id, tuple):
            assert len(message.string) == 6 and all(message.string), message.id


def test_digits_numbers_and_both_calendars():
    from datetime import UTC, date, datetime

    from api.web import i18n

    assert i18n.digits("1447/0042 50%", "ar") == "١٤٤٧/٠٠٤٢ ٥٠٪" and i18n.digits("12", "en") == "12"
    assert i18n.number(12345.5, "ar", 1) == "١٢٬٣٤٥٫٥" and i18n.number(None, "ar") == "—"
    moment = datetime(2026, 5, 20, 6, tzinfo=UTC)  # 09:00 in Riyadh, 3 Dhu al-Hijjah 1447
    arabic = str(i18n.both_calendars(moment, "ar", weekday=True))
    assert "الأربعاء" in arabic and "٣ ذو الحجة ١٤٤٧هـ" in arabic and "(٢٠ مايو ٢٠٢٦م)" in arabic and "٠٩:٠٠" in arabic
    english = str(i18n.both_calendars(moment, "en"))
    assert "3 Dhu al-Hijjah 1447 AH" in english and "(20 May 2026)" in english and "09:00" in english
    assert "2026-05-20T06:00:00+00:00" in english
    assert str(i18n.both_calendars(date(2026, 5, 20), "en", with_time=False)).count("09:00") == 0
    assert "3 Dhu al-Hijjah" in str(i18n.both_calendars("2026-05-20T06:00:00Z", "en"))
    assert i18n.plain_both_calendars(moment, "en") == "3 Dhu al-Hijjah 1447 AH / 20 May 2026 09:00"
    assert [i18n.translations("ar").ngettext("%(n)s directive", "%(n)s directives", n) for n in (0, 1, 2)] == \
        ["لا توجد توجيهات", "توجيه واحد", "توجيهان"]


def test_a_step_form_is_generated_from_its_schema_and_read_back():
    from api.web.forms import deadline_from_form, fields_of, read_form
    from engine.foundation.errors import InvalidInput

    schema = {"type": "object", "required": ["decision", "accepted"], "properties": {
        "decision": {"type": "string", "enum": ["accept", "return"]}, "accepted": {"type": "boolean"},
        "summary": {"type": "string", "maxLength": 4000}, "count": {"type": "integer", "minimum": 0},
        "evidence": {"type": "array", "items": {"type": "string"}}, "codes": {"type": "array", "items":
                                                                              {"type": "string"}}}}
    fields = {f.name: f for f in fields_of(schema)}
    assert [fields[n].widget for n in schema["properties"]] == ["select", "yesno", "textarea", "integer", "evidence",
                                                                "lines"]
    assert fields["decision"].required and fields["decision"].options == ["accept", "return"]

    class Form(dict):
        def getlist(self, name):
            value = self.get(name)
            return value if isinstance(value, list) else [value] if value is not None else []

    data = read_form(schema, Form({"field.decision": "return", "field.accepted": "no", "field.summary": " done ",
                                   "field.count": "3", "field.evidence": ["4", "5"], "field.codes": "a\n\nb"}))
    assert data == {"decision": "return", "accepted": False, "summary": "done", "count": 3, "evidence": ["4", "5"],
                    "codes": ["a", "b"]}
    with pytest.raises(InvalidInput):
        read_form(schema, Form({"field.count": "three"}))
    hijri = deadline_from_form(Form({"deadline_mode": "hijri", "deadline_hijri_year": "1447",
                                     "deadline_hijri_month": "12", "deadline_hijri_day": "5", "deadline_time": ""}))
    assert hijri.isoformat() == "2026-05-22T23:59:00+03:00"
    assert deadline_from_form(Form({"deadline_mode": "duration", "deadline_duration": "48 hours"})) == "48 hours"
    with pytest.raises(InvalidInput):
        deadline_from_form(Form({"deadline_mode": "gregorian", "deadline_date": "2026-02-30"}))
