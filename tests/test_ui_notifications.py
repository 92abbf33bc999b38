"""The notification centre in the web UI without a browser (SQLite and PostgreSQL): the bell and its unread
count in every signed-in page's header, the /notifications page (unread marked, filter and paging in the
URL, both calendars), marking one or all read with CSRF-checked forms, and scoping to the user's own."""

from __future__ import annotations

import re

import pytest

from tests.test_api_notifications import notify
from tests.test_api_support import World, open_world
from tests.ui_support import signed_in

BELL = re.compile(r'<a class="bell[^"]*" href="/notifications" aria-label="([^"]+)"')
COUNT = re.compile(r'<span class="bell-count" aria-hidden="true">([^<]+)</span>')
MARK_ONE = re.compile(r'action="/notifications/(\d+)/read"')


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


def bell(html: str) -> tuple[str, str | None]:
    """The bell's accessible label and its visible figure (None when nothing is unread)."""
    label = BELL.search(html)
    assert label, "no bell in the header"
    figure = COUNT.search(html)
    return label.group(1), figure.group(1) if figure else None


def test_the_bell_shows_the_unread_count_on_every_signed_in_page_in_both_languages(world: World):
    directive = world.create_directive(launch=True)
    arabic, english = signed_in(world, "housing.user", "ar"), signed_in(world, "housing.user", "en")
    assert bell(arabic.get("/inbox").text) == ("لا إشعارات غير مقروءة", None)
    assert bell(english.get("/inbox").text) == ("No unread notifications", None)

    notify(world, directive["id"], 3)
    for url in ("/inbox", "/directives", f"/directives/{directive['id']}", "/notifications"):
        assert bell(arabic.get(url).text) == ("٣ إشعارات غير مقروءة", "٣"), url
        assert bell(english.get(url).text) == ("3 unread notifications", "3"), url
    assert bell(signed_in(world, "transport.user").get("/inbox").text)[1] is None  # not theirs
    assert 'class="bell' not in world.client.get("/login").text


def test_the_page_lists_them_newest_first_with_unread_marked_and_both_calendars(world: World):
    directive = world.create_directive(launch=True)
    notify(world, directive["id"], 2)
    step = world.open_step(directive["id"], "acknowledge")
    for language, words in (("ar", ("الإشعارات", "غير مقروء", "هـ</span>", "تعليم الكل مقروءًا")),
                            ("en", ("Notifications", "Unread", " AH</span>", "Mark all read"))):
        browser = signed_in(world, "housing.user", language)
        response = browser.get("/notifications")
        assert response.status_code == 200
        html = response.text
        assert f'<html lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}">' in html
        assert all(word in html for word in words), language
        assert html.count('class="work notice is-unread"') == 2
        assert html.index("Step 2") < html.index("Step 1")  # newest first
        assert f'href="/steps/{step}"' in html and f'href="/directives/{directive["id"]}"' in html
        assert ' style="' not in html and "<style" not in html and "<script>" not in html
        assert html.count('name="csrf_token"') == html.count('<form method="post"')
        assert '<time class="dates" datetime="2026-05-20T06:01:00+00:00"' in html


def test_marking_one_read_redirects_back_with_a_notice_and_the_count_goes_down(world: World):
    directive = world.create_directive(launch=True)
    notify(world, directive["id"], 3)
    browser = signed_in(world, "housing.user", "ar")
    html = browser.get("/notifications?show=unread").text
    first = MARK_ONE.search(html).group(1)

    response = browser.post(f"/notifications/{first}/read", {"next": "/notifications?show=unread"})
    assert response.status_code == 303
    assert response.headers["location"] == "/notifications?show=unread&msg=notification_read"
    html = browser.get(response.headers["location"]).text
    assert "عُلِّم الإشعار مقروءًا." in html and bell(html) == ("إشعاران غير مقروءين", "٢")
    assert f'action="/notifications/{first}/read"' not in html and html.count("is-unread") == 2
    assert 'aria-current="page">غير مقروء' in html  # the filter stays

    everything = browser.get("/notifications?show=all").text
    assert everything.count('class="work notice"') == 1 and "قُرئ في" in everything

    response = browser.post("/notifications/read-all", {"next": "/notifications?show=unread&page=1"})
    assert response.headers["location"] == "/notifications?show=unread&page=1&msg=notifications_read"
    html = browser.get(response.headers["location"]).text
    assert "عُلِّمت الإشعارات كلها مقروءة." in html and bell(html) == ("لا إشعارات غير مقروءة", None)
    assert "لا إشعارات غير مقروءة." in html and "/notifications/read-all" not in html

    english = signed_in(world, "housing.user", "en")
    response = english.post("/notifications/read-all", {"next": "//evil.example/"})
    assert response.headers["location"] == "/notifications?msg=notifications_read"
    assert "All notifications were marked read." in english.get(response.headers["location"]).text


def test_opening_a_notification_marks_it_read_and_leads_to_its_step(world: World):
    directive = world.create_directive(launch=True)
    notify(world, directive["id"], 1)
    step = world.open_step(directive["id"], "acknowledge")
    browser = signed_in(world, "housing.user", "en")
    delivery = MARK_ONE.search(browser.get("/notifications").text).group(1)
    response = browser.get(f"/notifications/{delivery}/open")
    assert response.status_code == 303 and response.headers["location"] == f"/steps/{step}"
    assert bell(browser.get(f"/steps/{step}").text)[1] is None


def test_only_the_owner_may_mark_a_notification_and_forms_need_the_csrf_token(world: World):
    directive = world.create_directive(launch=True)
    notify(world, directive["id"], 1)
    owner = signed_in(world, "housing.user", "en")
    delivery = MARK_ONE.search(owner.get("/notifications").text).group(1)
    stranger = signed_in(world, "transport.user", "en")
    stranger.get("/notifications")
    assert "No notifications yet." in stranger.get("/notifications").text
    assert stranger.post(f"/notifications/{delivery}/read", {}).status_code == 404
    assert stranger.get(f"/notifications/{delivery}/open").status_code == 404
    assert owner.post(f"/notifications/{delivery}/read", {}, csrf=False).status_code == 403
    assert bell(owner.get("/notifications").text)[1] == "1"  # still unread
    response = world.client.get("/notifications", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_the_page_is_paged_and_the_filter_is_kept_in_the_pager(world: World):
    directive = world.create_directive(launch=True)
    notify(world, directive["id"], 25)
    browser = signed_in(world, "housing.user", "en")
    first = browser.get("/notifications?show=unread").text
    assert first.count("is-unread") == 20 and "Page 1 of 2" in first
    assert 'href="/notifications?show=unread&page=2"' in first
    second = browser.get("/notifications?show=unread&page=2").text
    assert second.count("is-unread") == 5 and "Step 1" in second and "Page 2 of 2" in second
    assert "Page 2 of 2" in browser.get("/notifications?show=unread&page=99").text  # past the end: the last
    assert browser.get("/notifications?show=bogus").status_code == 200
