"""Database outage under load (issue 8, item 2): PostgreSQL stops in the middle of a load of clients
and starts again. While it is down every answer is a 503 problem (never a 500) and /healthz says so;
afterwards the API recovers by itself, and every request that was answered 2xx is in the database.

The test runs its own PostgreSQL cluster (`tests/pg_cluster.py`) and stops it with
`pg_ctl stop -m immediate`: for clients that is a crash of the server, with connections cut in the
middle of transactions. The machine's shared cluster is never touched.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from engine.directives.directives import Directive
from engine.storage import audit
from engine.storage.audit import AuditEvent
from engine.storage.db import Database
from engine.system import migrate
from engine.work.work_items import COMPLETED, WorkItem
from tests import pg_cluster
from tests.pg_cluster import PrivateCluster, live_server
from tests.test_api_support import World, open_world

CLIENTS = 6
UP_SECONDS, DOWN_SECONDS, AFTER_SECONDS = 2.5, 3.0, 2.5
RECOVERY_BOUND = 15.0  # seconds from the database being back to the API answering 200 again
PROBLEM = "application/problem+json"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(pg_cluster.available() is not None, reason=str(pg_cluster.available())),
]


@dataclass(frozen=True)
class Outcome:
    client: int
    kind: str  # create, find, complete
    key: Any  # the directive's reference, or the step's id
    status: int  # 0: no HTTP answer at all
    content_type: str
    body: Any
    sent_in: str  # the phase when the request was sent, and when it was answered
    answered_in: str


class Load:
    """Clients that register directives and complete their first two steps, over and over, and
    record every answer with the phase of the outage it was sent and answered in."""

    def __init__(self, base: str, world: World) -> None:
        self.base = base
        self.phase = "up"
        self.stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()
        self.secretariat = world.headers("secretariat")
        self.housing = world.headers("housing.user")

    def _call(self, http: httpx.Client, client: int, kind: str, key: Any, method: str, url: str,
              headers: dict[str, str], **kwargs: Any) -> httpx.Response | None:
        sent_in = self.phase
        try:
            response = http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            outcome = Outcome(client, kind, key, 0, "", repr(exc), sent_in, self.phase)
            response = None
        else:
            content_type = response.headers.get("content-type", "")
            body = response.json() if "json" in content_type else response.text[:500]
            outcome = Outcome(client, kind, key, response.status_code, content_type, body, sent_in, self.phase)
        with self.lock:
            self.outcomes.append(outcome)
        return response

    def _open_step(self, http: httpx.Client, client: int, directive_id: int, element: str) -> int | None:
        found = self._call(http, client, "find", directive_id, "GET", "/api/v1/tasks", self.housing,
                           params={"directive": directive_id, "element": element})
        if found is None or found.status_code != 200 or not found.json()["items"]:
            return None
        return found.json()["items"][0]["id"]

    def client(self, index: int) -> None:
        number = 0
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while not self.stop.is_set():
                number += 1
                reference = f"OUT-{index}-{number}"
                created = self._call(http, index, "create", reference, "POST", "/api/v1/directives", self.secretariat,
                                     json={"title": f"توجيه تحت الانقطاع {reference}", "kind": "decision",
                                           "responsible_entity": "housing", "deadline": "PT6H",
                                           "process_model_key": "api_flow", "reference": reference,
                                           "launch": True})
                if created is None or created.status_code != 201:
                    time.sleep(0.05)
                    continue
                for element, data in (("acknowledge", {"note": f"ack {reference}"}),
                                      ("execute", {"summary": f"done {reference}"})):
                    step = self._open_step(http, index, created.json()["id"], element)
                    if step is None:
                        time.sleep(0.05)
                        break
                    completed = self._call(http, index, "complete", step, "POST", f"/api/v1/tasks/{step}/complete",
                                           self.housing, json={"data": data})
                    if completed is None or completed.status_code != 200:
                        time.sleep(0.05)
                        break


@pytest.fixture
def cluster():
    with PrivateCluster() as private:
        yield private


@pytest.fixture
def world(cluster: PrivateCluster, tmp_path, monkeypatch):
    url = cluster.create_database("tansiq")
    migrate.upgrade(url)
    db = Database(url, pool_size=12)
    try:
        with open_world(db, tmp_path, monkeypatch) as built:
            yield built
    finally:
        db.dispose()


def _health(base: str) -> httpx.Response:
    return httpx.get(f"{base}/healthz", timeout=10)


def _assert_unavailable_problem(status: int, content_type: str, body: Any, what: str) -> None:
    assert status == 503, f"{what}: {status} {body}"
    assert content_type.startswith(PROBLEM), f"{what}: {content_type}"
    assert body["type"] == "https://tansiq.example/problems/service-unavailable" and body["status"] == 503, body


def test_the_api_answers_503_while_the_database_is_down_recovers_and_loses_nothing(
        world: World, cluster: PrivateCluster):
    started = time.monotonic()
    with live_server(world.client.app) as base:
        load = Load(base, world)
        threads = [threading.Thread(target=load.client, args=(i,), name=f"client-{i}") for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(UP_SECONDS)
            cluster.stop(mode="immediate")
            load.phase = "down"
            down_health = []
            down_until = time.monotonic() + DOWN_SECONDS
            while time.monotonic() < down_until:
                down_health.append(_health(base))
                time.sleep(0.3)
            load.phase = "restarting"
            cluster.start()
            load.phase = "recovering"
            back_at = time.monotonic()
            while _health(base).status_code != 200:
                assert time.monotonic() - back_at < RECOVERY_BOUND, "the API did not recover by itself"
                time.sleep(0.1)
            recovered_in = time.monotonic() - back_at
            load.phase = "after"
            time.sleep(AFTER_SECONDS)
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(timeout=60)
        outcomes = list(load.outcomes)

    # While it was down: /healthz and every request sent and answered then said 503, as a problem.
    assert down_health
    for response in down_health:
        _assert_unavailable_problem(response.status_code, response.headers.get("content-type", ""),
                                    response.json(), "/healthz while down")
        assert response.headers.get("retry-after"), response.headers
    during = [o for o in outcomes if o.sent_in == "down" and o.answered_in == "down"]
    assert len(during) >= CLIENTS, f"the load did not reach the outage: {len(during)} requests"
    for outcome in during:
        _assert_unavailable_problem(outcome.status, outcome.content_type, outcome.body, f"{outcome} while down")
    # At any moment: an answer is 2xx or 503, never a 500, never a dropped connection.
    statuses = Counter(o.status for o in outcomes)
    assert set(statuses) <= {200, 201, 503}, statuses
    for outcome in outcomes:
        if outcome.status == 503:
            _assert_unavailable_problem(outcome.status, outcome.content_type, outcome.body, str(outcome))
    # It recovered by itself, and served the load again.
    after = [o for o in outcomes if o.sent_in == "after" and o.kind == "create" and o.status == 201]
    assert len(after) >= CLIENTS, f"only {len(after)} directives were registered after the recovery"

    # Nothing acknowledged is lost: every 2xx is in the database, exactly once.
    created = {o.key: o.body["id"] for o in outcomes if o.kind == "create" and o.status == 201}
    completed = [o.key for o in outcomes if o.kind == "complete" and o.status == 200]
    attempted = {o.key for o in outcomes if o.kind == "create"}
    assert len(completed) == len(set(completed))
    with world.db.reading() as session:
        stored = {d.reference: d for d in session.scalars(select(Directive).where(Directive.reference.like("OUT-%")))}
        for reference, directive_id in created.items():
            assert reference in stored, f"directive {reference} was answered 201 but is missing"
            directive = stored[reference]
            assert directive.id == directive_id and directive.status == "active" and directive.instance_id
        assert set(stored) <= attempted, "a directive nobody asked for exists"
        items = {w.id: w for w in session.scalars(select(WorkItem).where(WorkItem.id.in_(completed)))}
        completions = Counter(
            e.payload["work_item"] for e in session.scalars(select(AuditEvent).where(AuditEvent.action ==
                                                                                     "step.completed")))
        for step in completed:
            assert step in items and items[step].status == COMPLETED and items[step].completed_by == "housing.user", (
                f"step {step} was answered 200 but is not completed")
            assert completions[step] == 1, f"step {step} is completed {completions[step]} times in the audit trail"
        assert all(count == 1 for count in completions.values()), completions
        verification = audit.verify(session)
        assert verification.ok, str(verification)

    elapsed = time.monotonic() - started
    print(f"outage: {len(outcomes)} requests ({dict(statuses)}), {len(during)} answered while down, "
          f"recovered {recovered_in:.2f} s after the restart; {len(created)} directives and {len(completed)} "
          f"completions acknowledged, all present; {verification.checked} audit events verified; {elapsed:.1f} s")
