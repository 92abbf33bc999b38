"""The web UI in a real browser: Playwright for Python driving Debian's Chromium (never a downloaded one)
against the app served by uvicorn on 127.0.0.1 and a free port, on a SQLite test database.

The journey, once in Arabic and once in English: the secretariat creates and launches a directive; the
entity acknowledges it, reports progress with a file and completes it; the follow-up officer returns it
once and then accepts it; a supervisor extends an overdue step from the escalation board. A tour then
opens every other page (Arabic and English, 1280 and 768 px wide). Every request must stay on
127.0.0.1 (each one is intercepted and checked), no page may log a console error (a CSP violation is one),
and every page is saved as a full-page screenshot under test-artifacts/ui/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from engine.bpmn import process_models
from engine.calendar import seasons
from engine.calendar.business_calendar import gregorian_to_hijri
from engine.calendar.durations import RIYADH
from engine.directives import directives
from engine.directives.directives import Directive, NewDirective
from engine.foundation import clock
from engine.people import entities, users
from engine.storage.db import Database
from engine.system import migrate
from engine.work import instances, timers
from engine.work.escalations import Escalation
from engine.work.work_items import OPEN, WorkItem
from tests.conftest import SHIPPED_BPMN_DIR
from tests.test_api_support import PASSWORD, PDF, make_settings

CHROMIUM = os.environ.get("TANSIQ_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui"
PEOPLE = {"secretariat": ("secretariat", None, "سكرتارية لجنة الحج"),
          "officer": ("follow_up_officer", None, "مسؤول المتابعة"),
          "supervisor": ("supervisor", None, "المشرف"), "leader": ("leadership", None, "قيادة اللجنة"),
          "admin": ("admin", None, "مدير النظام"),
          "housing.user": ("entity_user", "housing", "مستخدم الإسكان"),
          "transport.user": ("entity_user", "transport", "مستخدم النقل")}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Site:
    base: str
    db: Database
    outside: list[str] = field(default_factory=list)  # requests that tried to leave 127.0.0.1
    console: list[str] = field(default_factory=list)  # console errors of any page


def _seed(db: Database) -> None:
    today = clock.now().astimezone(RIYADH).date()
    with db.transaction() as session:
        process_models.deploy_directory(session, SHIPPED_BPMN_DIR, "tester")
        seasons.create_season(session, gregorian_to_hijri(today)[0], today - timedelta(days=30),
                              today + timedelta(days=60))
        for code, ar, en in (("housing", "الإسكان", "Housing"), ("transport", "النقل", "Transport"),
                             ("reception", "مراكز الاستقبال", "Reception centres")):
            entities.create_entity(session, code, ar, en)
        for username, (role, entity, name) in PEOPLE.items():
            users.create_user(session, username, PASSWORD, role, entity_code=entity, full_name=name)


@contextmanager
def serving(home: Path, seed: Callable[[Database], None], artifacts: Path) -> Iterator[Site]:
    """A migrated SQLite database under `home`, seeded by `seed` (with a fast password hasher), served by
    uvicorn on 127.0.0.1 and a free port from a thread; `artifacts` (the screenshots) starts empty."""
    import uvicorn

    from api.app import create_app

    url = f"sqlite:///{home / 'tansiq.db'}"
    migrate.upgrade(url)
    db = Database(url)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        seed(db)
        port = _free_port()
        app = create_app(make_settings(home, url), database=db)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               access_log=False, lifespan="off"))
        thread = threading.Thread(target=server.run, name=f"{artifacts.name}-test-server", daemon=True)
        thread.start()
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        shutil.rmtree(artifacts, ignore_errors=True)
        artifacts.mkdir(parents=True, exist_ok=True)
        try:
            yield Site(base=f"http://127.0.0.1:{port}", db=db)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            db.dispose()


@contextmanager
def local_chromium(site: Site) -> Iterator[Any]:
    """Debian's Chromium under Playwright; afterwards, no request may have left 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()
    assert site.outside == [], f"requests left 127.0.0.1: {site.outside}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serving(tmp_path_factory.mktemp("ui-home"), _seed, ARTIFACTS) as served:
        yield served


