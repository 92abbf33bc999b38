"""Malformed and hostile requests, many of them: 4xx problem details or plain text, never 5xx.

These cases only read or are refused, so they share one world per database (see `open_shared_world`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.foundation import clock
from tests.test_api_support import NOW, World, assert_problem, open_shared_world


@pytest.fixture(scope="module")
def world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_shared_world(database_url, tmp_path_factory.mktemp("home")) as built:
        built.create_directive()
        yield built


@pytest.fixture(autouse=True)
def _the_worlds_clock(world: World) -> None:
    clock.set_now(NOW)


@pytest.mark.parametrize(("content", "status"), [
    (b"{not json", 400),
    (b'{"title": "t", "kind": "decision"', 400),
    (b"[]", 422),
    (b'"just a string"', 422),
    (b"null", 422),
    (b"\xff\xfe\x00", 400),
    (b'{"title": 12, "kind": ["decision"], "responsible_entity": {}, "deadline": true}', 422),
    (b'{"title": "t", "kind": "decision", "responsible_entity": "housing", "deadline": "PT6H", "launch": "yes!"}',
     422),
    (b'{"title": "t", "kind": "decision", "responsible_entity": "housing", "deadline": "PT6H", "meeting_id": '
     b'99999999999999999999999}', 422),
    (b'{"title": "t\\u0000", "kind": "decision", "responsible_entity": "housing", "deadline": "PT6H"}', 422),
    (b'{"title": "t", "kind": "decision", "responsible_entity": "housing", "deadline": "PT6H", "unknown": 1}', 422),
    (b'{"title": "t", "kind": "decision", "responsible_entity": "housing", "deadline": "next week"}', 422),
    (b'{"title": "t", "kind": "decision", "responsible_entity": "housing", "deadline": "PT6H", '
     b'"process_model_key": "missing_model"}', 404),
    (b"[" * 5000 + b"]" * 5000, 400),
])
def test_malformed_bodies_are_4xx(world: World, content: bytes, status: int):
    response = world.call("secretariat", "POST", "/api/v1/directives", content=content,
                          headers={"Content-Type": "application/json"})
    assert_problem(response, status)


@pytest.mark.parametrize("url", [
    "/api/v1/directives?limit=100000",
    "/api/v1/directives?limit=0",
    "/api/v1/directives?offset=-1",
    "/api/v1/directives?limit=abc",
    "/api/v1/directives?status=sleeping",
    "/api/v1/directives?sort=title;DROP TABLE directive",
    "/api/v1/directives?overdue=perhaps",
    "/api/v1/directives/99999999999999",
    "/api/v1/directives/-1",
    "/api/v1/directives/abc",
    "/api/v1/tasks?limit=201",
    "/api/v1/escalations?level=9",
    "/api/v1/audit?limit=100000",
    "/api/v1/evidence/0",
    "/api/v1/process-models/x/versions/99999999999999/xml",
])
def test_bad_parameters_are_422(world: World, url: str):
    assert_problem(world.call("admin", "GET", url), 422, "invalid-input")


@pytest.mark.parametrize("q", [
    "' OR 1=1 --", "'; DROP TABLE directive; --", "%' UNION SELECT password_hash FROM user_account --",
    "\\", "%%", "_", "سكن' OR 'ا'='ا", "${jndi:ldap://x}", "<script>alert(1)</script>", "a" * 200,
])
def test_sql_fragments_in_search_are_just_text(world: World, q: str):
    response = world.call("admin", "GET", "/api/v1/directives", params={"q": q})
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0
    assert world.call("admin", "GET", "/api/v1/directives").json()["total"] == 1
