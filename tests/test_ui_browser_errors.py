"""Refused forms in a real browser (Debian's Chromium driven by Playwright, against uvicorn on 127.0.0.1, SQLite),
in Arabic and in English: every error of a form appears at once, in the page's language, next to its field
(`aria-invalid`, `aria-describedby` pointing at the message) and in a summary at the top (`role="alert"`)
whose links lead to the fields; what was typed stays in the form. The journeys: registering a directive with
several bad fields, completing a step with its required field empty, reporting 150 % progress with an empty
file, asking for more time without a date, and the pilgrims' public feedback form.

The browser's own checks (`required`, `max`) would stop most of these before they are sent, so each form is
sent with `noValidate`: what is tested is the server's answer, which is all a script, an old browser or a
tampered form gets. Screenshots go to test-artifacts/ui-errors/{ar,en}/ at 1280 and 768 px.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.directives import directives
from engine.directives.directives import NewDirective
from engine.storage.db import Database
from engine.work import instances
from engine.work.work_items import OPEN, WorkItem
from tests.test_ui_browser import CHROMIUM, Person, Site, _seed, local_chromium, serving

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui-errors"
LATIN = re.compile(r"[A-Za-z]")
TITLE = "تهيئة مسارات الحافلات بين مراكز الاستقبال والمسجد النبوي"

WORDS = {
    "ar": {"title": "أدخل عنوان التوجيه.", "entity": "اختر الجهة المسؤولة.", "date": "اختر تاريخ الموعد النهائي.",
           "empty": "لا يجوز أن يبقى هذا الحقل فارغًا.", "percent": "نسبة الإنجاز عدد صحيح من ٠ إلى ١٠٠",
           "file": "الملف empty.pdf فارغ", "see": "بعض ما أُدخل غير مقبول",
           "service": "اختر الخدمة.", "rating": "اختر تقييماً من ١ إلى ٥."},
    "en": {"title": "Type the directive's title.", "entity": "Choose the responsible entity.",
           "date": "Choose the deadline's date.", "empty": "This field may not be empty.",
           "percent": "progress is a whole percentage from 0 to 100", "file": "empty.pdf is empty",
           "see": "Some of what was typed is not accepted", "service": "Choose the service.",
           "rating": "Choose a rating from 1 to 5."},
}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")


def _seed_errors(db: Database) -> None:
    """The browser tests' people and entities, and a launched directive of housing at its `execute` step."""
    _seed(db)
    with db.transaction() as session:
        directive = directives.create(session, NewDirective(
            title=TITLE, kind="directive", responsible_entity="housing", deadline="P5D",
            process_model_key="directive_standard"), "secretariat", launch_now=True)
        instance_id = directive.instance_id
    with db.transaction() as session:
        acknowledge = session.scalar(select(WorkItem).where(WorkItem.instance_id == instance_id,
                                                            WorkItem.status == OPEN))
        instances.complete_task(session, acknowledge.id, {"note": "تم الاستلام"}, "housing.user")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serving(tmp_path_factory.mktemp("ui-errors-home"), _seed_errors, ARTIFACTS) as served:
        yield served


@pytest.fixture(scope="module")
def chromium(site: Site):
    with local_chromium(site) as browser:
        yield browser
    # Chromium logs every refused form's 422 as a failed resource: that answer is what these tests ask for.
    unexpected = [line for line in site.console if "status of 422 (Unprocessable Entity)" not in line]
    assert unexpected == [], f"console errors: {unexpected}"


def _execute_step(site: Site) -> int:
    with site.db.reading() as session:
        return session.scalar(select(WorkItem.id).where(WorkItem.element_id == "execute", WorkItem.status == OPEN))


def _shots(page, language: str, name: str) -> None:
    """Full-page screenshots at 1280 and at 768 px wide."""
    for width in (1280, 768):
        page.set_viewport_size({"width": width, "height": 900})
        path = ARTIFACTS / language / f"{name}-{width}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _send_unchecked(page, form: str, button: str | None = None) -> None:
    """Send the form as a script would: without the browser's own checks."""
    page.eval_on_selector(form, "f => { f.noValidate = true; }")
    page.click(button or f"{form} button[type=submit]")
    page.wait_for_load_state("load")


