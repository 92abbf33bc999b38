"""Timers at season scale: how late a due timer fires, and how many due escalations workers process.

    .venv/bin/python bench/timers_bench.py [--backend sqlite|postgresql|both] [--rounds R] [--json PATH]

Model: tests/bpmn/timer-escalate.bpmn (a timer at the `deadline`, then the `escalate` service task: an
escalation row, its notification, the audit events, the instance completes).

- **Firing delay** (default settings: poll 0.5 s, batch 100): one `tansiq serve` process runs its timer
  loop as it runs by default; the bench starts `--spread` instances whose deadlines are spread over
  20 s (from a moment far enough ahead that every start commits before its due moment), waits, and
  reads each escalation's `raised_at` (the wall clock inside the firing transaction): delay =
  raised_at − deadline. A round's figure is its p99 (and p50); then the median of rounds. A burst
  variant copies one instance in SQL to `--burst` due at one moment (the delay of the last is the
  backlog's drain time).
- **Escalation throughput**: one instance is started with a deadline a few seconds ahead and cloned in SQL
  (`INSERT ... SELECT generate_series`, as tests/test_faults.py does) to `--due` instances; once due,
  `--workers` `tansiq timers run` processes (default batch size and poll) drain them. Throughput = due
  instances ÷ (last raised_at − first raised_at), so worker start-up is not counted. PostgreSQL with 2
  and 1 workers; SQLite with 1 (its write lock serializes writers).
The in-memory ceiling and bare commit rate of the same database are measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text

from bench.common import (
    ROOT,
    ApiProcess,
    Record,
    Unreachable,
    ceiling_records,
    check_postgresql,
    fresh_backend,
    percentile,
    record,
    scratch_home,
    write_json,
)
from bench.engine_bench import Backend, Probe
from engine.bpmn import decision_tables, process_models
from engine.bpmn.bpmn_runtime import Runtime
from engine.bpmn.model_validation import validate_model
from engine.bpmn.service_tasks import operation_names
from engine.calendar import seasons
from engine.directives import directives
from engine.foundation import clock
from engine.foundation.settings import get_settings
from engine.people import entities
from engine.storage.db import Database
from engine.system import migrate
from engine.work import instances, timers
from engine.work.escalations import Escalation
from engine.work.instances import ProcessInstance

MODEL = ROOT / "tests" / "bpmn" / "timer-escalate.bpmn"
KEY = "timer_escalate"
DIRECTIVE_MODEL = ROOT / "bpmn" / "directive-standard.bpmn"
LAUNCHES_PER_TRANSACTION = 50


def _start(db: Database, deadline: datetime) -> int:
    with db.transaction() as session:
        return instances.start(session, KEY, {"deadline": deadline.isoformat()}, "bench").id


def _wait_fired(db: Database, ids: list[int], timeout: float) -> None:
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        with db.reading() as session:
            done = session.scalar(select(func.count()).select_from(Escalation).where(Escalation.instance_id.in_(ids)))
        if done == len(ids):
            return
        time.sleep(0.25)
    raise RuntimeError(f"only {done} of {len(ids)} timers fired within {timeout:.0f} s")


def _delays(db: Database, due: dict[int, datetime]) -> list[float]:
    with db.reading() as session:
        raised = dict(session.execute(select(Escalation.instance_id, Escalation.raised_at)
                                      .where(Escalation.instance_id.in_(list(due)))).all())
    return [(raised[i] - due[i]).total_seconds() for i in due]


def firing_round(db: Database, count: int, spread_seconds: float, moments: int = 20) -> list[float]:
    """`count` instances due at `moments` moments spread over `spread_seconds` (each moment's instances
    copied in SQL from one started instance, so even a slow start commits before its due moment);
    the delay of each."""
    first = datetime.now(UTC) + timedelta(seconds=3 + 0.5 * moments)
    due: dict[int, datetime] = {}
    for index in range(moments):
        moment = first + timedelta(seconds=spread_seconds * index / max(1, moments - 1))
        due.update(dict.fromkeys(_clone_at(db, moment, max(1, count // moments)), moment))
    if datetime.now(UTC) >= first:
        raise RuntimeError("starting the instances took longer than the lead: the round is not valid")
    _wait_fired(db, list(due), timeout=(first - datetime.now(UTC)).total_seconds() + spread_seconds + 120)
    return _delays(db, due)


def burst_round(db: Database, count: int) -> float:
    """`count` instances due at one moment (copied in SQL); the delay of the last to fire."""
    deadline = datetime.now(UTC) + timedelta(seconds=3)
    ids = _clone_at(db, deadline, count)
    _wait_fired(db, ids, timeout=300)
    return max(_delays(db, dict.fromkeys(ids, deadline)))


def firing_delay(backend: Backend, db: Database, rounds: int, spread: int, burst: int) -> list[Record]:
    api = ApiProcess(backend.url, scratch_home("tansiq-timers-"))
    p99s, p50s, bursts = [], [], []
    try:
        for index in range(rounds):
            delays = firing_round(db, spread, 20.0)
            p99s.append(percentile(delays, 0.99))
            p50s.append(percentile(delays, 0.5))
            bursts.append(burst_round(db, burst))
            print(f"[{backend.name}] firing round {index + 1}/{rounds}: p50 {p50s[-1]:.3f} s, p99 {p99s[-1]:.3f} s; "
                  f"burst of {burst}: last {bursts[-1]:.2f} s", file=sys.stderr, flush=True)
    finally:
        api.stop()
    name = backend.name
    return [record(f"timer firing delay p99 ({spread} timers over 20 s, tansiq serve, default settings)", name,
                   p99s, "s", "<= 1"),
            record(f"timer firing delay p50 ({spread} timers over 20 s)", name, p50s, "s"),
            record(f"burst: {burst} timers due at one moment, delay of the last", name, bursts, "s")]


# Throughput ------------------------------------------------------------------------------------------


def _clone_at(db: Database, deadline: datetime, count: int) -> list[int]:
    """`count` identical instances due at `deadline`: one started, the rest copied in SQL; their ids."""
    first = _start(db, deadline)
    columns = ("model_id, business_key, status, business_status, state, next_timer_at, started_by, started_at, "
               "updated_at, lock_version")
    copied = columns.replace("business_key", "coalesce(business_key, '') || n")
    series = ("generate_series(1, :copies) AS n" if db.is_postgresql else
              "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :copies) SELECT n FROM s)")
    with db.engine.begin() as connection:
        if count > 1:
            connection.execute(text(f"INSERT INTO process_instance ({columns}) SELECT {copied} "
                                    f"FROM process_instance, {series} WHERE id = :id"),
                               {"copies": count - 1, "id": first})
        return [first, *connection.execute(text("SELECT id FROM process_instance WHERE id > :id AND "
                                                "business_key IS NOT NULL"), {"id": first}).scalars()]


def _clone_due(db: Database, count: int, lead: float) -> datetime:
    deadline = datetime.now(UTC) + timedelta(seconds=lead)
    _clone_at(db, deadline, count)
    return deadline


def _worker(url: str, home: str) -> subprocess.Popen:
    env = dict(os.environ, TANSIQ_DATABASE_URL=url, TANSIQ_HOME=home, TANSIQ_LOG_LEVEL="WARNING")
    return subprocess.Popen([str(Path(sys.executable).parent / "tansiq"), "timers", "run"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backends(db: Database) -> set[int]:
    """The PostgreSQL backends serving this database now (other than the asking connection)."""
    if not db.is_postgresql:
        return set()
    with db.engine.connect() as connection:
        return set(connection.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND pid <> pg_backend_pid()")).scalars())


def _server_cpu_seconds(db: Database, earlier: set[int]) -> float:
    """CPU of the PostgreSQL backends that serve this database and were not among `earlier` (the
    workers' connections, not the bench's own that set the round up), from /proc."""
    total = 0.0
    for pid in _backends(db) - earlier:
        with contextlib.suppress(OSError):  # a backend that just ended
            total += _cpu_seconds(pid)
    return total


def throughput_round(backend: Backend, db: Database, count: int, workers: int) -> tuple[float, float, float]:
    """Due instances escalated per second; the workers' and the database server's CPU milliseconds per
    instance (workers: start-up included; server: the backends of the workers' connections)."""
    with db.reading() as session:
        since = (session.scalar(select(func.max(ProcessInstance.id))) or 0) + 1
    deadline = _clone_due(db, count, lead=2.0)
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.2)
    escalated = (select(func.min(Escalation.raised_at), func.max(Escalation.raised_at), func.count())
                 .where(Escalation.instance_id >= since))
    return _drain(backend, db, workers, escalated, count)


