"""Stateful schemathesis over the whole API (issue 8, item 4): sequences of calls where each call
uses what an earlier one returned (a directive created, then read, its steps completed, its
escalations resolved, its evidence downloaded...), as an administrator and as an entity user.
No 5xx, and every response conforms to the OpenAPI document.

The links between operations come from two places:
- schemathesis' own dependency inference (4.x), which reads the schema and links producers to
  consumers by resource and field names (POST /directives -> GET/launch/cancel /directives/{id},
  GET /tasks -> /tasks/{id}/..., GET /escalations -> resolve, ...): about 90 links;
- links we add because inference cannot see them (`DERIVED_LINKS`): a directive's open steps are
  `steps[*].id` (task ids), and a step or an escalation names its directive under `directive.id`.

Every scenario starts from the same database: the arranged world is copied table by table once, and
put back (rows and id sequences) before each scenario. Hypothesis requires it: even in the generate
phase it replays the choices of earlier scenarios (to mutate them, and to walk its tree of choices
already made), and stops with FlakyStrategyDefinition when a draw is not of the kind it was the first
time. What a scenario may draw (which rules are valid, which bundles hold a response, which fields a
link fills) follows from the responses, and so from what earlier scenarios left in the database (more
directives, other ids, a demoted or deactivated caller...).

The same scenarios run every time; `--hypothesis-seed=N` runs others.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)
from sqlalchemy import Connection, Table, text

from engine.foundation import clock
from engine.reports import render_pdf
from engine.storage.db import Database
from engine.system.schema import Base
from engine.work import timers
from tests.test_api_support import NOW, PDF, World, open_world

# Time is CPU time of the test's process (client, app and hypothesis): wall time also measures whatever
# else the machine runs, and is only bounded loosely, against a hang.
CPU_BUDGET_SECONDS = 25
WALL_BUDGET_SECONDS = 120
SCENARIOS = {"admin": 45, "housing.user": 30}  # hypothesis examples (scenarios) per caller
STEPS = 15  # calls per scenario at most
SKIPPED = [("POST", "/api/v1/auth/revoke")]  # would end the caller's own session for good



def created_resource_is_readable(ctx, response, case):
    """schemathesis' `ensure_resource_availability`, for reads only: a resource a call just created can
    be read through the link (for a write through a link, 404 is a fair answer when the generated body
    also names ids that do not exist, e.g. a list of feedback ids of which only one was created)."""
    if case.method.upper() != "GET":
        return None
    return ensure_resource_availability(ctx, response, case)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, use_after_free, created_resource_is_readable]

TASK_OPERATIONS = [("get", "/api/v1/tasks/{task_id}"), ("post", "/api/v1/tasks/{task_id}/claim"),
                   ("post", "/api/v1/tasks/{task_id}/release"), ("post", "/api/v1/tasks/{task_id}/progress"),
                   ("post", "/api/v1/tasks/{task_id}/complete"), ("post", "/api/v1/tasks/{task_id}/evidence"),
                   ("post", "/api/v1/tasks/{task_id}/extension-request")]
# (source operation, status) -> [(target operation, parameters)]
DERIVED_LINKS: dict[tuple[str, str, str], list[tuple[tuple[str, str], dict[str, str]]]] = {
    ("get", "/api/v1/directives/{directive_id}", "200"): [
        *[(target, {"path.task_id": "$response.body#/steps/0/id"}) for target in TASK_OPERATIONS],
        (("get", "/api/v1/tasks"), {"query.directive": "$response.body#/id"}),
        (("get", "/api/v1/escalations"), {"query.directive": "$response.body#/id"}),
    ],
    ("post", "/api/v1/directives", "201"): [
        (("get", "/api/v1/tasks"), {"query.directive": "$response.body#/id"}),
        (("get", "/api/v1/escalations"), {"query.directive": "$response.body#/id"}),
    ],
    ("get", "/api/v1/directives", "200"): [
        (("get", "/api/v1/tasks"), {"query.directive": "$response.body#/items/0/id"}),
    ],
    ("get", "/api/v1/tasks/{task_id}", "200"): [
        (("get", "/api/v1/directives/{directive_id}"), {"path.directive_id": "$response.body#/directive/id"}),
    ],
    ("post", "/api/v1/tasks/{task_id}/complete", "200"): [
        (("get", "/api/v1/directives/{directive_id}"), {"path.directive_id": "$response.body#/directive/id"}),
        (("get", "/api/v1/tasks"), {"query.directive": "$response.body#/directive/id"}),
    ],
    ("get", "/api/v1/tasks", "200"): [
        (("get", "/api/v1/directives/{directive_id}"), {"path.directive_id": "$response.body#/items/0/directive/id"}),
    ],
    ("get", "/api/v1/escalations", "200"): [
        (("get", "/api/v1/directives/{directive_id}"), {"path.directive_id": "$response.body#/items/0/directive/id"}),
    ],
    ("post", "/api/v1/escalations/{escalation_id}/resolve", "200"): [
        (("get", "/api/v1/directives/{directive_id}"), {"path.directive_id": "$response.body#/directive/id"}),
    ],
}


def _pointer(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def add_derived_links(raw: dict[str, Any]) -> int:
    added = 0
    for (method, path, status), targets in DERIVED_LINKS.items():
        response = raw["paths"][path][method]["responses"][status]
        links = response.setdefault("links", {})
        for (target_method, target_path), parameters in targets:
            assert target_path in raw["paths"] and target_method in raw["paths"][target_path], target_path
            slug = target_path.removeprefix("/api/v1/").replace("/", "_").replace("{", "").replace("}", "")
            name = f"derived_{target_method}_{slug}"
            links[name] = {"operationRef": _pointer(target_path, target_method), "parameters": parameters}
            added += 1
    return added


def _stub_pdf(report: Any, language: str = "ar", settings: Any = None) -> bytes:
    return PDF


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    """The API's world, where a report's PDF is a stub: rendering one takes seconds (tests/test_reports_render.py
    renders them), and scenarios start report runs often enough to spend the whole time budget on it."""
    monkeypatch.setattr(render_pdf, "render_pdf", _stub_pdf)
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


def _arrange(world: World) -> None:
    """Something to find from the first call: directives at their first step, one with evidence, one
    past its deadline with an open escalation."""
    for _ in range(2):
        world.create_directive()
    late = world.create_directive(deadline="PT1H")
    step = world.open_step(late["id"], "acknowledge")
    world.call("housing.user", "POST", f"/api/v1/tasks/{step}/evidence", files=[("files", ("a.pdf", PDF,
                                                                                          "application/pdf"))])
    assert world.call("housing.user", "POST", f"/api/v1/tasks/{step}/complete", json={"data": {}}).status_code == 200
    clock.set_now(NOW + timedelta(minutes=61))
    timers.run_until_idle(world.db)


SNAPSHOT_PREFIX = "snap_"


class Snapshot:
    """A copy of every table kept in the database itself (`snap_<table>`), put back by `restore`: the
    same rows, and on PostgreSQL the id sequences moved back, so that the next ids are the same again
    (SQLite hands out max(id) + 1 by itself)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.tables: list[Table] = list(Base.metadata.sorted_tables)  # parents before children

    @staticmethod
    def _quote(connection: Connection, name: str) -> str:
        return connection.dialect.identifier_preparer.quote(name)

    def _copy(self, connection: Connection, table: Table) -> str:
        return self._quote(connection, SNAPSHOT_PREFIX + table.name)

    def take(self) -> None:
        self.drop()  # a copy left by a test that was killed
        with self.db.engine.begin() as connection:
            for table in self.tables:
                connection.execute(text(f"CREATE TABLE {self._copy(connection, table)} "
                                        f"AS SELECT * FROM {self._quote(connection, table.name)}"))

    def restore(self) -> None:
        with self.db.engine.begin() as connection:
            for table in reversed(self.tables):
                connection.execute(table.delete())
            for table in self.tables:
                connection.execute(text(f"INSERT INTO {self._quote(connection, table.name)} "
                                        f"SELECT * FROM {self._copy(connection, table)}"))
            if self.db.is_postgresql:
                self._rewind_sequences(connection)

    def _rewind_sequences(self, connection: Connection) -> None:
        for table in self.tables:
            column = table.autoincrement_column
            if column is None:
                continue
            connection.execute(text(f"SELECT setval(pg_get_serial_sequence(:table, :column), "
                                    f"COALESCE(MAX({self._quote(connection, column.name)}), 0) + 1, false) "
                                    f"FROM {self._quote(connection, table.name)}"),
                               {"table": table.name, "column": column.name})

    def drop(self) -> None:
        with self.db.engine.begin() as connection:
            for table in self.tables:
                connection.execute(text(f"DROP TABLE IF EXISTS {self._copy(connection, table)}"))


