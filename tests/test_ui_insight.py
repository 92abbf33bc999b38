"""The insight pages (both languages): the heatmap's colours, badges, legend and table on a shipped model,
its filters and bad input; the forecast for a supervisor and, scoped, for an entity user."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest

from engine.foundation import clock
from tests.conftest import deploy_shipped
from tests.test_api_support import NOW, World, open_world
from tests.ui_support import signed_in


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        with built.db.transaction() as session:
            deploy_shipped(session, "directive-standard.bpmn")
        yield built


def _worked(world: World) -> dict:
    """One directive acknowledged after 3 hours; its execution open."""
    directive = world.create_directive(process_model_key="directive_standard", deadline="PT30H")
    clock.set_now(NOW + timedelta(hours=3))
    step = world.open_step(directive["id"], "acknowledge")
    assert world.call("housing.user", "POST", f"/api/v1/tasks/{step}/complete",
                      json={"data": {"note": "received"}}).status_code == 200
    return directive


def _heat(page: str) -> dict:
    found = re.search(r'data-heat="([^"]*)"', page)
    assert found, "the diagram carries no heatmap"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("language, words", [("ar", ("الاختناقات", "متأخر", "مفتوح")),
                                             ("en", ("Bottlenecks", "overdue", "open"))])
def test_the_heatmap_colours_each_visited_step_with_its_figures(world: World, language: str, words):
    _worked(world)
    supervisor = signed_in(world, "supervisor", language)
    page = supervisor.get("/insight/bottlenecks?model=directive_standard&measure=open").text
    assert words[0] in page and 'href="/insight/bottlenecks" aria-current="page"' in page
    heat = _heat(page)
    assert set(heat) == {"acknowledge", "execute"}  # the steps visited; the others stay uncoloured
    assert heat["execute"]["band"] == 3 and heat["acknowledge"]["band"] == 0  # one open against none
    assert words[1] in heat["acknowledge"]["label"] and words[2] in heat["acknowledge"]["label"]
    if language == "ar":
        assert "٣٫٠" in heat["acknowledge"]["label"]  # three hours open, in Eastern Arabic digits
    assert page.count('class="key key-heat-') >= 4 + 5  # the legend's four bands, and each step's row
    assert 'data-element="acknowledge" class="heat-row heat-row-0"' in page


def test_the_heatmap_filters_and_refuses_a_bad_date(world: World):
    _worked(world)
    officer = signed_in(world, "officer", "en")
    none_there = officer.get("/insight/bottlenecks?model=directive_standard&entity=transport").text
    assert _heat(none_there) == {}
    refused = officer.get("/insight/bottlenecks?model=directive_standard&opened_from=yesterday")
    assert refused.status_code == 422 and "2026-05-20" in refused.text
    entity_user = signed_in(world, "housing.user", "en")
    assert entity_user.get("/insight/bottlenecks").status_code == 403
    assert "/insight/bottlenecks" not in entity_user.get("/inbox").text


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_forecast_shows_a_supervisor_every_entity_and_an_entity_user_their_own(world: World, language: str):
    world.create_directive(process_model_key="directive_standard", deadline="PT20H")
    world.create_directive(process_model_key="directive_standard", deadline="PT20H", responsible_entity="transport")
    supervisor = signed_in(world, "supervisor", language).get("/insight/forecast").text
    assert 'data-entity="housing" data-level="1"' in supervisor
    assert 'data-entity="transport" data-level="1"' in supervisor
    own = signed_in(world, "housing.user", language)
    page = own.get("/insight/forecast").text
    assert 'data-entity="housing" data-level="1"' in page and 'data-entity="transport"' not in page
    assert 'id="f-entity"' not in page, "an entity user has no entity to choose"
    assert own.get("/insight/forecast?entity=transport").status_code == 404


def test_a_directive_page_switches_its_diagram_to_the_heatmap_of_its_model(world: World):
    directive = _worked(world)
    officer = signed_in(world, "officer", "en")
    page = officer.get(f"/directives/{directive['id']}").text
    assert 'id="show-heatmap"' in page and "data-heat=" not in page
    heat = _heat(officer.get(f"/directives/{directive['id']}?diagram=heatmap").text)
    assert set(heat) == {"acknowledge", "execute"}
    entity_user = signed_in(world, "housing.user", "en").get(f"/directives/{directive['id']}?diagram=heatmap").text
    assert "data-heat=" not in entity_user and 'id="show-heatmap"' not in entity_user