def _drain(backend: Backend, db: Database, workers: int, escalated: Any, count: int) -> tuple[float, float, float]:
    """Run `workers` timer workers until `escalated` (first and last raised_at, count) counts `count`; the
    escalations per second between the first and the last, and the CPU milliseconds per escalation of the
    workers (start-up included) and of the database server."""
    home = scratch_home("tansiq-workers-")
    earlier = _backends(db)
    procs = [_worker(backend.url, home) for _ in range(workers)]
    try:
        limit = time.monotonic() + 600
        while time.monotonic() < limit:
            with db.reading() as session:
                first, last, done = session.execute(escalated).one()
            if done >= count:
                break
            time.sleep(0.5)
        cpu = sum(_cpu_seconds(proc.pid) for proc in procs)
        server_cpu = _server_cpu_seconds(db, earlier)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    if done != count:
        raise RuntimeError(f"{done} of {count} due instances were escalated")
    return count / max(1e-6, (last - first).total_seconds()), 1000 * cpu / count, 1000 * server_cpu / count


def _rounds(label: str, rounds: int, run: Callable[[], tuple[float, float, float]]
            ) -> tuple[list[float], list[float], list[float]]:
    """Rates, workers' and server's CPU per escalation of each round, printed as they come."""
    rates, cpu, server = [], [], []
    for index in range(rounds):
        rate, cpu_ms, server_ms = run()
        rates.append(rate)
        cpu.append(cpu_ms)
        server.append(server_ms)
        print(f"{label}, round {index + 1}/{rounds}: {rate:.0f} escalations/s, CPU per escalation: workers "
              f"{cpu_ms:.2f} ms, PostgreSQL {server_ms:.2f} ms", file=sys.stderr, flush=True)
    return rates, cpu, server


