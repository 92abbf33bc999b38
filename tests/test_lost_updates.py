"""Lost updates (issue 8, item 3): 50 concurrent clients over real HTTP complete steps, report
progress, ask for more time, escalate and resolve escalations on the same few directives (the shipped
standard model). Every answer is recorded; afterwards the final state and the audit chain must agree
with the answers one by one:

- each 2xx left exactly one audit event that carries its own data, and its effect is in the state;
- each 4xx left no event and no effect; no 5xx at all;
- each step was completed at most once, escalations were resolved at most once, progress is the last
  one reported, and no progress was recorded on a step after it was completed;
- the directives' projections (current steps, escalation level, extensions) match their rows;
- the API shows the same timeline as the audit trail, and the hash chain verifies.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from engine.directives.directives import Directive
from engine.foundation import clock
from engine.storage import audit
from engine.storage.audit import AuditEvent
from engine.work import instances, timers
from engine.work.escalations import Escalation
from engine.work.instances import ProcessInstance
from engine.work.work_items import COMPLETED, OPEN, WorkItem
from tests.conftest import deploy_shipped
from tests.pg_cluster import live_server
from tests.test_api_support import NOW, World, open_world

DIRECTIVES = 3
ROUNDS = 10  # actions per client
BUDGET_SECONDS = 45  # clients stop early rather than run past this
# (username, behaviour, how many clients)
CLIENTS = [
    ("housing.user", "entity", 16),
    ("admin", "entity", 2),
    ("housing.user", "extension", 4),
    ("officer", "officer", 10),
    ("supervisor", "supervisor", 12),
    ("supervisor", "bulk", 4),
    ("leader", "leader", 2),
]
assert sum(n for *_, n in CLIENTS) == 50
WRITE_ACTIONS = ("step.completed", "step.progress", "escalation.resolved", "escalation.commented",
                 "extension.requested", "supervisor.escalate", "supervisor.extend")


@dataclass
class Outcome:
    client: int
    user: str
    kind: str  # complete, progress, resolve, bulk, extension
    target: int  # step, escalation or directive id (bulk: 0)
    token: str  # unique per request; carried in the data, note or reason
    request: dict[str, Any]
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Race:
    base: str
    world: World
    directive_ids: list[int]
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    deadline: float = 0.0

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def post(self, http: httpx.Client, client: int, user: str, headers: dict[str, str], kind: str, target: int,
             token: str, url: str, body: dict[str, Any]) -> Outcome:
        try:
            response = http.post(url, json=body, headers=headers)
            status = response.status_code
            payload = response.json() if "json" in response.headers.get("content-type", "") else response.text
        except httpx.HTTPError as exc:
            status, payload = 0, repr(exc)
        outcome = Outcome(client, user, kind, target, token, body, status, payload)
        self.record(outcome)
        return outcome

    def client(self, index: int, user: str, behaviour: str) -> None:
        rng = random.Random(index)
        headers = self.world.headers(user)
        with httpx.Client(base_url=self.base, timeout=60) as http:
            for number in range(ROUNDS):
                if time.monotonic() > self.deadline:
                    return
                token = f"c{index}n{number}"
                directive_id = rng.choice(self.directive_ids)
                getattr(self, behaviour)(http, rng, index, user, headers, directive_id, token)

    # --- behaviours -----------------------------------------------------------------------------

    def _open_steps(self, http: httpx.Client, headers: dict[str, str], directive_id: int) -> list[dict[str, Any]]:
        found = http.get("/api/v1/tasks", params={"directive": directive_id}, headers=headers)
        assert found.status_code == 200, found.text
        return found.json()["items"]

    def _complete(self, http, index, user, headers, step: dict[str, Any], data: dict[str, Any], token: str) -> None:
        self.post(http, index, user, headers, "complete", step["id"], token, f"/api/v1/tasks/{step['id']}/complete",
                  {"data": data})

    def entity(self, http, rng, index, user, headers, directive_id, token) -> None:
        steps = [s for s in self._open_steps(http, headers, directive_id) if s["element_id"] in ("acknowledge",
                                                                                                   "execute")]
        if not steps:
            return
        step = rng.choice(steps)
        if rng.random() < 0.45:
            self.post(http, index, user, headers, "progress", step["id"], token, f"/api/v1/tasks/{step['id']}/progress",
                      {"percent": rng.randrange(0, 101), "note": token})
        elif step["element_id"] == "acknowledge":
            self._complete(http, index, user, headers, step, {"note": token}, token)
        else:
            self._complete(http, index, user, headers, step, {"summary": token}, token)

    def extension(self, http, rng, index, user, headers, directive_id, token) -> None:
        self.post(http, index, user, headers, "extension", directive_id, token,
                  f"/api/v1/directives/{directive_id}/extension-request",
                  {"new_deadline": rng.choice(["PT72H", "PT96H"]), "reason": token})

    def officer(self, http, rng, index, user, headers, directive_id, token) -> None:
        steps = [s for s in self._open_steps(http, headers, directive_id) if s["element_id"] == "verify"]
        if steps:
            accepted = rng.random() < 0.1
            self._complete(http, index, user, headers, steps[0], {"accepted": accepted, "reason": token}, token)

    def supervisor(self, http, rng, index, user, headers, directive_id, token) -> None:
        steps = [s for s in self._open_steps(http, headers, directive_id)
                 if s["element_id"] in ("review_extension", "supervisor_decision")]
        if steps and rng.random() < 0.5:
            step = rng.choice(steps)
            if step["element_id"] == "review_extension":
                data = {"approved": rng.random() < 0.5, "note": token}
            else:
                data = {"decision": "return", "note": token}
            self._complete(http, index, user, headers, step, data, token)
            return
        open_ones = self._open_escalations(http, headers, directive_id)
        if not open_ones:
            return
        escalation = rng.choice(open_ones)
        body = self._resolution(rng, token)
        self.post(http, index, user, headers, "resolve", escalation["id"], token,
                  f"/api/v1/escalations/{escalation['id']}/resolve", body)

    def leader(self, http, rng, index, user, headers, directive_id, token) -> None:
        open_ones = [e for e in self._open_escalations(http, headers, directive_id) if e["target_role"] == "leadership"]
        if open_ones:
            escalation = rng.choice(open_ones)
            body = {"action": rng.choice(["comment", "escalate"]), "note": token}
            self.post(http, index, user, headers, "resolve", escalation["id"], token,
                      f"/api/v1/escalations/{escalation['id']}/resolve", body)

    def bulk(self, http, rng, index, user, headers, directive_id, token) -> None:
        ids = [e["id"] for e in self._open_escalations(http, headers, directive_id)]
        if ids:
            body = {"ids": ids, "action": rng.choice(["comment", "escalate"]), "note": token}
            self.post(http, index, user, headers, "bulk", 0, token, "/api/v1/escalations/resolve", body)

    def _open_escalations(self, http, headers, directive_id) -> list[dict[str, Any]]:
        found = http.get("/api/v1/escalations", params={"directive": directive_id, "status": "open"}, headers=headers)
        assert found.status_code == 200, found.text
        return found.json()["items"]

    @staticmethod
    def _resolution(rng: random.Random, token: str) -> dict[str, Any]:
        action = rng.choices(["comment", "escalate", "extend"], weights=[3, 3, 2])[0]
        body: dict[str, Any] = {"action": action, "note": token}
        if action == "extend":
            body["new_deadline"] = rng.choice(["PT24H", "PT48H"])
        return body


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        with built.db.transaction() as session:
            deploy_shipped(session, "directive-standard.bpmn")
        yield built


def _arrange(world: World) -> list[int]:
    """A few standard directives past their deadline and grace: levels 1 and 2 raised on each."""
    ids = [world.create_directive(process_model_key="directive_standard", deadline="PT6H",
                                  title=f"توجيه متنازع عليه {n}")["id"] for n in range(DIRECTIVES)]
    clock.set_now(NOW + timedelta(hours=6, days=1, minutes=5))
    timers.run_until_idle(world.db)
    with world.db.reading() as session:
        raised = session.scalars(select(Escalation.directive_id).where(Escalation.status == "open")).all()
    assert Counter(raised) == {i: 2 for i in ids}, raised
    return ids


def _rows_of_bulk(outcomes: list[Outcome]) -> list[Outcome]:
    """A bulk answer as one outcome per row, with the row's own status."""
    rows = []
    for outcome in outcomes:
        if outcome.kind != "bulk":
            rows.append(outcome)
            continue
        if not outcome.ok:
            for escalation_id in outcome.request["ids"]:
                rows.append(Outcome(outcome.client, outcome.user, "resolve", escalation_id, outcome.token,
                                    outcome.request, outcome.status, outcome.body))
            continue
        for row in outcome.body["results"]:
            rows.append(Outcome(outcome.client, outcome.user, "resolve", row["id"], outcome.token, outcome.request,
                                row["status"], row))
    return rows


