"""Engine benchmark: what one client gets out of Tansiq on SQLite and PostgreSQL, against two ceilings.

    .venv/bin/python bench/engine_bench.py [--backend sqlite|postgresql|both] [--n N] [--repeat R]

Each backend gets a fresh database made here (SQLite in a temporary folder; PostgreSQL: a database
with a random name on the loopback server, dropped at the end). Every round measures, in this order
and on the same database: N full lifecycles of `two_steps` through the engine, load/save of stored
instance state, the in-memory SpiffWorkflow ceiling for the same model, and the bare commit rate.
Figures are the median of the rounds with their min–max spread. See bench/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_HOME = tempfile.mkdtemp(prefix="tansiq-bench-home-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ["TANSIQ_HOME"] = _HOME  # before any engine import: settings are read once
os.environ.pop("TANSIQ_DATABASE_URL", None)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import (  # noqa: E402
    Column,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    insert,
    make_url,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from engine.bpmn import process_models  # noqa: E402
from engine.bpmn.bpmn_runtime import CompiledModel, Runtime  # noqa: E402
from engine.bpmn.model_validation import validate_model  # noqa: E402
from engine.bpmn.service_tasks import operation_names  # noqa: E402
from engine.foundation.settings import get_settings  # noqa: E402
from engine.storage.db import Database, GzipJSON  # noqa: E402
from engine.system import migrate  # noqa: E402
from engine.system.schema import Base  # noqa: E402
from engine.work import instances  # noqa: E402
from engine.work.work_items import OPEN, WorkItem  # noqa: E402

MODEL_FILE = ROOT / "tests" / "bpmn" / "two-steps.bpmn"
MODEL_KEY = "two_steps"
ACTOR = "bench"
FORMS: tuple[dict[str, Any], ...] = ({"note": "checked"}, {})  # first step's schema requires a note
PG_ADMIN_URL = os.environ.get(
    "TANSIQ_BENCH_PG_ADMIN_URL",
    os.environ.get("TANSIQ_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_SCRATCH_METADATA = MetaData()
SCRATCH = Table(  # the bare-commit scratch table: created for the run, dropped after it
    "bench_scratch_commit", _SCRATCH_METADATA,
    Column("id", Integer, primary_key=True), Column("payload", String(64)),
)
OUT_DIR = ROOT / "bench" / "out"


class Unreachable(Exception):
    """PostgreSQL cannot be used: one line for the user, exit status 2."""


# Measuring --------------------------------------------------------------------------------------


class Probe:
    """Counts what the engine sends to the database while `active`: statements by verb, driver time
    in cursor.execute, COMMITs (and when the last one began), rows changed by UPDATE/DELETE."""

    def __init__(self, database: Database) -> None:
        self.active = False
        self.commit_began = 0.0
        self._began = 0.0
        self.reset()
        event.listen(database.engine, "before_cursor_execute", self._before)
        event.listen(database.engine, "after_cursor_execute", self._after)
        event.listen(database.engine, "commit", self._commit)

    def reset(self) -> None:
        self.statements: Counter[str] = Counter()
        self.sql_seconds = 0.0
        self.commits = 0
        self.updated = 0
        self.deleted = 0

    def _before(self, *_: Any) -> None:
        self._began = time.perf_counter()

    def _after(self, _conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        elapsed = time.perf_counter() - self._began
        if not self.active:
            return
        verb = statement.lstrip().split(None, 1)[0].upper()
        self.statements[verb] += 1
        self.sql_seconds += elapsed
        if verb == "UPDATE" and cursor.rowcount > 0:
            self.updated += cursor.rowcount
        elif verb == "DELETE" and cursor.rowcount > 0:
            self.deleted += cursor.rowcount

    def _commit(self, _conn: Any) -> None:
        self.commit_began = time.perf_counter()
        if self.active:
            self.commits += 1


@dataclass
class Rounds:
    """Per-round figures (one value per round) and pooled single-operation samples (seconds)."""

    values: dict[str, list[float]] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def extend_samples(self, name: str, seconds: list[float]) -> None:
        self.samples.setdefault(name, []).extend(seconds)

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])

    def spread(self, name: str) -> tuple[float, float]:
        return min(self.values[name]), max(self.values[name])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def mean_ms(seconds: list[float]) -> float:
    return 1000 * sum(seconds) / len(seconds)


# The backend under test -------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    url: str
    description: str


def _check_loopback(url: str) -> None:
    host = make_url(url).host or ""
    if host not in LOOPBACK:
        raise Unreachable(f"refusing PostgreSQL admin URL on {host!r}: the benchmark runs on loopback only")


def check_postgresql() -> None:
    _check_loopback(PG_ADMIN_URL)
    admin = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        url = make_url(PG_ADMIN_URL)
        raise Unreachable(f"PostgreSQL is unreachable at {url.host}:{url.port or 5432} ({reason})") from None
    finally:
        admin.dispose()


@contextmanager
def fresh_backend(name: str) -> Iterator[Backend]:
    if name == "sqlite":
        folder = tempfile.mkdtemp(prefix="tansiq-bench-sqlite-")
        path = Path(folder) / "tansiq.db"
        try:
            yield Backend(name, f"sqlite:///{path}", f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL), "
                                                    f"file in {folder}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    _check_loopback(PG_ADMIN_URL)
    database = f"tansiq_bench_{secrets.token_hex(6)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        with admin.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
            sync = connection.execute(text("SHOW synchronous_commit")).scalar_one()
            fsync = connection.execute(text("SHOW fsync")).scalar_one()
        url = make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)
        description = (f"PostgreSQL {version} on {make_url(PG_ADMIN_URL).host} (synchronous_commit={sync}, "
                       f"fsync={fsync}), database {database}")
        yield Backend(name, url, description)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


# One backend, R rounds -------------------------------------------------------------------------


class Bench:
    def __init__(self, backend: Backend, n: int, repeat: int) -> None:
        self.backend = backend
        self.n = n
        self.repeat = repeat
        self.pool_size = max(1, min(n, 100))
        self.rounds = Rounds()
        settings = get_settings()
        self.max_visits, self.max_tasks = settings.max_loop_visits, settings.max_instance_tasks
        deadline = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        self.data = {"responsible_entity": "housing", "deadline": deadline}
        self.codec = GzipJSON()
        self.facts: dict[str, Any] = {}

    # Setup ---------------------------------------------------------------------------------

    def run(self) -> Rounds:
        migrate.upgrade(self.backend.url)
        self.db = Database(self.backend.url)
        self.probe = Probe(self.db)
        self.write_engine = self.db.engine.execution_options(tansiq_write=True)  # BEGIN IMMEDIATE on SQLite
        try:
            content = MODEL_FILE.read_bytes()
            with self.db.transaction() as session:
                process_models.deploy(session, content, MODEL_FILE.name, ACTOR)
            settings = get_settings()
            # The in-memory ceiling parses the model once, by itself.
            self.compiled: CompiledModel = validate_model(
                content, MODEL_FILE.name, operation_names(),
                max_bytes=settings.model_max_bytes, max_elements=settings.model_max_elements,
            ).compiled
            _SCRATCH_METADATA.create_all(self.db.engine)
            self._count_state_round_trips()
            self._lifecycles(min(self.n, 30))  # warm-up: caches, compiled statements, connections
            self._bare_commits(min(self.n, 30))
            self.pool = [self._start_in_flight() for _ in range(self.pool_size)]
            self.facts["pool_size"] = self.pool_size
            for index in range(self.repeat):
                self._round(index)
            self._storage_facts()
            _SCRATCH_METADATA.drop_all(self.db.engine)
        finally:
            self.db.dispose()
        return self.rounds

    def _round(self, index: int) -> None:
        r = self.rounds
        size_before = self._database_bytes()
        rows_before = self._row_count()
        gc.collect()
        lc = self._lifecycles(self.n)
        size_after = self._database_bytes()
        rows_after = self._row_count()
        r.add("start_ms", mean_ms(lc["start"]))
        r.add("complete_ms", mean_ms(lc["complete"]))
        r.extend_samples("start_ms", lc["start"])
        r.extend_samples("complete_ms", lc["complete"])
        r.add("lifecycles_per_s", self.n / lc["wall"])
        r.add("commits_per_lifecycle", self.probe.commits / self.n)
        r.add("commit_ms_per_lifecycle", 1000 * lc["commit"] / self.n)
        r.add("sql_ms_per_lifecycle", 1000 * self.probe.sql_seconds / self.n)
        r.add("statements_per_lifecycle", sum(self.probe.statements.values()) / self.n)
        for verb in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            r.add(f"{verb.lower()}_per_lifecycle", self.probe.statements[verb] / self.n)
        other = sum(count for verb, count in self.probe.statements.items()
                    if verb not in ("SELECT", "INSERT", "UPDATE", "DELETE"))
        r.add("other_per_lifecycle", other / self.n)
        inserted = rows_after - rows_before
        r.add("rows_inserted_per_lifecycle", inserted / self.n)
        r.add("rows_updated_per_lifecycle", (self.probe.updated + self.probe.deleted) / self.n)
        r.add("rows_written_per_lifecycle", (inserted + self.probe.updated + self.probe.deleted) / self.n)
        r.add("bytes_per_lifecycle", (size_after - size_before) / self.n)

        gc.collect()
        loads, saves = self._load_save()
        r.add("load_ms", mean_ms(loads))
        r.add("save_ms", mean_ms(saves))
        r.extend_samples("load_ms", loads)
        r.extend_samples("save_ms", saves)

        gc.collect()
        ceiling_wall, dumps, restores, encodes, decodes = self._in_memory()
        r.add("ceiling_per_s", self.n / ceiling_wall)
        r.add("mem_dump_ms", mean_ms(dumps))
        r.add("mem_load_ms", mean_ms(restores))
        r.add("encode_ms", mean_ms(encodes))
        r.add("decode_ms", mean_ms(decodes))

        gc.collect()
        commits = 3 * self.n
        wall, singles = self._bare_commits(commits)
        r.add("commits_per_s", commits / wall)
        r.extend_samples("bare_commit_ms", singles)

        lps, cps = r.values["lifecycles_per_s"][-1], r.values["commits_per_s"][-1]
        r.add("ratio_ceiling", lps / r.values["ceiling_per_s"][-1])
        r.add("ratio_lps_cps", lps / cps)
        r.add("commit_equivalents", cps / lps)
        print(f"[{self.backend.name}] round {index + 1}/{self.repeat}: {lps:.1f} lifecycles/s, "
              f"ceiling {r.values['ceiling_per_s'][-1]:.0f}/s, bare commits {cps:.0f}/s", file=sys.stderr)

    # Through the engine ---------------------------------------------------------------------

    def _lifecycles(self, n: int) -> dict[str, Any]:
        db, probe = self.db, self.probe
        starts: list[float] = []
        completes: list[float] = []
        commit_seconds = 0.0
        probe.reset()
        probe.active = True
        began = time.perf_counter()
        first_id = None
        for _ in range(n):
            t0 = time.perf_counter()
            with db.transaction() as session:
                instance_id = instances.start(session, MODEL_KEY, self.data, ACTOR).id
            t1 = time.perf_counter()
            starts.append(t1 - t0)
            commit_seconds += t1 - probe.commit_began
            first_id = first_id or instance_id
            for form in FORMS:
                t0 = time.perf_counter()
                with db.transaction() as session:
                    # The client's inbox read: the open step of this instance (one indexed SELECT).
                    item_id = session.scalar(
                        select(WorkItem.id).where(WorkItem.instance_id == instance_id, WorkItem.status == OPEN)
                    )
                    instances.complete_task(session, item_id, form, ACTOR)
                t1 = time.perf_counter()
                completes.append(t1 - t0)
                commit_seconds += t1 - probe.commit_began
        wall = time.perf_counter() - began
        probe.active = False
        with db.reading() as session:
            done = session.scalar(
                select(func.count()).select_from(instances.ProcessInstance).where(
                    instances.ProcessInstance.id >= first_id,
                    instances.ProcessInstance.status == instances.COMPLETED,
                )
            )
        if done != n:
            raise RuntimeError(f"{n - done} of {n} instances did not complete; the benchmark is invalid")
        return {"start": starts, "complete": completes, "wall": wall, "commit": commit_seconds}

    def _start_in_flight(self) -> int:
        with self.db.transaction() as session:
            return instances.start(session, MODEL_KEY, self.data, ACTOR).id

    def _load_save(self) -> tuple[list[float], list[float]]:
        loads, saves = [], []
        self.runtimes = []
        for instance_id in self.pool:
            t0 = time.perf_counter()
            with self.db.reading() as session:
                instance = session.get(instances.ProcessInstance, instance_id)
                runtime = Runtime.load(process_models.compiled_model(instance.model), instance.state, None,
                                       self.max_visits, self.max_tasks)
            loads.append(time.perf_counter() - t0)
            self.runtimes.append(runtime)
            with self.db.transaction() as session:
                instance = instances.lock(session, instance_id)  # what the engine holds before it saves
                t0 = time.perf_counter()
                instance.state = runtime.dump()
                instance.updated_at = datetime.now(UTC)
            saves.append(time.perf_counter() - t0)
        return loads, saves

    # In memory, no database -----------------------------------------------------------------

    def _in_memory(self) -> tuple[float, list[float], list[float], list[float], list[float]]:
        model = self.compiled
        began = time.perf_counter()
        for _ in range(self.n):
            runtime = Runtime.start(model, self.data, None, self.max_visits, self.max_tasks)
            runtime.run_engine()
            for form in FORMS:
                (task,) = runtime.ready_user_tasks()
                runtime.complete_user_task(task.task_id, form)
                runtime.run_engine()
            if not runtime.completed:
                raise RuntimeError("the in-memory lifecycle did not complete")
        wall = time.perf_counter() - began
        dumps, restores, encodes, decodes = [], [], [], []
        for runtime in self.runtimes:  # the in-flight instances that were just loaded from the database
            t0 = time.perf_counter()
            state = runtime.stored()
            t1 = time.perf_counter()
            Runtime.load(model, state, None, self.max_visits, self.max_tasks)
            t2 = time.perf_counter()
            blob = self.codec.process_bind_param(state, None)
            t3 = time.perf_counter()
            self.codec.process_result_value(blob, None)
            t4 = time.perf_counter()
            dumps.append(t1 - t0)
            restores.append(t2 - t1)
            encodes.append(t3 - t2)
            decodes.append(t4 - t3)
        return wall, dumps, restores, encodes, decodes

    def _count_state_round_trips(self) -> None:
        """How often one lifecycle serializes and deserializes state: counted once, in a warm-up run
        with counting wrappers around `Runtime.dump` / `Runtime.load`, which are then put back."""
        counts: Counter[str] = Counter()
        original_dump, original_load = vars(Runtime)["dump"], vars(Runtime)["load"]

        def dump(runtime: Runtime) -> dict[str, Any]:
            counts["dump"] += 1
            return original_dump(runtime)

        def load(cls: type[Runtime], *args: Any, **kwargs: Any) -> Runtime:
            counts["load"] += 1
            return original_load.__func__(cls, *args, **kwargs)

        Runtime.dump = dump  # type: ignore[method-assign]
        Runtime.load = classmethod(load)  # type: ignore[method-assign,assignment]
        try:
            self._lifecycles(5)
        finally:
            Runtime.dump = original_dump  # type: ignore[method-assign]
            Runtime.load = original_load  # type: ignore[method-assign]
        self.facts["dumps_per_lifecycle"] = counts["dump"] / 5
        self.facts["loads_per_lifecycle"] = counts["load"] / 5

    # The database alone ---------------------------------------------------------------------

    def _bare_commits(self, count: int) -> tuple[float, list[float]]:
        statement = insert(SCRATCH)
        singles = []
        began = time.perf_counter()
        for index in range(count):
            t0 = time.perf_counter()
            with self.write_engine.begin() as connection:
                connection.execute(statement, {"payload": f"row {index}"})
            singles.append(time.perf_counter() - t0)
        return time.perf_counter() - began, singles

    def _database_bytes(self) -> int:
        with self.db.engine.connect() as connection:
            if self.db.is_sqlite:
                pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
                return pages * connection.exec_driver_sql("PRAGMA page_size").scalar_one()
            return connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()

    def _row_count(self) -> int:
        with self.db.engine.connect() as connection:
            return sum(connection.execute(select(func.count()).select_from(table)).scalar_one()
                       for table in Base.metadata.sorted_tables)

    def _storage_facts(self) -> None:
        Instance = instances.ProcessInstance
        with self.db.reading() as session:
            for status in (instances.COMPLETED, instances.RUNNING):
                self.facts[f"state_gzip_bytes_{status}"] = session.scalar(
                    select(func.avg(func.length(Instance.state))).where(Instance.status == status)
                )
            instance = session.scalar(select(Instance).where(Instance.status == instances.COMPLETED).limit(1))
            self.facts["state_json_bytes_completed"] = len(json.dumps(instance.state, separators=(",", ":")))
        self.facts["state_json_bytes_running"] = len(json.dumps(self.runtimes[0].stored(), separators=(",", ":")))


# The two ceilings, for other benchmarks ---------------------------------------------------------


def in_memory_rate(n: int) -> float:
    """Lifecycles per second of the benchmark model run by `Runtime` alone, no database (median of 3)."""
    settings = get_settings()
    compiled = validate_model(MODEL_FILE.read_bytes(), MODEL_FILE.name, operation_names(),
                              max_bytes=settings.model_max_bytes, max_elements=settings.model_max_elements).compiled
    data = {"responsible_entity": "housing", "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat()}
    rates = []
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(n):
            runtime = Runtime.start(compiled, data, None, settings.max_loop_visits, settings.max_instance_tasks)
            runtime.run_engine()
            for form in FORMS:
                (task,) = runtime.ready_user_tasks()
                runtime.complete_user_task(task.task_id, form)
                runtime.run_engine()
        rates.append(n / (time.perf_counter() - began))
    return statistics.median(rates)


def bare_commit_rate(url: str, count: int) -> float:
    """One-row INSERT + COMMIT transactions per second on the database at `url` (a scratch table)."""
    db = Database(url)
    try:
        _SCRATCH_METADATA.create_all(db.engine)
        write_engine = db.engine.execution_options(tansiq_write=True)
        began = time.perf_counter()
        for index in range(count):
            with write_engine.begin() as connection:
                connection.execute(insert(SCRATCH), {"payload": f"row {index}"})
        rate = count / (time.perf_counter() - began)
        _SCRATCH_METADATA.drop_all(db.engine)
        return rate
    finally:
        db.dispose()


# Report -----------------------------------------------------------------------------------------


def num(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def render(backend: Backend, rounds: Rounds, facts: dict[str, Any], n: int, repeat: int, seconds: float) -> str:
    r = rounds

    def row(label: str, name: str, unit: str = "", single: str | None = None, wide: bool = True) -> str:
        low, high = r.spread(name)
        cells = [label, f"**{num(r.median(name))}** {unit}".rstrip(), f"{num(low)} – {num(high)}"]
        if single is not None:
            samples = r.samples[single]
            cells.append(f"{num(1000 * percentile(samples, 0.5))} / {num(1000 * percentile(samples, 0.99))} ms")
        elif wide:
            cells.append("")
        return "| " + " | ".join(cells) + " |"

    head = "| Figure | Median | Spread (min – max of rounds) | Single op p50 / p99 |\n|---|---:|---:|---:|"
    narrow = "| Figure | Median | Spread (min – max of rounds) |\n|---|---:|---:|"
    med = r.median
    lifecycle_ms = 1000 / med("lifecycles_per_s")
    spiff_ms = 1000 / med("ceiling_per_s")
    dumps, loads = facts["dumps_per_lifecycle"], facts["loads_per_lifecycle"]
    completions = len(FORMS)
    state_ms = (dumps * (med("mem_dump_ms") + med("encode_ms"))
                + loads * med("mem_load_ms") + completions * med("decode_ms"))
    sql_ms, commit_ms = med("sql_ms_per_lifecycle"), med("commit_ms_per_lifecycle")
    rest_ms = lifecycle_ms - spiff_ms - state_ms - sql_ms - commit_ms
    commits = med("commits_per_lifecycle")
    commit_bound = [c / commits for c in r.values["commits_per_s"]]
    growth = ("SQLite page_count × page_size" if backend.name == "sqlite" else "PostgreSQL pg_database_size")

    def share(ms: float) -> str:
        return f"| {num(ms)} | {100 * ms / lifecycle_ms:.0f} % |"

    versions = ", ".join(f"{package} {metadata.version(package)}"
                         for package in ("SpiffWorkflow", "SQLAlchemy", "psycopg"))
    lines = [
        f"# Tansiq engine benchmark — {backend.name}",
        "",
        f"- When: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {seconds:.0f} s for this backend; "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; Python {platform.python_version()}; "
        f"{versions}",
        f"- Database: {backend.description} (fresh, made by the benchmark)",
        f"- Work: model `{MODEL_KEY}` (start → user task → user task → end); {n} lifecycles per round, "
        f"{repeat} rounds, one client, each step its own transaction; warm-up not counted",
        "- Median of the rounds, spread = min – max of the rounds; in a round a latency is the mean of its "
        "operations; single-op p50 / p99 pool every operation of every round",
        "",
        "## Tansiq through the database",
        "",
        head,
        row("start: `instances.start`, 1 COMMIT", "start_ms", "ms", "start_ms"),
        row("complete: inbox SELECT + `complete_task`, 1 COMMIT", "complete_ms", "ms", "complete_ms"),
        row("lifecycle: start + complete both tasks", "lifecycles_per_s", "lifecycles/s"),
        row(f"load: SELECT row, gunzip + JSON, `Runtime.load` ({facts['pool_size']} waiting instances)",
            "load_ms", "ms", "load_ms"),
        row("save: `Runtime.dump`, JSON + gzip, UPDATE, COMMIT", "save_ms", "ms", "save_ms"),
        "",
        "## Ceilings (same run, same process and database)",
        "",
        head,
        row("in-memory ceiling: parsed once; `Runtime.start`, `run_engine`, complete both tasks",
            "ceiling_per_s", "lifecycles/s"),
        row("in-memory serialize: `Runtime.dump` of a waiting instance", "mem_dump_ms", "ms"),
        row("in-memory deserialize: `Runtime.load` of it", "mem_load_ms", "ms"),
        row("state encode: JSON + gzip (the `state` column type)", "encode_ms", "ms"),
        row("state decode: gunzip + JSON", "decode_ms", "ms"),
        row("bare commit rate: 1-row INSERT + COMMIT per transaction", "commits_per_s", "commits/s", "bare_commit_ms"),
        "",
        "## Ratios (computed per round, then the median)",
        "",
        narrow,
        row("Tansiq lifecycles/s ÷ in-memory ceiling", "ratio_ceiling", wide=False),
        row("COMMITs per lifecycle (counted)", "commits_per_lifecycle", wide=False),
        row("Tansiq lifecycles/s ÷ bare commits/s", "ratio_lps_cps", wide=False),
        row("a lifecycle takes the time of this many bare commits (bare commits/s ÷ lifecycles/s)",
            "commit_equivalents", "commits", wide=False),
        f"| if only the COMMITs cost: bare commits/s ÷ {num(commits)} | "
        f"**{num(statistics.median(commit_bound))}** lifecycles/s | "
        f"{num(min(commit_bound))} – {num(max(commit_bound))} |",
        "",
        "## Where a lifecycle's time goes (medians, ms per lifecycle; the rest is by difference)",
        "",
        "| Part | ms | Share |\n|---|---:|---:|",
        f"| whole lifecycle (1000 ÷ lifecycles/s) {share(lifecycle_ms)}",
        f"| SpiffWorkflow work (the in-memory ceiling) {share(spiff_ms)}",
        f"| state: {num(dumps)} × (dump + encode), {num(loads)} × `Runtime.load`, {completions} × decode "
        f"(in-memory figures) {share(state_ms)}",
        f"| SQL: {num(med('statements_per_lifecycle'))} statements, time inside `cursor.execute` {share(sql_ms)}",
        f"| {num(commits)} COMMITs (from COMMIT to the end of the transaction block) {share(commit_ms)}",
        f"| the rest: ORM unit of work, form validation, work-item projection, Python {share(rest_ms)}",
        "",
        "## Storage and writes per completed lifecycle",
        "",
        narrow,
        row(f"database growth ({growth} delta ÷ N)", "bytes_per_lifecycle", "bytes", wide=False),
        row("rows written (inserted + updated)", "rows_written_per_lifecycle", "rows", wide=False),
        row("— rows inserted", "rows_inserted_per_lifecycle", "rows", wide=False),
        row("— rows updated", "rows_updated_per_lifecycle", "rows", wide=False),
        row("SQL statements", "statements_per_lifecycle", wide=False),
        row("— SELECT", "select_per_lifecycle", wide=False),
        row("— INSERT", "insert_per_lifecycle", wide=False),
        row("— UPDATE", "update_per_lifecycle", wide=False),
        row("— BEGIN / SAVEPOINT / RELEASE and other", "other_per_lifecycle", wide=False),
        f"| stored state of a completed instance: gzip bytes (JSON bytes) | "
        f"**{num(float(facts['state_gzip_bytes_completed']))}** ({num(facts['state_json_bytes_completed'])}) | |",
        f"| stored state of an instance waiting at its first task: gzip bytes (JSON bytes) | "
        f"**{num(float(facts['state_gzip_bytes_running']))}** ({num(facts['state_json_bytes_running'])}) | |",
        "",
    ]
    return "\n".join(lines)


# Entry point ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--n", type=int, default=300, help="lifecycles per round (default 300)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be at least 1")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    try:
        if "postgresql" in backends:
            check_postgresql()  # before any work: fail fast, in one line
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for name in backends:
            began = time.perf_counter()
            print(f"[{name}] setting up a fresh database", file=sys.stderr)
            with fresh_backend(name) as backend:
                bench = Bench(backend, args.n, args.repeat)
                rounds = bench.run()
                report = render(backend, rounds, bench.facts, args.n, args.repeat, time.perf_counter() - began)
            path = OUT_DIR / f"engine-{name}.md"
            path.write_text(report, encoding="utf-8")
            print(report)
            print(f"[{name}] written to {path.relative_to(ROOT)}", file=sys.stderr)
    except Unreachable as exc:
        print(f"engine_bench: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