@pytest.fixture(scope="module")
def chromium(site: Site):
    with local_chromium(site) as browser:
        yield browser


class Person:
    """One signed-in person in their own browser context; every request is checked to stay local."""

    def __init__(self, site: Site, chromium, username: str, language: str, width: int = 1280) -> None:
        self.site, self.language, self.username = site, language, username
        self.context = chromium.new_context(viewport={"width": width, "height": 900}, locale=f"{language}-SA",
                                            timezone_id="Asia/Riyadh")
        self.context.add_cookies([{"name": "tansiq_lang", "value": language, "url": site.base}])
        self.context.route("**/*", self._only_local)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: site.console.append(f"{username}: {error}"))
        self.page.set_default_timeout(10_000)
        self.sign_in()

    def _only_local(self, route) -> None:
        url = route.request.url
        if url.startswith(self.site.base + "/") or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.site.outside.append(url)
            route.abort()

    def _console(self, message) -> None:
        if message.type == "error":
            self.site.console.append(f"{self.username} {self.page.url}: {message.text}")

    def sign_in(self) -> None:
        self.page.goto(self.site.base + "/login")
        self.page.fill("#username", self.username)
        self.page.fill("#password", PASSWORD)
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_load_state("domcontentloaded")
        assert "/login" not in self.page.url

    def open(self, path: str) -> None:
        response = self.page.goto(self.site.base + path)
        assert response is not None and response.status == 200, (path, response.status if response else None)
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_load_state("load")
        if self.page.locator("[data-xml-url]").count():
            self.page.wait_for_selector("[data-drawn]")
            assert self.page.get_attribute("[data-xml-url]", "data-drawn") == "true"
            assert self.page.locator(".bjs-powered-by").is_visible()  # the bpmn.io watermark stays visible

    def shot(self, name: str) -> None:
        width = self.page.viewport_size["width"]
        path = ARTIFACTS / self.language / f"{name}-{width}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)

    def flash(self) -> str:
        return self.page.locator(".flash").inner_text()

    def close(self) -> None:
        self.context.close()


def _hijri_in(days: int) -> tuple[int, int, int]:
    return gregorian_to_hijri(clock.now().astimezone(RIYADH).date() + timedelta(days=days))


def _overdue_escalation(site: Site) -> str:
    """A directive whose deadline passed 4 hours ago, escalated to level 1 by the timer worker."""
    started = clock.now() - timedelta(hours=10)
    clock.set_now(started)
    try:
        with site.db.transaction() as session:
            directive = directives.create(session, NewDirective(
                title="صيانة أجهزة التكييف في مراكز الاستقبال", title_en="Service the air conditioning",
                kind="directive", responsible_entity="reception", deadline="PT6H",
                process_model_key="directive_standard"), "secretariat", launch_now=True)
            reference, instance_id = directive.reference, directive.instance_id
        with site.db.transaction() as session:
            item = session.scalar(select(WorkItem).where(WorkItem.instance_id == instance_id, WorkItem.status == OPEN))
            instances.complete_task(session, item.id, {}, "reception.user")
    finally:
        clock.set_now(None)
    timers.run_until_idle(site.db)
    return reference


