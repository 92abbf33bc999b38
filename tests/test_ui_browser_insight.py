"""Insight in a real browser (Debian's Chromium driven by Playwright, against uvicorn on 127.0.0.1, SQLite),
on a demo season played through the engine: the heatmap drawn on the shipped standard model (each visited
step coloured by its band, a badge with its figures, the legend), in Arabic and English, and the forecast
for a supervisor (every entity) and for an entity user (their own). As in tests/test_ui_browser.py, every
request must stay on 127.0.0.1 and no page may log a console error; screenshots go to
test-artifacts/ui-insight/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.people import users
from engine.people.entities import Entity
from engine.storage.db import Database
from engine.system import demo
from engine.work.work_items import OPEN, WorkItem
from tests.conftest import SHIPPED_BPMN_DIR
from tests.test_api_support import PASSWORD
from tests.test_ui_browser import CHROMIUM, Person, Site, local_chromium, serving

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui-insight"
# The fill of each band (api/static/css/tansiq.css), as the browser computes it.
BAND_FILLS = {0: "rgb(227, 244, 234)", 1: "rgb(255, 243, 196)", 2: "rgb(253, 217, 181)", 3: "rgb(246, 179, 173)"}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")


def _seed_demo(db: Database) -> None:
    """A demo season (a week, three directives of each sample) and two people who know PASSWORD: a supervisor
    and a user of the entity with the most open steps."""
    demo.seed(db, SHIPPED_BPMN_DIR, days=7, per_template=3)
    with db.transaction() as session:
        busiest = session.execute(select(WorkItem.assignee_entity).where(
            WorkItem.status == OPEN, WorkItem.assignee_entity.is_not(None))
            .group_by(WorkItem.assignee_entity).order_by(func.count().desc()).limit(1)).scalar_one()
        users.create_user(session, "insight.supervisor", PASSWORD, "supervisor", full_name="المشرف")
        users.create_user(session, "insight.entity", PASSWORD, "entity_user", entity_code=busiest,
                          full_name="مستخدم الجهة")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serving(tmp_path_factory.mktemp("ui-insight-home"), _seed_demo, ARTIFACTS) as served:
        yield served


@pytest.fixture(scope="module")
def chromium(site: Site):
    with local_chromium(site) as browser:
        yield browser
    assert site.console == [], f"console errors: {site.console}"


def _busiest(site: Site) -> str:
    with site.db.reading() as session:
        return session.scalar(select(users.User.entity_id).where(users.User.username == "insight.entity"))


def _shot(person: Person, name: str) -> None:
    width = person.page.viewport_size["width"]
    path = ARTIFACTS / person.language / f"{name}-{width}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    person.page.screenshot(path=str(path), full_page=True)


def _fill_of(person: Person, element_id: str) -> str:
    return person.page.evaluate(
        "id => getComputedStyle(document.querySelector(`[data-element-id='${id}'] .djs-visual > :first-child`)).fill",
        element_id)


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_heatmap_is_drawn_on_the_shipped_model_with_its_legend(site: Site, chromium, language: str):
    supervisor = Person(site, chromium, "insight.supervisor", language)
    try:
        supervisor.open("/insight/bottlenecks?model=directive_standard&measure=overdue")
        rows = supervisor.page.locator("tr.heat-row")
        bands = {rows.nth(i).get_attribute("data-element"): int(rows.nth(i).get_attribute("class")[-1])
                 for i in range(rows.count())}
        visited = {row for row in bands if supervisor.page.locator(f".heat-badge[data-element='{row}']").count()}
        assert {"acknowledge", "execute", "verify"} <= visited, "the demo's directives pass these steps"
        for element_id in visited:
            assert _fill_of(supervisor, element_id) == BAND_FILLS[bands[element_id]], element_id
            assert supervisor.page.locator(f"[data-element-id='{element_id}'].heat-{bands[element_id]}").count() == 1
        legend = supervisor.page.locator(".heat-legend .key")
        assert legend.count() == 5 and all(legend.nth(i).is_visible() for i in range(5))
        badge = supervisor.page.locator(".heat-badge[data-element='acknowledge']").inner_text()
        assert ("متأخر" if language == "ar" else "overdue") in badge
        _shot(supervisor, "heatmap")
        supervisor.open("/insight/bottlenecks?model=directive_standard&measure=p90")
        assert supervisor.page.locator(".heat-legend").get_attribute("data-measure") == "p90"
        supervisor.open("/insight/forecast")
        assert supervisor.page.locator("#outlook tbody tr, p.empty").count() >= 1
        assert supervisor.page.locator("#risks tbody tr").count() >= 1, "the demo has open steps due soon"
        _shot(supervisor, "forecast-supervisor")
    finally:
        supervisor.close()


def test_an_entity_user_sees_their_own_forecast_only(site: Site, chromium):
    person = Person(site, chromium, "insight.entity", "ar")
    try:
        person.open("/insight/forecast")
        entities_shown = {row.get_attribute("data-entity") for row in person.page.locator("#outlook tbody tr").all()}
        with site.db.reading() as session:
            own = session.scalar(select(Entity.code).where(Entity.id == _busiest(site)))
        assert entities_shown <= {own}
        assert person.page.locator("#f-entity").count() == 0
        _shot(person, "forecast-entity")
        assert person.page.locator("a[href='/insight/bottlenecks']").count() == 0  # not in their menu
    finally:
        person.close()
