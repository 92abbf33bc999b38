"""Issue 9 in a real browser (Debian's Chromium driven by Playwright, against uvicorn on 127.0.0.1, SQLite):
the secretariat registers a meeting with a Hijri date, downloads the Excel template from the import page,
fills it with openpyxl (three recommendations of the meeting and ten thousand rows naming an unknown
entity), uploads it, watches the progress bar, reads the validation report, imports the valid rows, then
opens the meeting and launches all of its drafts at once. A tour then opens the new pages in Arabic and
English at 1280 and 768 px (nothing may stick out sideways) and saves screenshots under
test-artifacts/ui-import/. As in tests/test_ui_browser.py, every request must stay on 127.0.0.1 and no
page may log a console error (a CSP violation is one).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from engine import feedback
from engine.calendar import seasons
from engine.calendar.business_calendar import gregorian_to_hijri
from engine.calendar.durations import RIYADH
from engine.directives import directives, meetings
from engine.directives.directives import Directive, NewDirective
from engine.feedback import NewFeedback
from engine.foundation import clock
from engine.storage.db import Database
from tests.test_ui_browser import CHROMIUM, Person, Site, _seed, local_chromium, serving

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui-import"
INVALID_ROWS = 10_000  # a big file: checking it takes long enough to watch the progress bar

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    def seed(db: Database) -> None:
        _seed(db)
        _seed_issue_9(db)

    with serving(tmp_path_factory.mktemp("ui-import-home"), seed, ARTIFACTS) as served:
        yield served


def _seed_issue_9(db: Database) -> None:
    """Pilgrim feedback, a previous season sharing a tag with it (a recurring obstacle), and yesterday's meeting
    with one recommendation still open (carried forward to later meetings)."""
    today = clock.now().astimezone(RIYADH).date()
    with db.transaction() as session:
        previous = gregorian_to_hijri(today)[0] - 1
        seasons.create_season(session, previous, today - timedelta(days=400), today - timedelta(days=340))
        directives.create(session, NewDirective(
            title="تأخر الحافلات عن مواعيد النقل", kind="directive", responsible_entity="transport", deadline="P1D",
            tags=["bus_delay"], season_year=previous), "secretariat")
        for service, entity, rating, text, tags in (
                ("transport", "transport", 2, "تأخرت الحافلة ثلاث ساعات عن موعدها", ["bus_delay"]),
                ("housing", "housing", 1, "The lift in the building has been broken for two days", ["maintenance"]),
                ("reception", None, 5, "استقبال ممتاز وتنظيم واضح", [])):
            feedback.record(session, NewFeedback(service=service, rating=rating, text=text, entity=entity, tags=tags),
                            "secretariat")
        meeting = meetings.create(session, number=1, title_ar="الاجتماع التحضيري للموسم",
                                  held=today - timedelta(days=1), actor="secretariat",
                                  title_en="Preparatory meeting", chair="أمير المنطقة",
                                  minutes="ناقش الاجتماع جاهزية مراكز الاستقبال وخطط النقل.",
                                  attending=["housing", "transport", "reception"])
        meetings.add_recommendation(session, meeting.id, NewDirective(
            title="تجهيز مراكز الاستقبال بلوحات إرشادية", title_en="Put up signs in the reception centres",
            kind="recommendation", responsible_entity="reception", deadline="P4D"), "secretariat")


@pytest.fixture(scope="module")
def chromium(site: Site):
    with local_chromium(site) as browser:
        yield browser


def shot(person: Person, name: str) -> None:
    width = person.page.viewport_size["width"]
    path = ARTIFACTS / person.language / f"{name}-{width}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    person.page.screenshot(path=str(path), full_page=True)


def _register_meeting(person: Person, number: int) -> str:
    """The meeting form, its date typed in Hijri (the script shows the Hijri fields)."""
    year, month, day = gregorian_to_hijri(clock.now().astimezone(RIYADH).date())
    person.open("/meetings/new")
    person.page.fill("#number", str(number))
    person.page.fill("#title_ar", "اجتماع التنسيق الأسبوعي")
    person.page.fill("#title_en", "Weekly coordination meeting")
    person.page.fill("#chair", "وكيل الإمارة")
    person.page.check("input[name=held_mode][value=hijri]")
    assert person.page.locator("#held-hday").is_visible() and not person.page.locator("#held-date").is_visible()
    person.page.fill("#held-hday", str(day))
    person.page.select_option("#held-hmonth", str(month))
    person.page.fill("#held-hyear", str(year))
    person.page.check("input[name=attending][value=housing]")
    person.page.check("input[name=attending][value=transport]")
    shot(person, "meeting-form")
    person.page.click("#meeting-form button[type=submit]")
    person.page.wait_for_url(re.compile(r"/meetings/\d+\?msg=meeting_saved"))
    return person.page.url.split("?")[0]


def _fill_template(template: Path, out: Path, meeting_number: int) -> None:
    """Three recommendations of the meeting (entities as the drop-down shows them), then rows to refuse."""
    book = load_workbook(template)
    sheet = book.worksheets[0]
    deadline = gregorian_to_hijri(clock.now().astimezone(RIYADH).date() + timedelta(days=5))
    hijri = f"{deadline[0]}-{deadline[1]:02d}-{deadline[2]:02d} هـ"
    columns = {cell.value.rstrip(" *"): cell.column for cell in sheet[2] if cell.value}

    def put(row: int, values: dict[str, object]) -> None:
        for header, value in values.items():
            sheet.cell(row=row, column=columns[header], value=value)

    for n, entity in enumerate(("الإسكان (housing)", "النقل (transport)", "الإسكان (housing)"), start=3):
        put(n, {"Title": f"توصية الاجتماع رقم {n - 2}", "Kind": "توصية", "Responsible entity": entity,
                "Deadline": hijri, "Meeting number": meeting_number, "Tags": "bus_delay"})
    for n in range(6, 6 + INVALID_ROWS):
        put(n, {"Title": f"صف لا يصح {n}", "Kind": "توجيه", "Responsible entity": "atlantis", "Deadline": "PT48H"})
    book.save(out)


def test_import_a_workbook_then_launch_the_meetings_directives(site: Site, chromium, tmp_path: Path):
    started = time.monotonic()
    person = Person(site, chromium, "secretariat", "ar")
    person.page.on("dialog", lambda dialog: dialog.accept())  # "launch every draft?"
    meeting_url = _register_meeting(person, 7)

    person.open("/import")
    shot(person, "import")
    with person.page.expect_download() as download:
        person.page.click("a[href='/import/template.xlsx?lang=ar']")
    template = tmp_path / "template.xlsx"
    download.value.save_as(template)
    filled = tmp_path / "filled.xlsx"
    _fill_template(template, filled, 7)

    person.page.set_input_files("#import-file", str(filled))
    person.page.click("#import-upload button[type=submit]")
    # Checking ten thousand rows takes a few seconds: the job's page shows the progress bar meanwhile, and
    # htmx polls it until the report is ready.
    person.page.wait_for_selector("#import-progress progress", state="attached", timeout=10_000)
    shot(person, "import-progress")
    person.page.wait_for_selector("#import-summary", timeout=60_000)
    summary = person.page.locator("#import-summary").inner_text()
    assert "تقرير التحقق" in summary and "١٠٬٠٠٣" in summary  # 10,003 rows, in Arabic digits
    errors = person.page.locator("#import-errors")
    assert errors.locator("tr.import-error").count() == 200 and "atlantis" in errors.inner_text()  # the first 200
    assert "جهة غير معروفة أو غير نشطة" in errors.inner_text()
    assert "١٠٬٠٠٠" in errors.locator(".error-summary").inner_text()  # one kind of problem, in 10,000 rows
    assert person.page.locator("button[value=all_or_nothing]").is_disabled()
    shot(person, "import-validated")

    person.page.click("button[value=valid_rows]")
    person.page.wait_for_selector("#import-rows", timeout=60_000)
    assert "استُوردت ٣ توجيهات." in person.page.locator("#import-summary").inner_text()
    shot(person, "import-done")
    meeting_id = int(meeting_url.rsplit("/", 1)[1])
    with site.db.reading() as session:
        drafts = list(session.scalars(select(Directive).where(Directive.meeting_id == meeting_id)))
    assert [d.status for d in drafts] == ["draft"] * 3

    person.open(meeting_url.removeprefix(site.base))
    recommendations = person.page.locator("#recommendations")
    assert recommendations.locator("tbody tr").count() == 3
    assert "تجهيز مراكز الاستقبال بلوحات إرشادية" in person.page.locator("#carried").inner_text()
    person.page.click("form[action$='/launch-all'] button")
    person.page.wait_for_selector("#launch-report")
    report = person.page.locator("#launch-report").inner_text()
    assert "أُطلقت ٣ توجيهات." in report
    assert person.page.locator("#launch-report .badge-outcome-launched").count() == 3
    shot(person, "meeting-launched")
    with site.db.reading() as session:
        assert {d.status for d in session.scalars(select(Directive).where(Directive.meeting_id == meeting_id))} == {
            "active"}
        from engine.storage import audit

        assert audit.timeline(session, meetings.subject(meeting_id))[-1].action == "meeting.launched_all"
    person.close()
    assert site.console == [], site.console
    assert time.monotonic() - started < 60


TOUR = {
    "secretariat": [("/meetings", "meetings"), ("/meetings/new", "meeting-new"), ("/import", "import-page"),
                    ("/feedback", "feedback"), ("/obstacles", "obstacles")],
    "housing.user": [("/meetings", "meetings-entity"), ("/feedback", "feedback-entity")],
}


@pytest.mark.parametrize("language", ["ar", "en"])
def test_a_tour_of_the_new_pages(site: Site, chromium, language: str):
    with site.db.reading() as session:
        meeting = session.scalar(select(meetings.Meeting.id).order_by(meetings.Meeting.id))
        item = session.scalar(select(feedback.FeedbackItem.id).order_by(feedback.FeedbackItem.id))
    tour = {**TOUR, "secretariat": [*TOUR["secretariat"], (f"/meetings/{meeting}", "meeting"),
                                    (f"/feedback/raise?ids={item}", "feedback-raise")]}
    for username, pages in tour.items():
        person = Person(site, chromium, username, language)
        for path, name in pages:
            for width in (1280, 768):
                person.page.set_viewport_size({"width": width, "height": 900})
                person.open(path)
                assert person.page.locator("main#main h1").count() == 1, path
                overflow = person.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, (path, width, overflow)
                shot(person, f"tour-{name}")
        person.close()
    anonymous = chromium.new_context(viewport={"width": 390, "height": 800}, locale=f"{language}-SA")
    anonymous.add_cookies([{"name": "tansiq_lang", "value": language, "url": site.base}])
    page = anonymous.new_page()
    page.on("console", lambda m: site.console.append(f"public: {m.text}") if m.type == "error" else None)
    page.goto(site.base + "/public/feedback")
    assert not page.locator("#pf-website").is_visible()  # the honeypot stays out of sight
    page.screenshot(path=str(ARTIFACTS / language / "public-feedback-390.png"), full_page=True)
    anonymous.close()
    assert site.console == [], site.console