def _directive(site: Site, reference: str) -> Directive:
    with site.db.reading() as session:
        return session.scalar(select(Directive).where(Directive.reference == reference))


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_journey_of_a_directive(site: Site, chromium, language: str, tmp_path: Path):
    from playwright.sync_api import expect

    words = {"ar": {"launched": "أُطلق التوجيه", "completed": "أُنجزت المهمة", "resolved": "مُدّد الموعد النهائي لـ"},
             "en": {"launched": "The directive was launched", "completed": "The step was completed",
                    "resolved": "The deadline of"}}[language]
    overdue_reference = _overdue_escalation(site)

    # The secretariat creates and launches a directive with a Hijri deadline.
    secretariat = Person(site, chromium, "secretariat", language)
    page = secretariat.page
    secretariat.open("/directives")
    secretariat.shot("01-register")
    page.locator("#q").press_sequentially(overdue_reference)  # htmx swaps the results in and pushes the URL
    expect(page.locator("#results tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"[?&]q="))
    assert overdue_reference in page.locator("#results tbody tr").inner_text()
    secretariat.open("/directives/new")
    title = "تجهيز مراكز الاستقبال قبل وصول الحجاج" if language == "ar" else "Prepare the reception centres"
    page.fill("#title", title)
    page.fill("#title_en", "Prepare the reception centres")
    page.fill("#body", "تُجهّز المراكز وتُرفع الشواهد إلى غرفة التنسيق والعمليات.")
    page.select_option("#kind", "directive")
    page.select_option("#priority", "high")
    page.select_option("#responsible_entity", "housing")
    page.select_option("#process_model_key", "directive_standard")
    page.check("input[name=deadline_mode][value=hijri]")
    assert page.locator("#deadline-hday").is_visible() and not page.locator("#deadline-date").is_visible()
    year, month, day = _hijri_in(3)
    page.fill("#deadline-hday", str(day))
    page.select_option("#deadline-hmonth", str(month))
    page.fill("#deadline-hyear", str(year))
    page.fill("#deadline-time", "14:00")
    secretariat.shot("02-new-directive")
    page.click("button[name=action][value=launch]")
    secretariat.settle()
    assert words["launched"] in secretariat.flash()
    assert page.locator(".badges .badge-active").count() == 1
    reference = page.locator(".eyebrow .ref").inner_text().strip()
    assert page.locator("#diagram .marker-current").count() >= 1  # the open step is marked
    secretariat.shot("03-directive-launched")

    # The entity acknowledges it, reports progress with a file, and completes it.
    housing = Person(site, chromium, "housing.user", language)
    page = housing.page
    housing.open("/inbox")
    housing.shot("04-inbox")
    page.locator("li.work", has_text=reference).locator("a.work-title").click()
    housing.settle()
    housing.shot("05-step-acknowledge")
    page.fill("#f-note", "تم الاستلام")
    page.click("#complete-form button[type=submit]")
    housing.settle()
    assert words["completed"] in housing.flash()
    assert page.locator("#progress-form").count() == 1  # the entity's next step opened at once, no inbox
    page.fill("#percent", "60")
    page.fill("#progress-note", "جُهّز نصف المراكز")
    evidence = tmp_path / "محضر المعاينة.pdf"
    evidence.write_bytes(PDF)
    page.set_input_files("#progress-files", str(evidence))
    page.click("#progress-form button[type=submit]")
    housing.settle()
    assert "محضر المعاينة.pdf" in page.locator("#history-title + ul, .files").first.inner_text() or \
        page.locator("text=محضر المعاينة.pdf").count() >= 1
    housing.shot("06-step-execute-progress")
    page.fill("#f-summary", "جُهّزت المراكز كلها")
    page.locator("input[name='field.evidence']").first.check()
    page.click("#complete-form button[type=submit]")
    housing.settle()
    assert words["completed"] in housing.flash()

    # The follow-up officer returns it once...
    officer = Person(site, chromium, "officer", language)
    page = officer.page
    officer.open("/inbox")
    page.locator("li.work", has_text=reference).locator("a.work-title").click()
    officer.settle()
    officer.shot("07-step-verify")
    page.check("input[name='field.accepted'][value=no]")
    page.fill("#f-reason", "أرفقوا صور المراكز بعد التجهيز")
    page.click("#complete-form button[type=submit]")
    officer.settle()

    # ... the entity reworks it ...
    page = housing.page
    housing.open("/inbox")
    page.locator("li.work", has_text=reference).locator("a.work-title").click()
    housing.settle()
    assert "أرفقوا صور المراكز بعد التجهيز" in page.inner_text("main")
    page.fill("#f-summary", "أُرفقت الصور المطلوبة")
    page.click("#complete-form button[type=submit]")
    housing.settle()

    # ... and the officer accepts it: the directive is completed.
    page = officer.page
    officer.open("/inbox")
    page.locator("li.work", has_text=reference).locator("a.work-title").click()
    officer.settle()
    page.check("input[name='field.accepted'][value=yes]")
    page.click("#complete-form button[type=submit]")
    officer.settle()
    assert page.locator(".badges .badge-completed").count() == 1
    assert page.locator("#diagram .marker-done").count() >= 3
    officer.shot("08-directive-completed")
    assert _directive(site, reference).status == "completed"

    # A supervisor extends the overdue step from the board.
    supervisor = Person(site, chromium, "supervisor", language)
    page = supervisor.page
    supervisor.open("/escalations")
    supervisor.shot("09-board")
    row = page.locator("table.board tbody tr", has_text=overdue_reference)
    row.locator("details.act summary").click()
    row.locator("select[name=action]").select_option("extend")
    row.locator("input[value=duration]").check()
    row.locator("input[name$=_duration]").fill("48 hours")
    row.locator("textarea[name=note]").fill("تمديد يومين لتأخر التوريد")
    supervisor.shot("10-board-extend")
    row.locator("button[type=submit]").click()
    supervisor.settle()
    assert words["resolved"] in supervisor.flash()
    overdue = _directive(site, overdue_reference)
    assert overdue.extension_count == 1 and overdue.current_due_at > clock.now() + timedelta(hours=40)
    with site.db.reading() as session:
        escalation = session.scalar(select(Escalation).where(Escalation.directive_id == overdue.id))
        assert escalation.status == "resolved" and escalation.resolved_action == "extend"

    for person in (secretariat, housing, officer, supervisor):
        person.close()
    assert site.console == [], site.console
    assert site.outside == [], site.outside


TOUR = {  # who opens which page, and its screenshot's name
    "secretariat": [("/directives?overdue=yes", "register-overdue"), ("/directives/new", "new-directive")],
    "housing.user": [("/inbox?show=done", "inbox-done")],
    "supervisor": [("/escalations?status=all", "board-all")],
    "leader": [("/dashboard", "dashboard"), ("/reports", "reports")],
    "admin": [("/admin/entities", "admin-entities"), ("/admin/users", "admin-users"),
              ("/admin/seasons", "admin-seasons"), ("/admin/models", "admin-models"),
              ("/admin/models/directive_standard", "admin-model-diagram"), ("/admin/instances", "admin-instances"),
              ("/admin/incidents", "admin-incidents")],
}


@pytest.mark.parametrize(("language", "widths"), [("ar", (1280, 768)), ("en", (1280, 768))])
def test_a_tour_of_every_page(site: Site, chromium, language: str, widths: tuple[int, ...]):
    _overdue_escalation(site)  # something on the board, an open step, whatever ran before
    with site.db.reading() as session:
        some = session.scalar(select(Directive).order_by(Directive.id.desc()))
        step = session.scalar(select(WorkItem).where(WorkItem.status == OPEN).order_by(WorkItem.id))
    tour = {**TOUR, "secretariat": [*TOUR["secretariat"], (f"/directives/{some.id}", "directive")]}
    if step is not None:  # a step of another entity: the secretariat follows it, the page says who works it
        tour["secretariat"].append((f"/steps/{step.id}", "step"))
    for username, pages in tour.items():
        person = Person(site, chromium, username, language)
        for path, name in pages:
            for width in widths:
                person.page.set_viewport_size({"width": width, "height": 900})
                person.open(path)
                assert person.page.locator("main#main h1").count() == 1, path
                # Nothing may stick out sideways at this width (a table may scroll inside its own box).
                overflow = person.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, (path, width, overflow)
                person.shot(f"tour-{name}")
        person.close()
    # Keyboard: the skip link is the first stop and takes focus to the main content.
    person = Person(site, chromium, "secretariat", language)
    person.open("/directives")
    person.page.keyboard.press("Tab")
    assert person.page.evaluate("document.activeElement.className") == "skip-link"
    person.page.keyboard.press("Enter")
    assert person.page.evaluate("document.activeElement.id") == "main"
    person.close()
    assert site.console == [], site.console
    assert site.outside == [], site.outside


def _failed_progress_report(site: Site) -> tuple[int, int]:
    """A directive whose entity reported 0 %: the next step divides by it, and its process is in incident."""
    from tests.conftest import read_model

    with site.db.transaction() as session:
        process_models.deploy(session, read_model("incident-bad-data.bpmn"), "incident-bad-data.bpmn", "tester")
        directive = directives.create(session, NewDirective(
            title="رفع نسبة جاهزية الخيام في منى", title_en="Report the share of tents ready in Mina",
            kind="directive", responsible_entity="housing", deadline="P2D", process_model_key="incident_bad_data"),
            "secretariat", launch_now=True)
        instance_id = directive.instance_id
        item = session.scalar(select(WorkItem).where(WorkItem.instance_id == instance_id))
        instances.complete_task(session, item.id, {"percent": 0}, "housing.user")
        return directive.id, instance_id


@pytest.mark.parametrize("language", ["ar", "en"])
def test_an_administrator_corrects_an_incident_and_migrates_a_version(site: Site, chromium, language: str):
    """From the navigation's incident count to a corrected retry; then a new version of the standard model is
    uploaded and its running directives moved to it after a dry run."""
    from playwright.sync_api import expect

    from tests.model_changes import with_step_before_every_end

    directive_id, instance_id = _failed_progress_report(site)
    admin = Person(site, chromium, "admin", language)
    page = admin.page
    admin.open("/directives")
    page.click("a.nav-incidents")
    page.wait_for_load_state("load")
    admin.shot("ops-01-incidents")
    page.click(f"a[href='/admin/instances/{instance_id}']")
    admin.settle()
    assert page.locator("#diagram .marker-failed").count() == 1, "the failing element is marked on the diagram"
    admin.shot("ops-02-incident")
    page.fill("input[name='var:percent']", "٥٠" if language == "ar" else "50")
    page.fill("#new-name", "elapsed_days")  # what the directive's data lacked
    page.fill("#new-value", "4")
    page.click("form.variables-form button[type=submit]")
    admin.settle()
    expect(page.locator(".flash")).to_be_visible()
    with site.db.reading() as session:
        assert instances.get_instance(session, instance_id).status == instances.RUNNING
        assert session.get(Directive, directive_id).status == directives.ACTIVE  # the directive goes on
    assert page.locator("a.nav-incidents").count() == 0
    admin.shot("ops-03-retried")

    # A directive runs on the newest version of the standard model; a changed version is uploaded.
    with site.db.reading() as session:
        current = process_models.latest_version(session, "directive_standard")
        version, content = current.version, current.bpmn_xml.encode()
    with site.db.transaction() as session:
        running = directives.create(session, NewDirective(
            title="تفقد مخيمات منى قبل التروية", title_en="Inspect the Mina camps", kind="directive",
            responsible_entity="housing", deadline="P2D", process_model_key="directive_standard"),
            "secretariat", launch_now=True).instance_id
    admin.open("/admin/models")
    page.set_input_files("#bpmn-file", files=[{"name": "directive-standard.bpmn", "mimeType": "application/xml",
                                               "buffer": with_step_before_every_end(content, f"v{version + 1}")}])
    page.click("form[action='/admin/models'] button[type=submit]")
    admin.settle()
    admin.open(f"/admin/models/directive_standard?version={version}")
    page.select_option("#to-version", str(version + 1))
    page.click("button[name=apply][value=no]")
    admin.settle()
    expect(page.locator(f"#migration-plan tr[data-instance='{running}']")).to_be_visible()
    admin.shot("ops-04-dry-run")
    with site.db.reading() as session:
        assert instances.get_instance(session, running).model.version == version, "a dry run changes nothing"
    page.click("button[name=apply][value=yes]")
    admin.settle()
    admin.shot("ops-05-migrated")
    with site.db.reading() as session:
        assert instances.get_instance(session, running).model.version == version + 1
    admin.close()
    assert site.console == [], site.console
    assert site.outside == [], site.outside


@pytest.mark.parametrize("language", ["ar", "en"])
def test_an_administrator_changes_a_rule_and_only_new_directives_follow_it(site: Site, chromium, language: str):
    """A decision table is edited (a new version uploaded); a directive started after it follows the new rule,
    one started before keeps the old, and the model was never deployed again."""
    from tests.conftest import read_model

    ladder = read_model("ladder-by-days.dmn")
    with site.db.transaction() as session:
        from engine.bpmn import decision_tables

        decision_tables.deploy(session, ladder, "ladder-by-days.dmn", "tester")
        process_models.deploy(session, read_model("ruled.bpmn"), "ruled.bpmn", "tester")
        model_versions = len(process_models.list_versions(session, "ruled"))

    def launch(title: str) -> int:
        with site.db.transaction() as session:
            return directives.create(session, NewDirective(
                title=title, title_en=title, kind="directive", responsible_entity="housing", deadline="P3D",
                priority="urgent", process_model_key="ruled"), "secretariat", launch_now=True).instance_id

    def lead_of(instance_id: int) -> tuple[str, dict]:
        with site.db.reading() as session:
            started = instances.get_instance(session, instance_id)
            return instances.load_runtime(started).variables()["reminder_lead"], started.decision_versions

    before = launch("تجهيز مسارات الحافلات إلى المسجد النبوي")
    _lead, versions = lead_of(before)
    admin = Person(site, chromium, "admin", language)
    page = admin.page
    admin.open("/admin/decisions/ladder_by_days")
    assert page.locator("table.decision-table tbody tr").count() == 4
    # The unit shortens the reminder of urgent directives to one hour: the changed file is uploaded.
    edited = ladder.replace(b'<text>"PT2H"</text></outputEntry>\n        <outputEntry id="r1_grace">',
                            f'<text>"PT{versions["ladder_by_days"]}H1M"</text></outputEntry>\n'
                            f'        <outputEntry id="r1_grace">'.encode())
    admin.open("/admin/models")
    page.set_input_files("#bpmn-file", files=[{"name": "ladder-by-days.dmn", "mimeType": "application/xml",
                                               "buffer": edited}])
    page.click("form[action='/admin/models'] button[type=submit]")
    admin.settle()
    assert "/admin/decisions/ladder_by_days" in page.url
    new_version = versions["ladder_by_days"] + 1
    assert page.locator(f"table.decision-table[data-version='{new_version}']").count() == 1
    admin.shot("ops-06-decision-table")
    after = launch("تجهيز مسارات الحافلات إلى المسجد النبوي (بعد تعديل القاعدة)")
    assert lead_of(after) == (f"PT{versions['ladder_by_days']}H1M", {"ladder_by_days": new_version})
    assert lead_of(before)[1] == versions, "the running directive keeps its version of the rule"
    admin.open("/admin/models/ruled")
    assert page.locator("table.decision-table").count() == 1
    admin.shot("ops-07-model-with-decision")
    admin.close()
    with site.db.reading() as session:
        assert len(process_models.list_versions(session, "ruled")) == model_versions, "the model was not redeployed"
    assert site.console == [], site.console
    assert site.outside == [], site.outside
