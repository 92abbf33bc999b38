"""Inputs in the page's language, in a real browser (Debian's Chromium driven by Playwright, against uvicorn on
127.0.0.1, SQLite), once in Arabic and once in English:
- number fields show Eastern Arabic digits on Arabic pages (typed Latin digits turn Eastern as they are typed)
  and Latin digits on English pages, and what reaches the server is the number either way;
- a date field shows the chosen day in words in both calendars, in the page's language;
- a file field's button and "no file chosen" are in the page's language, and the chosen names appear;
- the timeline names people by their names (the user name on hover) and shows tags and escalation reasons
  by their labels, not their codes.
Screenshots go to test-artifacts/ui-inputs/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from api.web import i18n
from engine.directives import directives
from engine.directives.directives import NewDirective
from engine.work.work_items import OPEN, WorkItem
from tests.test_ui_browser import CHROMIUM, PDF, Person, Site, _seed, local_chromium, serving

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui-inputs"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")

WORDS = {
    "ar": {"choose": "اختر ملفات", "none": "لم يُختر ملف", "sixty": "٦٠", "hijri": "ذو الحجة", "gregorian": "مايو",
           "year": "١٤٤٧", "tag": "مدة الانتظار", "secretariat": "سكرتارية لجنة الحج"},
    "en": {"choose": "Choose files", "none": "No file chosen", "sixty": "60", "hijri": "Dhu al-Hijjah",
           "gregorian": "May", "year": "1447", "tag": "Waiting time", "secretariat": "سكرتارية لجنة الحج"},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serving(tmp_path_factory.mktemp("ui-inputs-home"), _seed, ARTIFACTS) as served:
        yield served


@pytest.fixture(scope="module")
def chromium(site: Site):
    with local_chromium(site) as browser:
        yield browser


def _open_step(site: Site, entity: str) -> tuple[int, int]:
    """A launched directive for `entity`, tagged, and its first open step: (directive id, step id)."""
    with site.db.transaction() as session:
        directive = directives.create(session, NewDirective(
            title="تقليص مدة انتظار الحافلات في مراكز الاستقبال", title_en="Cut the buses' waiting time",
            kind="directive", responsible_entity=entity, deadline="PT72H", process_model_key="directive_standard",
            tags=["waiting_time"]), "secretariat", launch_now=True)
        step = session.scalars(select(WorkItem.id).where(WorkItem.instance_id == directive.instance_id,
                                                          WorkItem.status == OPEN)).first()
        return directive.id, step


def _shot(person: Person, name: str) -> None:
    path = ARTIFACTS / person.language / f"{name}-{person.page.viewport_size['width']}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    person.page.screenshot(path=str(path), full_page=True)


@pytest.mark.parametrize("language", ["ar", "en"])
def test_numbers_dates_and_files_in_the_pages_language(site: Site, chromium, tmp_path, language: str):
    from playwright.sync_api import expect

    words = WORDS[language]
    entity = {"ar": "housing", "en": "transport"}[language]
    directive_id, step_id = _open_step(site, entity)
    person = Person(site, chromium, f"{entity}.user", language)
    page = person.page
    person.open(f"/steps/{step_id}")

    files = page.locator("#progress-form .file-picker")
    expect(files.locator(".file-button")).to_have_text(words["choose"])
    expect(files.locator(".file-names")).to_have_text(words["none"])
    page.locator("#percent").press_sequentially("60")
    expect(page.locator("#percent")).to_have_value(words["sixty"])
    evidence = tmp_path / "محضر المعاينة.pdf"
    evidence.write_bytes(PDF)
    page.set_input_files("#progress-files", str(evidence))
    expect(files.locator(".file-names")).to_have_text("محضر المعاينة.pdf")
    _shot(person, "step-progress")
    page.click("#progress-form button[type=submit]")
    person.settle()
    with site.db.reading() as session:
        assert session.get(WorkItem, step_id).progress_percent == 60  # Latin digits reached the server
    expect(page.locator("#percent")).to_have_value(words["sixty"])

    person.open(f"/directives/{directive_id}")
    expect(page.locator(".tag", has_text=words["tag"])).to_have_attribute("title", "waiting_time")
    registered_by = page.locator(".facts .person").first
    expect(registered_by).to_have_text(words["secretariat"])
    expect(registered_by).to_have_attribute("title", "secretariat")
    assert "secretariat" not in page.locator(".timeline").inner_text()
    _shot(person, "directive")

    staff = Person(site, chromium, "secretariat", language)
    staff.open("/reports")
    day = staff.page.locator("input[type=date]").first
    day.fill("2026-05-20")
    shown = staff.page.locator(".date-in-words").first
    expect(shown).to_contain_text(words["hijri"])
    # The browser's Umm al-Qura day and the server's agree, in the server's words, across month ends.
    for day_ in (date(2026, 5, 20), date(2026, 6, 16), date(2026, 6, 17), date(2027, 2, 8), date(2025, 3, 1),
                 date(2030, 12, 31)):
        day.fill(day_.isoformat())
        expect(shown).to_have_text(f"{i18n.WEEKDAYS[language][day_.weekday()]} {i18n.hijri_text(day_, language)} "
                                   f"({i18n.gregorian_text(day_, language)})")
    day.fill("2026-05-20")
    _shot(staff, "reports-date")
    assert not site.console and not site.outside