def _assert_next_to_field(page, input_id: str, expected: str, language: str, allowed_latin: str = "") -> None:
    """The field is marked invalid and described by its message, which is shown after it, in `language`."""
    field = page.locator(f"#{input_id}")
    assert field.get_attribute("aria-invalid") == "true", input_id
    described = (field.get_attribute("aria-describedby") or "").split()
    assert f"{input_id}-error" in described, (input_id, described)
    message = page.locator(f"#{input_id}-error")
    assert message.is_visible(), input_id
    text = message.inner_text().strip()
    assert expected in text, (input_id, text)
    if language == "ar":
        assert not LATIN.search(text.replace(allowed_latin, "")), f"Latin letters in an Arabic message: {text}"


def _assert_summary(page, links: dict[str, str], language: str, allowed_latin: str = "") -> None:
    """The summary at the top is an alert, focused, with one link per refused field (its label, then the message)."""
    summary = page.locator("#form-error")
    assert summary.get_attribute("role") == "alert" and summary.is_visible()
    assert page.evaluate("document.activeElement && document.activeElement.id") == "form-error"
    for input_id, expected in links.items():
        item = summary.locator("li", has=page.locator(f"a[href='#{input_id}']"))
        assert item.count() == 1, input_id
        assert expected in item.inner_text()
    text = summary.inner_text()
    if language == "ar":
        assert not LATIN.search(text.replace(allowed_latin, "")), f"Latin letters in the Arabic summary: {text}"
    assert "'" not in text.replace("'s", "") and "should be" not in text, "validator output leaked"


@pytest.mark.parametrize("language", ["ar", "en"])
def test_a_new_directive_with_several_bad_fields_shows_every_error_at_once(site: Site, chromium, language: str):
    words = WORDS[language]
    secretariat = Person(site, chromium, "secretariat", language)
    page = secretariat.page
    try:
        secretariat.open("/directives/new")
        page.fill("#title", "   ")
        page.fill("#body", "تُهيّأ المسارات وتُرفع الشواهد إلى غرفة التنسيق والعمليات.")
        page.select_option("#priority", "high")
        page.check("input[name=deadline_mode][value=gregorian]")
        _send_unchecked(page, "#new-directive", "button[name=action][value=draft]")
        _assert_summary(page, {"title": words["title"], "responsible_entity": words["entity"],
                               "deadline-date": words["date"]}, language)
        _assert_next_to_field(page, "title", words["title"], language)
        _assert_next_to_field(page, "responsible_entity", words["entity"], language)
        _assert_next_to_field(page, "deadline-date", words["date"], language)
        assert page.input_value("#body").startswith("تُهيّأ المسارات"), "what was typed stays"
        assert page.input_value("#priority") == "high"
        page.click("#form-error a[href='#responsible_entity']")
        assert page.evaluate("document.activeElement.id") == "responsible_entity"
        _shots(page, language, "01-new-directive")
        with site.db.reading() as session:
            assert session.scalar(select(directives.Directive.id).where(
                directives.Directive.body.like("تُهيّأ المسارات%"))) is None, "nothing was stored"
    finally:
        secretariat.close()


@pytest.mark.parametrize("language", ["ar", "en"])
def test_a_step_form_with_its_required_field_empty(site: Site, chromium, language: str):
    words = WORDS[language]
    housing = Person(site, chromium, "housing.user", language)
    page = housing.page
    try:
        housing.open(f"/steps/{_execute_step(site)}")
        page.fill("#f-summary", "")
        _send_unchecked(page, "#complete-form")
        _assert_summary(page, {"f-summary": words["empty"]}, language)
        _assert_next_to_field(page, "f-summary", words["empty"], language)
        _shots(page, language, "02-step-required")
    finally:
        housing.close()