def escalation_throughput(backend: Backend, db: Database, rounds: int, due: int) -> list[Record]:
    plans = [(2, "2 worker processes", ">= 2000"), (1, "1 worker process", None)] if db.is_postgresql else \
        [(1, "1 worker process", None)]
    records = []
    for workers, label, target in plans:
        rates, cpu, server = _rounds(f"[{backend.name}] {label}", rounds,
                                     lambda workers=workers: throughput_round(backend, db, due, workers))
        records.append(record(f"escalations processed, {label} ({due} due instances)", backend.name, rates,
                              "instances/s", target))
        records.append(record(f"worker CPU per escalated instance (start-up included), {label}", backend.name,
                              cpu, "ms"))
        if db.is_postgresql:
            records.append(record(f"PostgreSQL backend CPU per escalated instance, {label}", backend.name,
                                  server, "ms"))
    return records


def _prepare_directives(db: Database) -> None:
    """The shipped model, a season around today and the responsible entity (once per backend)."""
    today = datetime.now(UTC).date()
    with db.transaction() as session:
        for table in sorted(DIRECTIVE_MODEL.parent.glob("*.dmn")):  # the decision tables it names, first
            decision_tables.deploy(session, table.read_bytes(), table.name, "bench")
        process_models.deploy(session, DIRECTIVE_MODEL.read_bytes(), DIRECTIVE_MODEL.name, "bench")
        seasons.create_season(session, 1448, today.replace(year=today.year - 1), today.replace(year=today.year + 1))
        entities.create_entity(session, "housing", "الإسكان", "Housing")


