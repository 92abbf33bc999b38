"""The BPMN diagram in a real browser (Debian's Chromium driven by Playwright, against uvicorn on 127.0.0.1, SQLite):
a shipped model's labels in the page's language (its elements' `name_ar`/`name_en`), a custom model's own names, the
view fitted to the box's width with readable labels, the current step in sight, and the zoom buttons. As in
tests/test_ui_browser.py, every request must stay on 127.0.0.1 and no page may log a console error; screenshots go
to test-artifacts/ui-diagram/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.bpmn import process_models
from engine.directives import directives
from engine.directives.directives import NewDirective
from engine.storage.db import Database
from engine.work import instances
from engine.work.work_items import OPEN, WorkItem
from tests.conftest import BPMN_DIR
from tests.test_ui_browser import CHROMIUM, Person, Site, local_chromium, serving
from tests.test_ui_browser import _seed as seed_people_and_models

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui-diagram"
ARABIC = re.compile(r"[\u0600-\u06FF]")
LATIN = re.compile(r"[A-Za-z]")
# One label of directive_standard in each language (bpmn/directive-standard.bpmn, escalate_level_1).
ESCALATION = {"ar": "التصعيد إلى المشرف (المستوى الأول)", "en": "Escalate to the supervisor (level 1)"}
WIDE, NARROW = 1366, 768

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")

# What the page shows of the diagram: the viewport's scale, the box, the drawing, the labels, one shape.
VIEW = """element => {
  const box = document.querySelector('#diagram');
  const viewport = box.querySelector('.viewport');
  const scale = viewport.transform.baseVal.consolidate().matrix.a;
  const labels = [...box.querySelectorAll('.djs-visual text')];
  const lines = [...box.querySelectorAll('.djs-shape .djs-visual text tspan')]
    .map(t => t.getBoundingClientRect().height);
  const rect = r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height});
  const shape = element ? box.querySelector(`[data-element-id='${element}']`) : null;
  return {
    scale: scale,
    box: rect(box.getBoundingClientRect()),
    drawing: rect(viewport.getBoundingClientRect()),
    labels: labels.map(t => t.textContent),
    rtl: labels.filter(t => t.getAttribute('direction') === 'rtl').length,
    font: Math.min(...labels.map(t => parseFloat(getComputedStyle(t).fontSize))),
    smallest_line: Math.min(...lines),
    shape: shape ? rect(shape.getBoundingClientRect()) : null,
    page_width: document.documentElement.scrollWidth,
    window_width: window.innerWidth,
  };
}"""


def _launch_to_verification(db: Database) -> None:
    """A standard directive of the demo season, acknowledged and executed: its current step is `verify`, far to the
    right of the diagram's start; and a model without Arabic or English names."""
    with db.transaction() as session:
        directive = directives.create(session, NewDirective(
            title="رفع جاهزية مراكز الاستقبال على طريق الهجرة قبل وصول طلائع الحجاج",
            title_en="Raise the readiness of the reception centres on the Hijrah road before the first pilgrims arrive",
            kind="directive", responsible_entity="reception", deadline="P3D",
            process_model_key="directive_standard"), "secretariat", launch_now=True)
        instance_id = directive.instance_id
    for data in ({"note": "استُلم التوجيه"}, {"summary": "اكتملت التجهيزات والكوادر في المراكز"}):
        with db.transaction() as session:
            item = session.scalar(select(WorkItem).where(WorkItem.instance_id == instance_id, WorkItem.status == OPEN))
            instances.complete_task(session, item.id, data, "reception.user")
    with db.transaction() as session:
        name = "incident-bad-data.bpmn"
        process_models.deploy(session, (BPMN_DIR / name).read_bytes(), name, "admin")


def _seed(db: Database) -> None:
    seed_people_and_models(db)
    _launch_to_verification(db)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serving(tmp_path_factory.mktemp("ui-diagram-home"), _seed, ARTIFACTS) as served:
        yield served


@pytest.fixture(scope="module")
def chromium(site: Site):
    with local_chromium(site) as browser:
        yield browser
    assert site.console == [], f"console errors: {site.console}"


def _directive_id(site: Site) -> int:
    with site.db.reading() as session:
        return session.scalar(select(directives.Directive.id).where(
            directives.Directive.process_model_key == "directive_standard"))


def _view(person: Person, element: str | None = None) -> dict[str, Any]:
    return person.page.evaluate(VIEW, element)