@pytest.mark.parametrize("language", ["ar", "en"])
def test_progress_over_100_with_an_empty_file_reports_both(site: Site, chromium, language: str, tmp_path: Path):
    words = WORDS[language]
    housing = Person(site, chromium, "housing.user", language)
    page = housing.page
    step = _execute_step(site)
    try:
        housing.open(f"/steps/{step}")
        empty = tmp_path / "empty.pdf"
        empty.write_bytes(b"")
        page.fill("#percent", "150")
        page.fill("#progress-note", "جُهّزت ثلاثة مسارات من خمسة")
        page.set_input_files("#progress-files", str(empty))
        _send_unchecked(page, "#progress-form")
        assert words["see"] in page.locator("#form-error").inner_text()
        _assert_summary(page, {"percent": words["percent"], "progress-files": words["file"]}, language,
                        allowed_latin="empty.pdf")
        _assert_next_to_field(page, "percent", words["percent"], language)
        _assert_next_to_field(page, "progress-files", words["file"], language, allowed_latin="empty.pdf")
        typed = "١٥٠" if language == "ar" else "150"  # Arabic pages show numbers in Eastern digits
        assert page.input_value("#percent") == typed and page.input_value("#progress-note").startswith("جُهّزت")
        _shots(page, language, "03-progress-and-file")
        with site.db.reading() as session:
            assert session.get(WorkItem, step).progress_percent is None, "nothing was recorded"
    finally:
        housing.close()


@pytest.mark.parametrize("language", ["ar", "en"])
def test_an_extension_request_without_a_date(site: Site, chromium, language: str):
    words = WORDS[language]
    housing = Person(site, chromium, "housing.user", language)
    page = housing.page
    step = _execute_step(site)
    try:
        housing.open(f"/steps/{step}")
        page.check("#extension-form input[name=new_deadline_mode][value=gregorian]")
        page.fill("#ext-reason", "تأخر وصول الحافلات الإضافية من المقاول")
        _send_unchecked(page, "#extension-form")
        assert page.url.rstrip("/").endswith(f"/directives/{_directive_of(site, step)}/extension")
        _assert_summary(page, {"ext-date": words["date"]}, language)
        _assert_next_to_field(page, "ext-date", words["date"], language)
        assert page.input_value("#ext-reason") == "تأخر وصول الحافلات الإضافية من المقاول"
        _shots(page, language, "04-extension-no-date")
    finally:
        housing.close()


def _directive_of(site: Site, step: int) -> int:
    with site.db.reading() as session:
        instance_id = session.get(WorkItem, step).instance_id
        return session.scalar(select(directives.Directive.id).where(directives.Directive.instance_id == instance_id))


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_public_feedback_form_names_every_field(site: Site, chromium, language: str):
    words = WORDS[language]
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale=f"{language}-SA")
    context.add_cookies([{"name": "tansiq_lang", "value": language, "url": site.base}])
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(site.base + "/")
                  else (site.outside.append(route.request.url), route.abort()))
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and site.console.append(message.text))
    try:
        page.goto(site.base + "/public/feedback")
        page.fill("#pf-text", "ممتاز")
        page.wait_for_timeout(3_200)  # the form's token refuses a form sent sooner than a person could fill it
        page.fill("#pf-text", "م")
        _send_unchecked(page, "#public-feedback")
        summary = page.locator("#form-error")
        assert summary.get_attribute("role") == "alert"
        _assert_summary(page, {"pf-service": words["service"], "pf-rating-1": words["rating"]}, language)
        _assert_next_to_field(page, "pf-service", words["service"], language)
        _assert_next_to_field(page, "pf-text", "", language)
        assert page.locator("#pf-rating-error").inner_text().strip() == words["rating"]
        assert page.locator("#pf-rating-1").get_attribute("aria-invalid") == "true"
        assert page.input_value("#pf-text") == "م", "what was typed stays"
        _shots(page, language, "05-public-feedback")
    finally:
        context.close()