def _launch(db: Database, count: int, deadline: datetime) -> None:
    for start in range(0, count, LAUNCHES_PER_TRANSACTION):
        with db.transaction() as session:
            for _ in range(min(LAUNCHES_PER_TRANSACTION, count - start)):
                directives.create(session, directives.NewDirective(
                    title="تجهيز مراكز الاستقبال قبل وصول الحجاج", title_en="Prepare the reception centres",
                    kind="decision", responsible_entity="housing", deadline=deadline,
                    process_model_key="directive_standard"), "bench", launch_now=True)


def _launch_due(db: Database, count: int) -> datetime:
    """`count` directives due at one moment, far enough ahead that every launch commits before it (the
    pace is timed on a few launches due in a day, which the round never reaches)."""
    began = time.perf_counter()
    _launch(db, 20, datetime.now(UTC) + timedelta(days=1))
    pace = (time.perf_counter() - began) / 20
    deadline = datetime.now(UTC) + timedelta(seconds=5 + 4 * pace * count)  # 4×: a shared machine's pace varies
    _launch(db, count, deadline)
    if datetime.now(UTC) >= deadline:
        raise RuntimeError("launching the directives took longer than the lead: the round is not valid")
    return deadline


def directive_escalation_round(backend: Backend, db: Database, count: int, workers: int) -> tuple[float, float, float]:
    """Level-1 escalations of launched directives per second, and the CPU milliseconds per escalation of the
    workers (start-up included) and of the database server."""
    with db.reading() as session:
        since = (session.scalar(select(func.max(Escalation.id))) or 0) + 1
    deadline = _launch_due(db, count)
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.2)
    escalated = (select(func.min(Escalation.raised_at), func.max(Escalation.raised_at), func.count())
                 .where(Escalation.id >= since, Escalation.level == 1))
    return _drain(backend, db, workers, escalated, count)


def directive_escalation_ceiling(count: int = 300) -> list[float]:
    """Level-1 escalations per second of one core doing only SpiffWorkflow's part of a firing, no database:
    restore a waiting `directive_standard` instance (its reminder sent), fire its due timer (the service
    tasks answered in memory), convert it back to a state. Three rounds."""
    settings = get_settings()
    # The shipped decision tables by key (each file is named after its decision, with dashes).
    shipped_tables = {path.stem.replace("-", "_"): (1, path.read_text())
                      for path in DIRECTIVE_MODEL.parent.glob("*.dmn")}
    compiled = validate_model(DIRECTIVE_MODEL.read_bytes(), DIRECTIVE_MODEL.name, operation_names(),
                              max_bytes=settings.model_max_bytes, max_elements=settings.model_max_elements,
                              find_decision=shipped_tables.get).compiled
    launched = datetime.now(UTC)
    deadline = launched + timedelta(days=3)
    data = {"directive_id": 1, "reference": "1448/0001", "title": "تجهيز مراكز الاستقبال", "kind": "decision",
            "priority": "normal", "responsible_entity": "housing", "supporting_entities": [],
            "addressed_entities": ["housing"], "deadline": deadline.isoformat(), "reminder_lead": "P1D",
            "grace": "P1D", "max_returns": directives.MAX_RETURNS}

    def runtime(state: dict[str, Any] | None = None) -> Runtime:
        limits = (settings.max_loop_visits, settings.max_instance_tasks)
        if state is None:
            return Runtime.start(compiled, data, lambda call: {"id": 1}, *limits)
        return Runtime.load(compiled, state, lambda call: {"id": 1}, *limits)

    with clock.frozen_at(launched):
        waiting = runtime()
        waiting.run_engine()
    with clock.frozen_at(deadline - timedelta(hours=12)):
        waiting.fire_timers()
    state = waiting.stored()
    rates = []
    with clock.frozen_at(deadline + timedelta(seconds=1)):
        for _ in range(3):
            began = time.process_time()
            for _ in range(count):
                fired = runtime(state)
                fired.fire_timers()
                fired.stored()
            rates.append(count / (time.process_time() - began))
    return rates