def test_concurrent_clients_the_state_and_the_audit_agree_with_every_answer(world: World):
    directive_ids = _arrange(world)
    with world.db.reading() as session:
        events_before = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    started = time.monotonic()
    with live_server(world.client.app) as base:
        race = Race(base, world, directive_ids, deadline=time.monotonic() + BUDGET_SECONDS)
        threads = []
        index = 0
        for user, behaviour, count in CLIENTS:
            for _ in range(count):
                threads.append(threading.Thread(target=race.client, args=(index, user, behaviour)))
                index += 1
        barrier_start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=BUDGET_SECONDS + 60)
        assert not any(t.is_alive() for t in threads), "a client hung"
        race_seconds = time.monotonic() - barrier_start
        outcomes = list(race.outcomes)
        api_timelines = {d: world.call("admin", "GET", f"/api/v1/directives/{d}").json() for d in directive_ids}

    statuses = Counter(o.status for o in outcomes)
    unexpected = [o for o in outcomes if o.status not in (200, 202, 409, 422)]
    assert not unexpected, (f"answers other than 2xx/409/422 under concurrency: {dict(statuses)} (a 503 here is a "
                            f"database error under load, e.g. a deadlock; see docs/faults.md)", unexpected[:5])
    rows = _rows_of_bulk(outcomes)
    assert len({o.token for o in outcomes}) == len(outcomes), "tokens must be unique"

    with world.db.reading() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.id > events_before)
                                 .order_by(AuditEvent.id)).all()
        items = {w.id: w for w in session.scalars(select(WorkItem))}
        escalations = {e.id: e for e in session.scalars(select(Escalation))}
        directives = {d.id: d for d in session.scalars(select(Directive))}
        instance_rows = {i.id: i for i in session.scalars(select(ProcessInstance))}
        timelines = {d: [e.id for e in audit.timeline(session, f"directive:{d}",
                                                       f"instance:{directives[d].instance_id}")]
                     for d in directive_ids}
        verification = audit.verify(session)

    by_action: dict[str, list[AuditEvent]] = defaultdict(list)
    for event in events:
        by_action[event.action].append(event)
    unexplained = Counter(e.action for e in events if e.action in WRITE_ACTIONS)

    def matching(action: str, **payload: Any) -> list[AuditEvent]:
        return [e for e in by_action[action] if all(e.payload.get(k) == v for k, v in payload.items())]

    def explain(found: list[AuditEvent], outcome: Outcome, want: int) -> None:
        assert len(found) == want, f"{outcome} left {len(found)} {found[0].action if found else ''} events"
        for event in found:
            assert event.actor == outcome.user, (event.actor, outcome)
            unexplained[event.action] -= 1

    # Steps: each completed by at most one 2xx, which left one event with its data; 4xx left nothing.
    wins: dict[int, list[Outcome]] = defaultdict(list)
    for o in (o for o in rows if o.kind == "complete"):
        found = matching("step.completed", work_item=o.target, data=o.request["data"])
        explain(found, o, 1 if o.ok else 0)
        if o.ok:
            wins[o.target].append(o)
    for step, won in wins.items():
        assert len(won) == 1, f"step {step} was completed {len(won)} times: {won}"
        item = items[step]
        assert (item.status, item.completed_by, item.completion_data) == (COMPLETED, won[0].user,
                                                                          won[0].request["data"]), step
    completed_in_audit = Counter(e.payload["work_item"] for e in by_action["step.completed"])
    assert all(n == 1 for n in completed_in_audit.values()), completed_in_audit

    # Progress: each 2xx one event with its note and percent; the step shows the last one; none after completion.
    for o in (o for o in rows if o.kind == "progress"):
        found = matching("step.progress", work_item=o.target, note=o.token)
        explain(found, o, 1 if o.ok else 0)
        if o.ok:
            assert found[0].payload["percent"] == o.request["percent"]
    last_progress: dict[int, AuditEvent] = {}
    completion_position = {e.payload["work_item"]: e.id for e in by_action["step.completed"]}
    for event in by_action["step.progress"]:
        last_progress[event.payload["work_item"]] = event
        step = event.payload["work_item"]
        assert step not in completion_position or event.id < completion_position[step], (
            f"progress on step {step} was recorded after it was completed")
    for step, event in last_progress.items():
        item = items[step]
        assert (item.progress_percent, item.progress_note) == (event.payload["percent"], event.payload["note"]), step

    # Escalations: resolved at most once, by the one 2xx that says so; comments each once; 4xx left nothing.
    resolved_by: dict[int, list[Outcome]] = defaultdict(list)
    for o in (o for o in rows if o.kind == "resolve"):
        action = o.request["action"]
        if action == "comment":
            explain(matching("escalation.commented", escalation=o.target, note=o.token), o, 1 if o.ok else 0)
            continue
        explain(matching("escalation.resolved", escalation=o.target, note=o.token), o, 1 if o.ok else 0)
        if o.request.get("ids") is None:  # one escalation, one message into its process
            explain(matching(f"supervisor.{action}", note=o.token), o, 1 if o.ok else 0)
        if o.ok:
            resolved_by[o.target].append(o)
    # A bulk request sends one message per escalation it resolved: as many as it has rows that succeeded.
    bulk_requests = {o.token: o for o in outcomes if o.kind == "bulk" and o.request["action"] != "comment"}
    for token, request in bulk_requests.items():
        succeeded = sum(1 for r in rows if r.token == token and r.ok)
        found = matching(f"supervisor.{request.request['action']}", note=token)
        assert len(found) == succeeded, (request, succeeded, found)
        assert all(e.actor == request.user for e in found)
        unexplained[f"supervisor.{request.request['action']}"] -= len(found)
    for escalation_id, escalation in escalations.items():
        won = resolved_by.get(escalation_id, [])
        assert len(won) <= 1, f"escalation {escalation_id} was resolved {len(won)} times: {won}"
        if won:
            assert (escalation.status, escalation.resolved_action, escalation.resolved_by) == (
                "resolved", won[0].request["action"], won[0].user), escalation_id
        else:
            assert escalation.status == "open", f"escalation {escalation_id} is resolved but no answer said so"

    # Extension requests: each 202 once, each refusal not at all; each opened one review.
    for o in (o for o in rows if o.kind == "extension"):
        explain(matching("extension.requested", reason=o.token), o, 1 if o.ok else 0)

    assert all(n == 0 for n in unexplained.values()), f"audit events no 2xx accounts for: {unexplained}"

    # Projections: per directive, the manual escalations, the extensions, the open steps and the level.
    for directive_id in directive_ids:
        directive = directives[directive_id]
        instance = instance_rows[directive.instance_id]
        assert instance.status in (instances.RUNNING, instances.COMPLETED), (instance.status,
                                                                             instance.incident_message)
        mine = [e for e in escalations.values() if e.directive_id == directive_id]
        manual_oks = [o for o in rows if o.kind == "resolve" and o.ok and o.request["action"] == "escalate"
                      and escalations[o.target].directive_id == directive_id]
        assert len([e for e in mine if e.reason == "manual"]) == len(manual_oks), directive_id
        approved = [o for o in rows if o.kind == "complete" and o.ok and items[o.target].element_id ==
                    "review_extension" and o.request["data"]["approved"] and items[o.target].instance_id ==
                    directive.instance_id]
        extends = [o for o in rows if o.kind == "resolve" and o.ok and o.request["action"] == "extend"
                   and escalations[o.target].directive_id == directive_id]
        changes = [e for e in by_action["directive.deadline_changed"] if e.subject == f"directive:{directive_id}"]
        assert len(changes) == len(approved) + len(extends), (directive_id, changes)
        for before, after in itertools.pairwise(changes):
            assert after.payload["from"] == before.payload["to"], (
                f"directive {directive_id}: a deadline change started from a stale deadline: {after.payload}")
        if changes:
            assert directive.deadline_at.isoformat() == changes[-1].payload["to"], directive_id
        assert directive.extension_count == len(changes), (
            f"directive {directive_id} counts {directive.extension_count} extensions; the audit has {len(changes)}")
        requests_ok = [o for o in rows if o.kind == "extension" and o.ok and o.target == directive_id]
        reviews = [w for w in items.values() if w.instance_id == directive.instance_id
                   and w.element_id == "review_extension"]
        assert len(reviews) == len(requests_ok), directive_id
        open_items = sorted({w.element_id for w in items.values() if w.instance_id == directive.instance_id
                             and w.status == OPEN})
        assert directive.current_steps == open_items, directive_id
        open_levels = [e.level for e in mine if e.status == "open"]
        assert directive.escalation_level == (max(open_levels) if open_levels else 0), directive_id
        assert [e["id"] for e in api_timelines[directive_id]["timeline"]] == timelines[directive_id]

    assert verification.ok, str(verification)
    elapsed = time.monotonic() - started
    ok_rows = Counter(o.kind for o in rows if o.ok)
    print(f"lost updates: {len(outcomes)} writes by 50 clients in {race_seconds:.1f} s ({dict(statuses)}); "
          f"accepted {dict(ok_rows)}; {len(events)} audit events, chain of {verification.checked} verified; "
          f"{elapsed:.1f} s")


