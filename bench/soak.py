"""Soak test: minutes of mixed load with faults, then a consistency audit (not part of `make test`).

    .venv/bin/python bench/soak.py --minutes 2            # about 2.5 minutes in all

What runs, all on loopback:
- a private PostgreSQL 15 cluster (tests/pg_cluster.py: a temporary folder and a free port; the
  machine's shared cluster is never touched), migrated and seeded with the shipped models, a season
  around today, two entities and one user per role (each with an email address);
- the API (uvicorn on a free port, in this process, wall clock), driven by client threads that
  register directives, acknowledge and execute them, report progress, verify (accept or return),
  ask for more time, decide extensions and resolve escalations (comment, escalate, extend);
- two timer workers (`tansiq timers run`, separate processes) acting as if it were 10 days later,
  so every reminder and escalation falls due as soon as it is armed;
- a notification worker (`tansiq notifications run`) sending email to an SMTP sink (aiosmtpd);
- faults: a timer worker SIGKILLed every `--kill-every` seconds (and restarted), the notification
  worker SIGKILLed every `--notify-kill-every` seconds, and the database stopped with
  `pg_ctl stop -m immediate` at half time and started again after `--outage` seconds.

Then the workers drain what is due, stop, and the checks run: every 2xx answer is in the database
(directives by reference, completions once each in the audit trail); 5xx answers are 503s and only
around the database restart; every timer due before the workers' moment has fired, each firing
exactly once per arming (one per deadline, a new arming per deadline change); escalation keys are
unique and without gaps; every email delivery was sent and reached the sink (repeats of one
Message-ID are counted: delivery is at-least-once by design); no instance is in incident; the audit
hash chain verifies. The exit status is 0 when every check holds.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_HOME = tempfile.mkdtemp(prefix="tansiq-soak-")
os.environ["TANSIQ_HOME"] = _HOME  # before any engine import: settings are read once
os.environ.pop("TANSIQ_DATABASE_URL", None)
os.environ.setdefault("TANSIQ_LOG_LEVEL", "CRITICAL")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from hijridate import Gregorian  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import ApiSettings  # noqa: E402
from engine.bpmn import process_models  # noqa: E402
from engine.calendar import seasons  # noqa: E402
from engine.delivery import notification_delivery  # noqa: E402
from engine.directives.directives import Directive  # noqa: E402
from engine.foundation.logs import configure_logging  # noqa: E402
from engine.people import entities, users  # noqa: E402
from engine.storage import audit  # noqa: E402
from engine.storage.audit import AuditEvent  # noqa: E402
from engine.storage.db import Database  # noqa: E402
from engine.system import migrate  # noqa: E402
from engine.work import instances  # noqa: E402
from engine.work.escalations import Escalation  # noqa: E402
from engine.work.instances import ProcessInstance  # noqa: E402
from engine.work.notifications import Delivery, Notification  # noqa: E402
from engine.work.work_items import COMPLETED, WorkItem  # noqa: E402
from tests.pg_cluster import PrivateCluster, live_server  # noqa: E402
from tests.smtp_server import SmtpServer  # noqa: E402

SHIPPED = ROOT / "bpmn"
WORKER_AHEAD = timedelta(days=10)  # timer workers act as if it were this much later
SENDER = "tansiq@soak.example"
# username -> (role, entity)
PEOPLE = {"admin": ("admin", None), "secretariat": ("secretariat", None), "officer": ("follow_up_officer", None),
          "supervisor": ("supervisor", None), "leader": ("leadership", None),
          "housing.user": ("entity_user", "housing"), "transport.user": ("entity_user", "transport")}
_started = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _started:7.1f} s] {message}", flush=True)


# --- setup ------------------------------------------------------------------------------------------

def seed(db: Database) -> dict[str, int]:
    today = datetime.now(UTC).date()
    with db.transaction() as session:
        process_models.deploy_directory(session, SHIPPED, "soak")
        hijri_year = Gregorian.fromdate(today).to_hijri().year
        seasons.create_season(session, hijri_year, today - timedelta(days=30), today + timedelta(days=90))
        entities.create_entity(session, "housing", "الإسكان", "Housing")
        entities.create_entity(session, "transport", "النقل", "Transport")
        ids = {}
        for username, (role, entity) in PEOPLE.items():
            user = users.create_user(session, username, "correct horse battery staple", role, entity_code=entity,
                                     email=f"{username}@soak.example", full_name=username)
            ids[username] = user.id
    return ids


class Workers:
    """The worker processes, which the soak kills and restarts."""

    def __init__(self, database_url: str, smtp_port: int, logs: Path) -> None:
        self.logs = logs
        self.env = dict(os.environ, TANSIQ_DATABASE_URL=database_url, TANSIQ_TIMER_POLL_SECONDS="0.2",
                        TANSIQ_TIMER_BATCH_SIZE="20", TANSIQ_SMTP_HOST="127.0.0.1", TANSIQ_SMTP_PORT=str(smtp_port),
                        TANSIQ_SMTP_SENDER=SENDER, TANSIQ_SMTP_POLL_SECONDS="0.5", TANSIQ_SMTP_TIMEOUT="2",
                        TANSIQ_SMTP_LEASE_SECONDS="10", TANSIQ_SMTP_BACKOFF_BASE_SECONDS="1",
                        TANSIQ_SMTP_BACKOFF_MAX_SECONDS="4", TANSIQ_SMTP_MAX_ATTEMPTS="50",
                        TANSIQ_LOG_LEVEL="WARNING")
        self.procs: dict[str, subprocess.Popen] = {}
        self.starts = Counter()
        self.earliest_now = datetime.now(UTC) + WORKER_AHEAD

    def command(self, name: str) -> list[str]:
        if name.startswith("timer"):
            moment = datetime.now(UTC) + WORKER_AHEAD
            return [sys.executable, "-m", "api.cli", "timers", "run", "--now", moment.isoformat()]
        return [sys.executable, "-m", "api.cli", "notifications", "run"]

    def start(self, name: str) -> None:
        self.starts[name] += 1
        log = (self.logs / f"{name}.{self.starts[name]}.log").open("w")
        self.procs[name] = subprocess.Popen(self.command(name), env=self.env, cwd=ROOT, stdout=log,
                                            stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.start(name)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


# --- the load ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    kind: str
    key: Any
    user: str
    status: int
    body: Any
    at: float
    data: Any = None


class Load:
    def __init__(self, base: str, tokens: dict[str, str], clients: int, seed_value: int) -> None:
        self.base, self.tokens, self.clients, self.seed = base, tokens, clients, seed_value
        self.stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def call(self, http: httpx.Client, kind: str, key: Any, user: str, method: str, url: str, *,
             data: Any = None, **kwargs: Any) -> httpx.Response | None:
        try:
            response = http.request(method, url, headers=self.headers(user), **kwargs)
            body = response.json() if "json" in response.headers.get("content-type", "") else response.text[:300]
            status = response.status_code
        except httpx.HTTPError as exc:
            response, body, status = None, repr(exc), 0
        with self.lock:
            self.outcomes.append(Outcome(kind, key, user, status, body, time.monotonic(), data))
        if status == 503 or status == 0:
            time.sleep(0.2)
        return response if status and status < 300 else None

    def start(self) -> None:
        for index in range(self.clients):
            thread = threading.Thread(target=self.client, args=(index,), name=f"client-{index}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def client(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        number = 0
        with httpx.Client(base_url=self.base, timeout=60) as http:
            while not self.stop.is_set():
                number += 1
                token = f"s{index}-{number}"
                action = rng.choices(["create", "entity", "officer", "supervisor", "extension"],
                                     weights=[2, 5, 2, 3, 1])[0]
                getattr(self, action)(http, rng, token)

    def create(self, http: httpx.Client, rng: random.Random, token: str) -> None:
        reference = f"SOAK-{token}"
        self.call(http, "create", reference, "secretariat", "POST", "/api/v1/directives", json={
            "title": f"توجيه اختبار التحمل {reference}", "kind": rng.choice(["decision", "directive"]),
            "responsible_entity": "housing", "deadline": "PT6H", "reference": reference, "launch": True})

    def _inbox(self, http: httpx.Client, user: str, **params: Any) -> list[dict[str, Any]]:
        found = self.call(http, "read", None, user, "GET", "/api/v1/tasks", params={"limit": 50, **params})
        return found.json()["items"] if found is not None else []

    def _complete(self, http: httpx.Client, user: str, step: dict[str, Any], data: dict[str, Any]) -> None:
        self.call(http, "complete", step["id"], user, "POST", f"/api/v1/tasks/{step['id']}/complete",
                  json={"data": data}, data=data)

    def entity(self, http: httpx.Client, rng: random.Random, token: str) -> None:
        steps = [s for s in self._inbox(http, "housing.user") if s["element_id"] in ("acknowledge", "execute")]
        if not steps:
            return
        step = rng.choice(steps)
        if rng.random() < 0.25:
            self.call(http, "progress", step["id"], "housing.user", "POST", f"/api/v1/tasks/{step['id']}/progress",
                      json={"percent": rng.randrange(101), "note": token})
        elif step["element_id"] == "acknowledge":
            self._complete(http, "housing.user", step, {"note": token})
        else:
            self._complete(http, "housing.user", step, {"summary": token})

    def officer(self, http: httpx.Client, rng: random.Random, token: str) -> None:
        steps = self._inbox(http, "officer", element="verify")
        if steps:
            self._complete(http, "officer", rng.choice(steps), {"accepted": rng.random() < 0.6, "reason": token})

    def extension(self, http: httpx.Client, rng: random.Random, token: str) -> None:
        steps = [s for s in self._inbox(http, "housing.user", element="execute") if s.get("directive")]
        if steps:
            directive_id = rng.choice(steps)["directive"]["id"]
            self.call(http, "extension", directive_id, "housing.user", "POST",
                      f"/api/v1/directives/{directive_id}/extension-request",
                      json={"new_deadline": "PT72H", "reason": token})

    def supervisor(self, http: httpx.Client, rng: random.Random, token: str) -> None:
        steps = self._inbox(http, "supervisor")
        if steps and rng.random() < 0.5:
            step = rng.choice(steps)
            data = ({"approved": rng.random() < 0.5, "note": token} if step["element_id"] == "review_extension"
                    else {"decision": rng.choice(["accept", "return"]), "note": token})
            self._complete(http, "supervisor", step, data)
            return
        found = self.call(http, "read", None, "supervisor", "GET", "/api/v1/escalations",
                          params={"status": "open", "limit": 50})
        if found is None or not found.json()["items"]:
            return
        escalation = rng.choice(found.json()["items"])
        action = rng.choices(["comment", "escalate", "extend"], weights=[4, 2, 3])[0]
        body: dict[str, Any] = {"action": action, "note": token}
        if action == "extend":
            body["new_deadline"] = "PT72H"
        self.call(http, "resolve", escalation["id"], "supervisor", "POST",
                  f"/api/v1/escalations/{escalation['id']}/resolve", json=body, data=body)


# --- checks -----------------------------------------------------------------------------------------

class Checks:
    def __init__(self) -> None:
        self.results: list[tuple[bool, str]] = []

    def check(self, ok: bool, message: str) -> None:
        self.results.append((bool(ok), message))
        print(f"  [{'ok' if ok else 'FAILED'}] {message}", flush=True)

    @property
    def passed(self) -> bool:
        return all(ok for ok, _ in self.results)


def drain(db: Database, cutoff: datetime, timeout: float) -> tuple[int, int]:
    """Wait until no timer due before `cutoff` and no email is pending; return what is still due."""
    deadline = time.monotonic() + timeout
    due = pending = -1
    while time.monotonic() < deadline:
        try:
            with db.reading() as session:
                due = session.scalar(select(func.count()).select_from(ProcessInstance).where(
                    ProcessInstance.status == instances.RUNNING, ProcessInstance.next_timer_at < cutoff))
                pending = session.scalar(select(func.count()).select_from(Notification)
                                         .where(Notification.status == "pending"))
                pending += session.scalar(select(func.count()).select_from(Delivery).where(
                    Delivery.channel == "email", Delivery.status == "pending"))
        except Exception:  # the database may still be recovering
            time.sleep(0.5)
            continue
        if due == 0 and pending == 0:
            return 0, 0
        time.sleep(0.5)
    return due, pending


def verify(db: Database, load: Load, smtp: SmtpServer, outage: tuple[float, float], cutoff: datetime,
           still_due: tuple[int, int]) -> Checks:
    checks = Checks()
    outcomes = load.outcomes
    statuses = Counter(o.status for o in outcomes)
    writes = [o for o in outcomes if o.kind != "read"]
    print(f"requests: {len(outcomes)} ({len(writes)} writes, {len(outcomes) - len(writes)} reads); "
          f"statuses {dict(sorted(statuses.items()))}")
    print(f"accepted writes: {dict(Counter(o.kind for o in writes if 200 <= o.status < 300))}")
    down_from, down_to = outage
    server_errors = [o for o in outcomes if o.status >= 500 or o.status == 0]
    kinds = dict(Counter(o.status for o in server_errors))
    checks.check(all(o.status == 503 for o in server_errors), f"every 5xx is a 503 ({len(server_errors)}: {kinds})")
    stray = [o for o in server_errors if not down_from - 1 <= o.at <= down_to + 15]
    checks.check(not stray, f"503s only around the database restart ({len(stray)} outside it)")

    created = {o.key: o.body["id"] for o in outcomes if o.kind == "create" and o.status == 201}
    completions = [o for o in outcomes if o.kind == "complete" and o.status == 200]
    with db.reading() as session:
        stored = dict(session.execute(select(Directive.reference, Directive.id)
                                      .where(Directive.reference.in_(list(created) or [""]))).all())
        missing = [r for r, i in created.items() if stored.get(r) != i]
        checks.check(not missing, f"all {len(created)} directives answered 201 are stored ({len(missing)} missing)")
        items = {w.id: w for w in session.scalars(select(WorkItem).where(
            WorkItem.id.in_([o.key for o in completions] or [0])))}
        audit_completions = Counter(e.payload["work_item"] for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "step.completed")))
        bad = [o for o in completions if o.key not in items or items[o.key].status != COMPLETED
               or items[o.key].completed_by != o.user or items[o.key].completion_data != o.data
               or audit_completions[o.key] != 1]
        checks.check(not bad and len({o.key for o in completions}) == len(completions),
                     f"all {len(completions)} completions answered 200 are stored once, with their data "
                     f"({len(bad)} not)")
        checks.check(all(n == 1 for n in audit_completions.values()),
                     f"no step completed twice in the audit trail ({len(audit_completions)} completions)")

        checks.check(still_due == (0, 0), f"workers drained: {still_due[0]} instances with due timers, "
                                          f"{still_due[1]} notifications or emails pending")
        incidents = session.scalar(select(func.count()).select_from(ProcessInstance)
                                   .where(ProcessInstance.status == instances.INCIDENT))
        checks.check(incidents == 0, f"no instance in incident ({incidents})")

        escalations = session.scalars(select(Escalation)).all()
        keys = Counter((e.instance_id, e.source_key) for e in escalations)
        checks.check(all(n == 1 for n in keys.values()),
                     f"{len(escalations)} escalations, each (instance, firing) once")
        by_element: dict[tuple[int, str], list[int]] = defaultdict(list)
        for e in escalations:
            by_element[(e.instance_id, e.element_id)].append(int(e.source_key.rsplit("#", 1)[1]))
        gaps = [k for k, numbers in by_element.items() if sorted(numbers) != list(range(1, len(numbers) + 1))]
        checks.check(not gaps, f"escalation firings are numbered without gaps ({len(gaps)} with gaps)")

        # Each arming of the deadline watch (at launch, then at each deadline change) fires each timer at most
        # once; an arming replaced before a worker reached it never fires, but the current one always has.
        directives = session.scalars(select(Directive).where(Directive.instance_id.is_not(None))).all()
        events = session.scalars(select(AuditEvent).where(AuditEvent.action.in_(
            ["directive.deadline_changed", "escalation.raised"])).order_by(AuditEvent.id)).all()
        last_change: dict[str, int] = {}
        changes: Counter[str] = Counter()
        last_raise: dict[tuple[str, str], int] = {}
        for event in events:
            if event.action == "directive.deadline_changed":
                changes[event.subject] += 1
                last_change[event.subject] = event.id
            else:
                last_raise[(event.subject, event.payload.get("element"))] = event.id
        reminders = Counter(n.instance_id for n in session.scalars(
            select(Notification).where(Notification.template == "reminder")))
        fired = Counter((e.instance_id, e.element_id) for e in escalations)
        twice, lost = [], []
        for d in directives:
            armings = 1 + changes[f"directive:{d.id}"]
            counts = (reminders[d.instance_id], fired[(d.instance_id, "escalate_level_1")],
                      fired[(d.instance_id, "escalate_level_2")])
            if any(c > armings for c in counts):
                twice.append((d.reference, armings, counts))
            if d.status == "active":
                since = last_change.get(f"directive:{d.id}", 0)
                current = [last_raise.get((f"instance:{d.instance_id}", element), 0) > since
                           for element in ("escalate_level_1", "escalate_level_2")]
                if not all(current) or counts[0] == 0:
                    lost.append((d.reference, armings, counts))
        active = sum(1 for d in directives if d.status == "active")
        checks.check(not twice, f"{len(directives)} directives: no timer fired more than once per arming "
                                f"({len(twice)} did: {twice[:3]})")
        checks.check(not lost, f"{active} running directives: level 1 and level 2 fired for the current deadline "
                               f"and the reminder at least once ({len(lost)} not: {lost[:3]})")
        manual = sum(1 for e in escalations if e.reason == "manual")
        escalate_oks = sum(1 for o in outcomes if o.kind == "resolve" and o.status == 200
                           and o.data["action"] == "escalate")
        checks.check(manual == escalate_oks, f"{manual} manual escalations for {escalate_oks} escalate answers")

        deliveries = session.scalars(select(Delivery).where(Delivery.channel == "email")).all()
        by_status = Counter(d.status for d in deliveries)
        settings = notification_delivery.SmtpSettings(host="127.0.0.1", port=smtp.port, sender=SENDER)
        expected = {notification_delivery._message_id(d, settings) for d in deliveries if d.status == "sent"}
        received = Counter(str(r.message["Message-ID"]) for r in smtp.mailbox.received)
        lost = expected - set(received)
        repeats = sum(n - 1 for n in received.values() if n > 1)
        checks.check(by_status.get("pending", 0) == 0 and by_status.get("failed", 0) == 0,
                     f"{len(deliveries)} email deliveries, all sent ({dict(by_status)})")
        checks.check(not lost, f"every sent email reached the SMTP sink ({len(received)} distinct Message-IDs, "
                               f"{len(lost)} missing); {repeats} repeated after a worker kill (at-least-once)")
        verification = audit.verify(session)
        checks.check(verification.ok, str(verification))
    return checks


# --- main -------------------------------------------------------------------------------------------

def main() -> int:
    configure_logging("ERROR")  # the API's per-request warnings (503s during the outage) are counted, not shown
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="How long the load runs.")
    parser.add_argument("--clients", type=int, default=8, help="Client threads.")
    parser.add_argument("--kill-every", type=float, default=15.0, help="Seconds between timer worker kills.")
    parser.add_argument("--notify-kill-every", type=float, default=40.0,
                        help="Seconds between notification worker kills.")
    parser.add_argument("--outage", type=float, default=4.0, help="Seconds the database stays down.")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    faults: Counter[str] = Counter()
    cluster = PrivateCluster()
    smtp = SmtpServer()
    workers: Workers | None = None
    try:
        cluster.start()
        url = cluster.create_database("tansiq")
        migrate.upgrade(url)
        db = Database(url, pool_size=16)
        ids = seed(db)
        smtp.start()
        settings = ApiSettings(home=Path(_HOME), database_url=url, secret_key="s" * 48)
        app = create_app(settings, database=db)
        tokens = {name: app.state.tansiq.tokens.issue(user_id) for name, user_id in ids.items()}
        say(f"private PostgreSQL on port {cluster.port}, SMTP sink on port {smtp.port}, home {_HOME}")
        with live_server(app) as base:
            workers = Workers(url, smtp.port, Path(_HOME))
            for name in ("timer-1", "timer-2", "notifications"):
                workers.start(name)
            load = Load(base, tokens, args.clients, args.seed)
            load.start()
            say(f"load: {args.clients} clients for {args.minutes} min; 2 timer workers, 1 notification worker")
            began = time.monotonic()
            end = began + args.minutes * 60
            next_kill = began + args.kill_every
            next_notify_kill = began + args.notify_kill_every
            restart_at = began + args.minutes * 30
            outage = (0.0, 0.0)
            while time.monotonic() < end:
                now = time.monotonic()
                if now >= next_kill:
                    victim = rng.choice(["timer-1", "timer-2"])
                    workers.kill(victim)
                    faults["timer worker SIGKILL"] += 1
                    next_kill += args.kill_every
                if now >= next_notify_kill:
                    workers.kill("notifications")
                    faults["notification worker SIGKILL"] += 1
                    next_notify_kill += args.notify_kill_every
                if restart_at and now >= restart_at:
                    say("database: pg_ctl stop -m immediate")
                    down_from = time.monotonic()
                    cluster.stop(mode="immediate")
                    time.sleep(args.outage)
                    cluster.start()
                    outage = (down_from, time.monotonic())
                    faults["database restart (immediate stop)"] += 1
                    say(f"database: started again after {outage[1] - outage[0]:.1f} s")
                    restart_at = 0
                time.sleep(0.2)
            load.join()
            say(f"load stopped: {len(load.outcomes)} requests; draining the workers")
            cutoff = workers.earliest_now
            still_due = drain(db, cutoff, timeout=120)
            workers.stop_all()
            say(f"faults injected: {dict(faults)}")
        print("checks:")
        checks = verify(db, load, smtp, outage, cutoff, still_due)
        db.dispose()
        say("soak passed" if checks.passed else "soak FAILED")
        return 0 if checks.passed else 1
    finally:
        if workers is not None:
            workers.stop_all()
        smtp.stop()
        cluster.destroy()
        shutil.rmtree(_HOME, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