def directive_escalations(backend: Backend, db: Database, rounds: int, due: int) -> list[Record]:
    workers, label = (2, "2 worker processes") if db.is_postgresql else (1, "1 worker process")
    _prepare_directives(db)
    rates, cpu, server = _rounds(f"[{backend.name}] directives, {label}", rounds,
                                 lambda: directive_escalation_round(backend, db, due, workers))
    ceiling = directive_escalation_ceiling()
    # Its own ceiling, not the two-step lifecycle's of the other figures (run_backend's ratios skip this unit).
    per_core = statistics.median(ceiling)
    records = [record(f"escalations of directives (shipped model), {label} ({due} due)", backend.name, rates,
                      "escalations/s", ">= 2000" if db.is_postgresql else None),
               record("ceiling: SpiffWorkflow alone, one core (restore, fire the due timer, convert; no database)",
                      backend.name, ceiling, "escalations/s"),
               record(f"escalations of directives ÷ SpiffWorkflow alone on {workers} core(s)", backend.name,
                      [rate / (per_core * workers) for rate in rates], "×"),
               record(f"worker CPU per directive escalation (start-up included), {label}", backend.name, cpu, "ms")]
    if db.is_postgresql:
        records.append(record(f"PostgreSQL backend CPU per directive escalation, {label}", backend.name, server, "ms"))
    return records


def statements_per_firing(backend: Backend, db: Database, count: int = 300) -> list[Record]:
    """What one firing sends to the database (engine_bench's Probe), measured in this process."""
    deadline = _clone_due(db, count, lead=1.0)
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.1)
    probe = Probe(db)
    probe.active = True
    result = timers.run_until_idle(db)
    probe.active = False
    fired = max(1, result.processed)
    name = backend.name
    return [record("statements per escalated instance (in-process batch)", name,
                   [sum(probe.statements.values()) / fired], "statements"),
            record("time inside cursor.execute per escalated instance (in-process batch)", name,
                   [1000 * probe.sql_seconds / fired], "ms")]


def run_backend(backend: Backend, rounds: int, spread: int, burst: int, due: int,
                directive_due: int) -> list[Record]:
    migrate.upgrade(backend.url)
    db = Database(backend.url)
    try:
        with db.transaction() as session:
            process_models.deploy(session, MODEL.read_bytes(), MODEL.name, "bench")
        records = firing_delay(backend, db, rounds, spread, burst)
        records += escalation_throughput(backend, db, rounds, due)
        records += statements_per_firing(backend, db)
        if directive_due:
            records += directive_escalations(backend, db, rounds, directive_due)
    finally:
        db.dispose()
    ceilings, memory, commits = ceiling_records(backend)
    for rec in [r for r in records if r.unit == "instances/s"]:
        values = [rec.median, rec.min, rec.max]
        records.append(record(f"{rec.figure} ÷ in-memory ceiling (lifecycles/s)", backend.name,
                              [v / memory for v in values], "×"))
        records.append(record(f"{rec.figure} ÷ bare commits/s", backend.name, [v / commits for v in values], "×"))
    return records + ceilings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spread", type=int, default=100, help="timers per firing-delay round")
    parser.add_argument("--burst", type=int, default=500, help="timers due at one moment")
    parser.add_argument("--due", type=int, default=5000, help="due instances per throughput round")
    parser.add_argument("--directive-due", type=int, default=2000,
                        help="launched directives due per round of the shipped-model run (0: skip it)")
    parser.add_argument("--json", help="write the records here")
    args = parser.parse_args(argv)
    names = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    records: list[Record] = []
    try:
        if "postgresql" in names:
            check_postgresql()
        for name in names:
            with fresh_backend(name) as backend:
                records += run_backend(backend, args.rounds, args.spread, args.burst, args.due, args.directive_due)
    except Unreachable as exc:
        print(f"timers_bench: {exc}", file=sys.stderr)
        return 2
    write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