def _extend_at_once(base: str, world: World, escalation_ids: list[int]) -> list[int]:
    """Resolve each escalation with `extend` (24 h more per position), all requests at the same moment."""
    barrier = threading.Barrier(len(escalation_ids))
    statuses: list[int] = []

    def extend(escalation_id: int, hours: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            barrier.wait()
            response = http.post(f"/api/v1/escalations/{escalation_id}/resolve", headers=world.headers("supervisor"),
                                 json={"action": "extend", "new_deadline": f"PT{hours}H", "note": "n"})
            statuses.append(response.status_code)

    threads = [threading.Thread(target=extend, args=(e, 24 * (n + 1))) for n, e in enumerate(escalation_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def test_two_supervisors_extending_one_directive_at_once_are_both_counted(world: World):
    """The race in small: two `extend` resolutions of the two escalations of one directive, sent at
    the same moment. Both are answered 200, so the directive must count two extensions, and the second
    deadline change must start from the first one's deadline (not from a copy read before the lock)."""
    directive_ids = _arrange(world)
    with live_server(world.client.app) as base:
        for directive_id in directive_ids:
            with world.db.reading() as session:
                pair = session.scalars(select(Escalation.id).where(Escalation.directive_id == directive_id)
                                       .order_by(Escalation.id)).all()
            statuses = _extend_at_once(base, world, list(pair))
            assert statuses == [200, 200], statuses
            with world.db.reading() as session:
                directive = session.get(Directive, directive_id)
                changes = [e.payload for e in audit.timeline(session, f"directive:{directive_id}")
                           if e.action == "directive.deadline_changed"]
            assert len(changes) == 2 and changes[1]["from"] == changes[0]["to"], changes
            assert directive.deadline_at.isoformat() == changes[1]["to"]
            assert directive.extension_count == 2, (
                f"two extensions were answered 200 but the directive counts {directive.extension_count}")