@pytest.fixture
def arranged(world: World) -> Iterator[Snapshot]:
    """The world with `_arrange`d objects, and its snapshot (dropped at the end, whatever happens)."""
    _arrange(world)
    snapshot = Snapshot(world.db)
    try:
        snapshot.take()
        yield snapshot
    finally:
        snapshot.drop()


def _machine(world: World, snapshot: Snapshot, username: str, counter: dict[str, int]):
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", world.client.app)
    # Valid requests build state; invalid ones are the stateless test's job (tests/test_api_schemathesis.py).
    schema.config.phases.stateful.generation.modes = [GenerationMode.POSITIVE]
    added = add_derived_links(schema.raw_schema)
    for method, path in SKIPPED:
        schema = schema.exclude(method=method, path=path)
    base = schema.as_state_machine()
    headers = world.headers(username)

    class Machine(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:  # called by hypothesis at the start of every scenario
            snapshot.restore()
            counter["scenarios"] += 1

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def step(self, input):
            counter["calls"] += 1
            if input.transition is not None:  # a call chosen by following a link from an earlier response
                counter["linked"] += 1
                counter["applied"] += 1 if input.is_applied else 0  # ... and given the values it carried
                counter["derived"] += 1 if "derived_" in input.transition.id else 0
            return super().step(input)

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            case.validate_response(response, checks=CHECKS, headers=headers, transport_kwargs=kwargs or None,
                                   recorder=getattr(self, "recorder", None))

    return Machine, schema, added


def _settings(username: str, *, seeded: bool) -> hypothesis.settings:
    """The same scenarios on every run unless `--hypothesis-seed` asks for others."""
    return hypothesis.settings(max_examples=SCENARIOS[username], stateful_step_count=STEPS, deadline=None,
                               database=None, derandomize=not seeded, phases=[Phase.generate],
                               suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("username", list(SCENARIOS))
def test_stateful_sequences_get_no_5xx_and_conform(world: World, arranged: Snapshot, username: str,
                                                   request: pytest.FixtureRequest):
    counter = {"scenarios": 0, "calls": 0, "linked": 0, "applied": 0, "derived": 0}
    machine, schema, added = _machine(world, arranged, username, counter)
    transitions = schema.statistic.transitions.total
    assert transitions >= 80 + added // 2, f"only {transitions} links between operations"
    started, cpu_started = time.monotonic(), time.process_time()
    machine.run(settings=_settings(username, seeded=request.config.getoption("--hypothesis-seed") is not None))
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
    print(f"stateful ({username}): {counter['scenarios']} scenarios, {counter['calls']} calls, "
          f"{counter['linked']} of them along a link ({counter['applied']} with the linked values, "
          f"{counter['derived']} along a derived link); {transitions} links ({added} derived); "
          f"{elapsed:.1f} s, {cpu:.1f} s of CPU")
    assert counter["calls"] >= SCENARIOS[username] * 2, counter
    assert counter["linked"] >= counter["calls"] // 5, f"too few calls followed links: {counter}"
    assert counter["applied"] >= counter["linked"] // 4, f"too few links carried their values: {counter}"
    assert cpu < CPU_BUDGET_SECONDS and elapsed < WALL_BUDGET_SECONDS, f"{counter}: {cpu:.0f} s of CPU, {elapsed:.0f} s"


@pytest.mark.parametrize(("who", "method", "url"), [
    ("housing.user", "GET", "/api/v1/tasks?element=%00"),
    ("admin", "GET", "/api/v1/tasks?element=a%00b"),
    ("admin", "GET", "/api/v1/escalations?entity=%00"),
    ("admin", "GET", "/api/v1/directives?entity=%00"),
    ("admin", "GET", "/api/v1/directives?q=%00"),
    ("admin", "GET", "/api/v1/audit?subject=%00"),
    ("admin", "GET", "/api/v1/process-models/%00"),
    ("admin", "PATCH", "/api/v1/users/%00"),
])
def test_a_nul_in_a_query_or_path_parameter_is_a_4xx(world: World, who: str, method: str, url: str):
    """Found by the stateful run on PostgreSQL (`GET /api/v1/tasks?element=%08%00` answered 500): text
    columns there cannot hold NUL, so a NUL reaching a query is a database error, not a 4xx."""
    response = world.call(who, method, url, **({"json": {"active": True}} if method == "PATCH" else {}))
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
