"""One evidence download for the API and the web UI (engine/directives/evidence_store.py `for_download`, served by
api/problems.py `attachment`): the same file, headers and refusals through either door."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.directives import evidence_store
from engine.people.users import User
from engine.storage import file_store
from tests.test_api_support import PDF, World, open_world
from tests.ui_support import signed_in

SAME_HEADERS = ("content-type", "content-disposition", "content-security-policy", "cache-control")


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


def _evidence(world: World, name: str = "تقرير المعاينة.pdf") -> dict:
    directive = world.create_directive()
    step = world.open_step(directive["id"], "acknowledge")
    response = world.call("housing.user", "POST", f"/api/v1/tasks/{step}/evidence",
                          files=[("files", (name, PDF, "application/pdf"))])
    assert response.status_code == 201, response.text
    return response.json()[0]


def test_the_api_and_the_ui_serve_the_same_attachment(world: World):
    evidence = _evidence(world)
    api = world.call("housing.user", "GET", f"/api/v1/evidence/{evidence['id']}")
    ui = signed_in(world, "housing.user").get(f"/evidence/{evidence['id']}")
    assert api.status_code == ui.status_code == 200 and api.content == ui.content == PDF
    assert {h: api.headers[h] for h in SAME_HEADERS} == {h: ui.headers[h] for h in SAME_HEADERS}
    assert api.headers["content-disposition"] == ("attachment; filename=\"_____ ________.pdf\"; "
                                                  "filename*=UTF-8''%D8%AA%D9%82%D8%B1%D9%8A%D8%B1%20%D8%A7%D9%84"
                                                  "%D9%85%D8%B9%D8%A7%D9%8A%D9%86%D8%A9.pdf")
    assert api.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert api.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize("evidence_id", [987654, 0, -1, 2**31])
def test_the_ui_answers_404_for_evidence_that_cannot_exist(world: World, evidence_id: int):
    assert signed_in(world, "viewer").get(f"/evidence/{evidence_id}").status_code == 404


def test_evidence_of_a_directive_out_of_sight_does_not_exist(world: World):
    evidence = _evidence(world)
    assert signed_in(world, "transport.user").get(f"/evidence/{evidence['id']}").status_code == 404
    assert signed_in(world, "viewer").get(f"/evidence/{evidence['id']}").status_code == 200
    with world.db.reading() as session, pytest.raises(evidence_store.NotFound, match=f"no evidence {evidence['id']}"):
        evidence_store.for_download(session, world.settings.home, _user(session, "transport.user"), evidence["id"])


def test_a_file_missing_from_the_store_is_404_through_either_door(world: World):
    evidence = _evidence(world)
    with world.db.transaction() as session:
        file_store.remove_database(session, evidence["sha256"])
    assert world.call("admin", "GET", f"/api/v1/evidence/{evidence['id']}").status_code == 404
    assert signed_in(world, "admin").get(f"/evidence/{evidence['id']}").status_code == 404
    with world.db.reading() as session, pytest.raises(evidence_store.NotFound, match="missing from the store"):
        evidence_store.for_download(session, world.settings.home, _user(session, "admin"), evidence["id"])


def _user(session: Session, username: str) -> User:
    return session.scalar(select(User).where(User.username == username))
