"""Codes are not shown to people: the directive page's timeline names people by their names (the user name
on hover) and Tansiq's own actors by a word, escalation reasons and the escalation's element by their labels,
tags by their labels (the tag itself on hover); on SQLite and PostgreSQL, in both languages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lxml import html
from sqlalchemy import select

from engine.foundation import clock
from engine.people.users import User
from engine.work import instances, timers
from tests.conftest import deploy_shipped
from tests.test_api_support import NOW, World, open_world
from tests.ui_support import signed_in

WORDS = {"ar": {"timer": "تنسيق (المواعيد)", "overdue": "متأخر", "tag": "مدة الانتظار"},
         "en": {"timer": "Tansiq (deadlines)", "overdue": "Overdue", "tag": "Waiting time"}}


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        with built.db.transaction() as session:
            deploy_shipped(session, "directive-standard.bpmn")
            session.scalars(select(User).where(User.username == "housing.user")).one().full_name = "مستخدم الإسكان"
        yield built


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_timeline_shows_names_and_labels_not_codes(world: World, language: str):
    words = WORDS[language]
    directive = world.create_directive(launch=True, deadline="PT6H", process_model_key="directive_standard",
                                       tags=["waiting_time"])
    with world.db.transaction() as session:
        instances.complete_task(session, world.open_step(directive["id"], "acknowledge"), {}, "housing.user")
    clock.set_now(NOW + timedelta(hours=7))
    timers.run_until_idle(world.db)  # the deadline passes: the timer escalates
    housing_name = "مستخدم الإسكان"

    page = html.fromstring(signed_in(world, "supervisor", language).get(f"/directives/{directive['id']}").text)
    timeline = page.xpath("//ol[@class='timeline']")[0]
    shown = " ".join(timeline.text_content().split())
    people = {p.text_content().strip(): p.get("title") for p in timeline.xpath(".//bdi[@class='person']")}
    assert people[housing_name] == "housing.user" and words["timer"] in people
    assert words["overdue"] in shown
    for code in ("housing.user", "timer", "overdue", "escalate_level", "waiting_time"):
        assert code not in shown, code
    [tag] = page.xpath("//span[@class='tag']")
    assert tag.text_content() == words["tag"] and tag.get("title") == "waiting_time"
