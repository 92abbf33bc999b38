"""The notification centre in a real browser (Debian's Chromium driven by Playwright, against uvicorn on
127.0.0.1, SQLite), once in Arabic and once in English: an entity user with several unread in-app
notifications (queued on a live directive and fanned out as the delivery worker does) sees the bell's count,
opens the notification centre from the bell, marks one read (the count goes down by one) and then all
(the count is gone). As in tests/test_ui_browser.py every request must stay on 127.0.0.1 and no page may
log a console error; screenshots go to test-artifacts/ui-notifications/ (and /tmp/scratch when it exists)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.delivery import notification_delivery as nd
from engine.directives import directives
from engine.directives.directives import NewDirective
from engine.work import notifications
from tests.test_ui_browser import CHROMIUM, Person, Site, _seed, local_chromium, serving

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui-notifications"
SCRATCH = Path("/tmp/scratch")
UNREAD = 4

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serving(tmp_path_factory.mktemp("ui-notifications-home"), _seed, ARTIFACTS) as served:
        yield served


@pytest.fixture(scope="module")
def chromium(site: Site):
    with local_chromium(site) as browser:
        yield browser


def _unread_notifications(site: Site, entity: str) -> None:
    """A live directive for `entity` and UNREAD reminders about it, through the outbox and the fan-out."""
    with site.db.transaction() as session:
        directive = directives.create(session, NewDirective(
            title="تجهيز مخيمات منى قبل يوم التروية", title_en="Prepare the camps in Mina", kind="directive",
            responsible_entity=entity, deadline="PT48H", process_model_key="directive_standard"),
            "secretariat", launch_now=True)
        for n in range(UNREAD):
            notifications.queue(session, directive.instance_id, f"browser:{entity}:{n}", "reminder", None,
                                entity, {"step": ["الإقرار", "التنفيذ", "الشواهد", "المتابعة"][n]})
    with site.db.transaction() as session:
        nd.fan_out(session)


def _shot(person: Person, name: str) -> None:
    width = person.page.viewport_size["width"]
    path = ARTIFACTS / person.language / f"{name}-{width}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    person.page.screenshot(path=str(path), full_page=True)
    if SCRATCH.is_dir() and width == 1280 and name == "notifications":
        person.page.screenshot(path=str(SCRATCH / f"notifications_{person.language}.png"), full_page=True)


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_bell_and_the_notification_centre(site: Site, chromium, language: str):
    from playwright.sync_api import expect

    words = {"ar": {"four": "٤ إشعارات غير مقروءة", "three": "٣ إشعارات غير مقروءة", "none": "لا إشعارات غير مقروءة",
                    "read": "عُلِّم الإشعار مقروءًا.", "all_read": "عُلِّمت الإشعارات كلها مقروءة.",
                    "mark": "تعليم مقروءًا", "mark_all": "تعليم الكل مقروءًا", "digits": ("٤", "٣")},
             "en": {"four": "4 unread notifications", "three": "3 unread notifications",
                    "none": "No unread notifications", "read": "The notification was marked read.",
                    "all_read": "All notifications were marked read.", "mark": "Mark read",
                    "mark_all": "Mark all read", "digits": ("4", "3")}}[language]
    entity = {"ar": "housing", "en": "transport"}[language]  # one entity user each: a fresh inbox
    _unread_notifications(site, entity)
    person = Person(site, chromium, f"{entity}.user", language)
    page = person.page
    person.open("/inbox")
    bell, figure = page.locator("header a.bell"), page.locator("header .bell-count")
    expect(bell).to_have_attribute("aria-label", words["four"])
    expect(figure).to_have_text(words["digits"][0])

    bell.click()
    page.wait_for_url("**/notifications")
    person.settle()
    expect(page.locator(".notice.is-unread")).to_have_count(UNREAD)
    assert page.locator("html").get_attribute("dir") == ("rtl" if language == "ar" else "ltr")
    _shot(person, "notifications")

    page.locator(".notice.is-unread").first.get_by_role("button", name=words["mark"]).click()
    page.wait_for_load_state("load")
    expect(page.locator(".flash")).to_have_text(words["read"])
    expect(bell).to_have_attribute("aria-label", words["three"])
    expect(figure).to_have_text(words["digits"][1])
    expect(page.locator(".notice.is-unread")).to_have_count(UNREAD - 1)
    expect(page.locator(".notice:not(.is-unread)")).to_have_count(1)

    page.get_by_role("button", name=words["mark_all"]).click()
    page.wait_for_load_state("load")
    expect(page.locator(".flash")).to_have_text(words["all_read"])
    expect(bell).to_have_attribute("aria-label", words["none"])
    expect(figure).to_have_count(0)
    expect(page.locator(".notice.is-unread")).to_have_count(0)
    _shot(person, "notifications-read")
    person.close()

    narrow = Person(site, chromium, f"{entity}.user", language, width=768)
    narrow.open("/notifications")
    assert narrow.page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    _shot(narrow, "notifications")
    narrow.close()
    assert site.console == [], site.console