def _shot(person: Person, name: str) -> None:
    width = person.page.viewport_size["width"]
    folder = ARTIFACTS / person.language
    folder.mkdir(parents=True, exist_ok=True)
    person.page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
    person.page.locator("figure.diagram").screenshot(path=str(folder / f"{name}-{width}-diagram.png"))


def _inside(shape: dict[str, float], box: dict[str, float]) -> bool:
    return (shape["left"] >= box["left"] and shape["right"] <= box["right"]
            and shape["top"] >= box["top"] and shape["bottom"] <= box["bottom"])


def _assert_in_language(labels: list[str], language: str) -> None:
    squeezed = {re.sub(r"\s+", "", label) for label in labels}
    mine, other = ESCALATION[language], ESCALATION["en" if language == "ar" else "ar"]
    assert re.sub(r"\s+", "", mine) in squeezed, labels
    assert not any(re.sub(r"\s+", "", other) in label for label in squeezed)
    foreign = LATIN if language == "ar" else ARABIC
    assert [label for label in labels if foreign.search(label)] == []


@pytest.mark.parametrize("language", ["ar", "en"])
def test_the_directive_diagram_is_in_the_page_language_fitted_and_on_the_current_step(
        site: Site, chromium, language: str):
    officer = Person(site, chromium, "officer", language, width=WIDE)
    try:
        officer.open(f"/directives/{_directive_id(site)}")
        view = _view(officer, "verify")
        _assert_in_language(view["labels"], language)
        assert (view["rtl"] > 0) == (language == "ar"), "Arabic labels run right to left"
        # fitted: the drawing fills the box's width, its labels at least 10 px high on screen
        assert view["drawing"]["width"] >= view["box"]["width"] - 2
        assert view["font"] * view["scale"] >= 10 and view["smallest_line"] >= 10
        assert _inside(view["shape"], view["box"]), "the current step is in sight"
        assert officer.page.locator("[data-element-id='verify'].marker-current").count() == 1
        _shot(officer, "directive")

        fitted = view["scale"]
        officer.page.click("[data-zoom='in']")
        assert _view(officer)["scale"] == pytest.approx(fitted * 1.25, rel=0.01)
        officer.page.locator("[data-zoom='out']").focus()
        officer.page.keyboard.press("Enter")
        officer.page.keyboard.press("Enter")
        assert _view(officer)["scale"] == pytest.approx(fitted / 1.25, rel=0.01)
        officer.page.click("[data-zoom='reset']")
        after = _view(officer, "verify")
        assert after["scale"] == pytest.approx(fitted, rel=0.01) and _inside(after["shape"], after["box"])

        before = after["shape"]["left"]
        officer.page.locator("#diagram svg").first.focus()
        officer.page.keyboard.press("ArrowRight")
        assert _view(officer, "verify")["shape"]["left"] != before, "the arrow keys move the diagram"
    finally:
        officer.close()


@pytest.mark.parametrize("language", ["ar", "en"])
def test_on_a_narrow_screen_the_diagram_stays_in_its_box_on_the_current_step(site: Site, chromium, language: str):
    officer = Person(site, chromium, "officer", language, width=NARROW)
    try:
        officer.open(f"/directives/{_directive_id(site)}")
        view = _view(officer, "verify")
        assert view["page_width"] <= view["window_width"], "no horizontal page overflow"
        _assert_in_language(view["labels"], language)
        assert view["font"] * view["scale"] >= 10
        assert _inside(view["shape"], view["box"])
        assert officer.page.locator("[data-diagram-tools] button").count() == 3
        _shot(officer, "directive")
    finally:
        officer.close()


@pytest.mark.parametrize("language", ["ar", "en"])
def test_a_model_without_names_in_either_language_shows_its_own_names(site: Site, chromium, language: str):
    admin = Person(site, chromium, "admin", language, width=WIDE)
    try:
        admin.open("/admin/models/incident_bad_data")
        labels = _view(admin)["labels"]
        own_name = re.sub(r"\s+", "", "Report the share of tents ready")  # the model's `name`: it has no name_ar
        assert own_name in {re.sub(r"\s+", "", label) for label in labels}
        admin.open("/admin/models/directive_urgent")
        view = _view(admin)
        assert view["drawing"]["width"] >= view["box"]["width"] - 2
        assert [label for label in view["labels"] if (LATIN if language == "ar" else ARABIC).search(label)] == []
        _shot(admin, "admin-model")
    finally:
        admin.close()
