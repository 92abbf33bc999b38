"""Generate a season-scale database fast: N directives with their instances, steps, escalations,
notifications and audit trail, by cloning what the engine itself produced.

    .venv/bin/python bench/generate.py --url postgresql+psycopg://postgres@127.0.0.1:5432/DB --directives 1000000
    .venv/bin/python bench/generate.py --url sqlite:////tmp/x/tansiq.db --directives 20000

How: the database is migrated and the demo season is played through the engine (`engine.system.demo.seed`:
~200 directives in every state, ~30 s). Those directives are the templates. Each generated directive
is a copy of one template, picked by a fixed mix of statuses (`MIX`), with fresh ids, a fresh reference
(the season's sequence continues), its title numbered, every moment moved back by up to a week, and its
own audit events appended to the hash chain (the chain verifies). Escalations of copies stay open with
probability `--open-escalations` (a season's supervisors resolve most), the rest are resolved; the
directive's escalation level follows. On PostgreSQL the rows go in with COPY (psycopg), foreign-key
triggers off for the load (`session_replication_role = replica`), secondary indexes dropped before and
built after, then VACUUM ANALYZE; on SQLite with executemany in large transactions. The dashboard's running
totals (engine/directives/tallies.py) are then counted from the rows, which went in past the engine that keeps them.

Copies are read-only replicas: their workflow state is the template's (its task ids are not theirs), so
their timers are moved a year ahead and nothing should complete their steps; make fresh directives
through the engine for writes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import JSON, Column, LargeBinary, MetaData, Table, create_engine, func, select, text, update  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

import bench.common  # noqa: E402, F401  (a temporary TANSIQ_HOME before engine imports)
from engine.calendar.seasons import Season  # noqa: E402
from engine.directives import tallies  # noqa: E402
from engine.directives.directives import DirectiveSequence  # noqa: E402
from engine.foundation import text_search  # noqa: E402
from engine.storage.audit import AuditHead, event_hash  # noqa: E402
from engine.storage.db import Database, GzipJSON  # noqa: E402
from engine.system import demo, migrate  # noqa: E402
from engine.system.schema import Base  # noqa: E402
from engine.work import step_figures  # noqa: E402

# What a generated season looks like, by the template's status (the demo plays every fate).
MIX = {"completed": 0.70, "active": 0.22, "cancelled": 0.05, "draft": 0.03}
TABLES = ("process_instance", "directive", "directive_supporting_entity", "directive_addressee", "directive_tag",
          "work_item", "escalation", "escalation_timer", "notification", "audit_event")
SHIFT_DAYS = 7
TIMER_AHEAD = timedelta(days=365)  # a copy's timers are not its own: keep them out of the timer poll
_RAW = MetaData()


def raw_table(name: str) -> Table:
    """The table with its column types, except instance state as the stored (gzipped) bytes."""
    if name in _RAW.tables:
        return _RAW.tables[name]
    source = Base.metadata.tables[name]
    columns = [Column(c.name, LargeBinary() if isinstance(c.type, GzipJSON) else c.type, primary_key=c.primary_key,
                      autoincrement=False) for c in source.columns]
    return Table(name, _RAW, *columns)


# Templates -----------------------------------------------------------------------------------------


@dataclass
class Template:
    status: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    @property
    def directive(self) -> dict[str, Any]:
        return self.rows["directive"][0]


def load_templates(engine: Engine) -> list[Template]:
    with engine.connect() as connection:
        rows = {name: [dict(r._mapping) for r in connection.execute(select(raw_table(name)))] for name in TABLES}
    by_directive = {d["id"]: Template(d["status"]) for d in rows["directive"]}
    by_instance: dict[int, Template] = {}
    for d in rows["directive"]:
        by_directive[d["id"]].rows["directive"].append(d)
        if d["instance_id"] is not None:
            by_instance[d["instance_id"]] = by_directive[d["id"]]
    for row in rows["process_instance"]:
        if row["id"] in by_instance:
            by_instance[row["id"]].rows["process_instance"].append(row)
    for name, key, owners in (("directive_supporting_entity", "directive_id", by_directive),
                              ("directive_addressee", "directive_id", by_directive),
                              ("directive_tag", "directive_id", by_directive),
                              ("work_item", "instance_id", by_instance), ("escalation", "instance_id", by_instance),
                              ("escalation_timer", "instance_id", by_instance),
                              ("notification", "instance_id", by_instance)):
        for row in rows[name]:
            owner = owners.get(row[key])
            if owner is not None:
                owner.rows[name].append(row)
    for row in rows["audit_event"]:
        kind, _, number = row["subject"].partition(":")
        owners = {"directive": by_directive, "instance": by_instance}.get(kind, {})
        owner = owners.get(int(number)) if number.isdigit() else None
        if owner is not None:
            owner.rows["audit_event"].append(row)
    return list(by_directive.values())


# Cloning -------------------------------------------------------------------------------------------


@dataclass
class Counters:
    """The next id of every table, the season's reference sequence and the audit chain's head."""

    next_id: dict[str, int]
    hijri_year: int
    sequence: int
    audit_id: int
    audit_hash: str

    def take(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value


class Cloner:
    def __init__(self, templates: list[Template], counters: Counters, open_share: float, seed: int) -> None:
        self.counters = counters
        self.open_share = open_share
        self.rng = random.Random(seed)
        groups: dict[str, list[Template]] = defaultdict(list)
        for template in templates:
            groups[template.status].append(template)
        self.groups = [(groups[s], w) for s, w in MIX.items() if groups[s]]
        self.weights = [w for _, w in self.groups]

    def pick(self) -> Template:
        group = self.rng.choices(self.groups, self.weights)[0][0]
        return self.rng.choice(group)

    def clone(self, template: Template, number: int) -> dict[str, list[dict[str, Any]]]:
        c = self.counters
        shift = -timedelta(minutes=self.rng.randrange(SHIFT_DAYS * 24 * 60))
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        ids: dict[tuple[str, int], int] = {}
        for name in ("process_instance", "directive", "work_item", "escalation", "escalation_timer", "notification"):
            for row in template.rows[name]:
                ids[(name, row["id"])] = c.take(name)
        old = template.directive
        new_directive = ids[("directive", old["id"])]
        old_instance = old["instance_id"]
        new_instance = ids.get(("process_instance", old_instance)) if old_instance else None
        c.sequence += 1
        reference = f"{c.hijri_year}/{c.sequence:06d}"
        subjects = {f"directive:{old['id']}": f"directive:{new_directive}"}
        if old_instance:
            subjects[f"instance:{old_instance}"] = f"instance:{new_instance}"
        for row in template.rows["process_instance"]:
            out["process_instance"].append(_moved(row, shift, id=new_instance, business_key=reference,
                                                  next_timer_at=_ahead(row["next_timer_at"])))
        for row in template.rows["work_item"]:
            new_id = ids[("work_item", row["id"])]
            out["work_item"].append(_moved(row, shift, id=new_id, instance_id=new_instance,
                                           task_id=f"gen-{new_id:012d}-{row['task_id'][:19]}"))
        level = 0
        for row in template.rows["escalation"]:
            keep = row["status"] == "open" and self.rng.random() < self.open_share
            resolved = {} if keep or row["status"] != "open" else {
                "status": "resolved", "resolved_action": "comment", "resolved_by": "supervisor",
                "resolution_note": "dealt with", "resolved_at": row["raised_at"] + timedelta(hours=2)}
            if keep:
                level = max(level, row["level"])
            out["escalation"].append(_moved(row, shift, id=ids[("escalation", row["id"])], instance_id=new_instance,
                                            directive_id=new_directive, **resolved))
        # Its escalation timers keep their moments (moved with the copy), for the forecast: they are rows only,
        # the copy's own timers being a year ahead.
        for row in template.rows["escalation_timer"]:
            out["escalation_timer"].append(_moved(row, shift, id=ids[("escalation_timer", row["id"])],
                                                  instance_id=new_instance))
        # Fanned out, as the notification worker leaves them within seconds: a season's outbox is drained.
        # Left pending, the served API spends half its CPU fanning out 1,000,000 copies while pages are
        # timed. (Their deliveries are not cloned: no benchmark reads the in-app notifications.)
        for row in template.rows["notification"]:
            key = row["source_key"].replace(f"instance:{old_instance}:", f"instance:{new_instance}:", 1)
            out["notification"].append(_moved(row, shift, id=ids[("notification", row["id"])],
                                              instance_id=new_instance, source_key=key, status="fanned_out"))
        texts = {"reference": reference, "title": f"{old['title']} ({number})"}
        # COPY and the raw tables pass the engine's listener: the searched columns' folded twins are written here.
        out["directive"].append(_moved(old, shift, id=new_directive, **texts,
                                       **text_search.folded_values(texts, texts), instance_id=new_instance,
                                       escalation_level=level))
        for name in ("directive_supporting_entity", "directive_tag"):
            out[name].extend(dict(row, directive_id=new_directive) for row in template.rows[name])
        out["directive_addressee"].extend(_moved(row, shift, directive_id=new_directive)
                                          for row in template.rows["directive_addressee"])
        for row in template.rows["audit_event"]:
            out["audit_event"].append(self._chained(_moved(row, shift, subject=subjects[row["subject"]])))
        return out

    def _chained(self, row: dict[str, Any]) -> dict[str, Any]:
        c = self.counters
        c.audit_id += 1
        digest = event_hash(c.audit_id, row["at"], row["actor"], row["action"], row["subject"], row["payload"],
                            c.audit_hash)
        row.update(id=c.audit_id, prev_hash=c.audit_hash, hash=digest)
        c.audit_hash = digest
        return row


def _moved(row: dict[str, Any], shift: timedelta, **changes: Any) -> dict[str, Any]:
    """A copy of the row with every moment moved by `shift` (dates stay), then `changes` applied."""
    moved = {k: (v + shift if isinstance(v, datetime) else v) for k, v in row.items()}
    moved.update(changes)
    return moved


def _ahead(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment + TIMER_AHEAD


# Writing ------------------------------------------------------------------------------------------


class SqliteWriter:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def write(self, batch: dict[str, list[dict[str, Any]]]) -> None:
        with self.engine.begin() as connection:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for name in TABLES:
                if batch.get(name):
                    connection.execute(raw_table(name).insert(), batch[name])

    def before(self) -> None:
        with self.engine.begin() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")

    def after(self) -> None:
        with self.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
        self.engine.dispose()


class PostgresWriter:
    """COPY per table per batch on one connection; secondary indexes rebuilt after the load."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.columns = {name: [c.name for c in raw_table(name).columns] for name in TABLES}
        self.json_columns = {name: {c.name for c in Base.metadata.tables[name].columns if isinstance(c.type, JSON)}
                             for name in TABLES}
        self.indexes: list[tuple[str, str]] = []
        self.constraints: list[tuple[str, str, str]] = []
        self.json_cache: dict[int, tuple[Any, str]] = {}  # keeps the object alive, so its id stays its own

    def before(self) -> None:
        """Drop unique constraints and secondary indexes (built again, by sorting, after the load)."""
        with self.engine.begin() as connection:
            self.constraints = [tuple(r) for r in connection.execute(text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'u' AND conrelid::regclass::text = ANY(:tables)"), {"tables": list(TABLES)})]
            self.indexes = [tuple(r) for r in connection.execute(text(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' "
                "AND i.tablename = ANY(:tables) AND i.indexname NOT IN (SELECT conname FROM pg_constraint)"),
                {"tables": list(TABLES)})]
            for table, name, _ in self.constraints:
                connection.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
            for name, _ in self.indexes:
                connection.execute(text(f'DROP INDEX "{name}"'))
        self.raw = self.engine.raw_connection()
        with self.raw.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("SET synchronous_commit = off")

    def write(self, batch: dict[str, list[dict[str, Any]]]) -> None:
        with self.raw.cursor() as cursor:
            for name in TABLES:
                rows = batch.get(name)
                if not rows:
                    continue
                columns = self.columns[name]
                json_columns = self.json_columns[name]
                with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([self._json(row[c]) if c in json_columns else row[c] for c in columns])
        self.raw.commit()

    def _json(self, value: Any) -> str | None:
        """JSON text of a template's value; copies share the template's objects, so it is made once."""
        if value is None:
            return None
        key = id(value)
        if key not in self.json_cache:
            self.json_cache[key] = (value, json.dumps(value, ensure_ascii=False))
        return self.json_cache[key][1]

    def after(self) -> None:
        self.raw.close()
        with self.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(text("SET maintenance_work_mem = '512MB'"))
            for table, name, definition in self.constraints:
                connection.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
            for _, definition in self.indexes:
                connection.execute(text(definition))
            for name in TABLES:
                if "id" not in raw_table(name).c:
                    continue
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name})) "
                    f"WHERE pg_get_serial_sequence('{name}', 'id') IS NOT NULL"))
            connection.execute(text(f"VACUUM ANALYZE {', '.join(TABLES)}"))
        self.engine.dispose()


# The whole run --------------------------------------------------------------------------------------


@dataclass
class Generated:
    directives: int
    rows: int
    seconds: float
    seed_seconds: float
    templates: int


def _counters(engine: Engine) -> Counters:
    with engine.connect() as connection:
        next_id = {name: (connection.scalar(select(func.max(raw_table(name).c.id))) or 0) + 1
                   for name in ("process_instance", "directive", "work_item", "escalation", "escalation_timer",
                                "notification")}
        season = connection.execute(select(Season.hijri_year, Season.id).order_by(Season.hijri_year.desc())).first()
        sequence = connection.scalar(select(DirectiveSequence.last_number)
                                     .where(DirectiveSequence.hijri_year == season.hijri_year)) or 0
        head = connection.execute(select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == 1)).one()
    return Counters(next_id, season.hijri_year, sequence, head.last_id, head.last_hash)


def _store_counters(engine: Engine, counters: Counters) -> None:
    with engine.begin() as connection:
        connection.execute(update(DirectiveSequence.__table__)
                           .where(DirectiveSequence.hijri_year == counters.hijri_year)
                           .values(last_number=counters.sequence))
        connection.execute(update(AuditHead.__table__).where(AuditHead.id == 1)
                           .values(last_id=counters.audit_id, last_hash=counters.audit_hash))


def batches(cloner: Cloner, count: int, size: int) -> Iterator[tuple[int, dict[str, list[dict[str, Any]]]]]:
    done = 0
    while done < count:
        batch: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for number in range(done + 1, min(count, done + size) + 1):
            for name, rows in cloner.clone(cloner.pick(), number).items():
                batch[name].extend(rows)
        done = min(count, done + size)
        yield done, batch


def seed_templates(url: str, days: int = 21, per_template: int = 8) -> float:
    """Migrate and play the demo season (the templates) unless the database has it already; a smaller
    `per_template` (directives per demo template) and fewer `days` play fewer templates, faster."""
    began = time.perf_counter()
    migrate.upgrade(url)
    db = Database(url)
    try:
        if not demo.is_seeded(db):
            demo.seed(db, ROOT / "bpmn", days=days, per_template=per_template)
    finally:
        db.dispose()
    return time.perf_counter() - began


def generate(url: str, directives: int, *, open_share: float = 0.1, seed: int = 7, batch_size: int = 2000,
             quiet: bool = False, days: int = 21, per_template: int = 8) -> Generated:
    """Add `directives` generated directives to the database at `url` (migrated and given the demo season
    first if it has none)."""
    seed_seconds = seed_templates(url, days, per_template)
    began = time.perf_counter()
    engine = create_engine(url)
    templates = load_templates(engine)
    counters = _counters(engine)
    engine.dispose()
    cloner = Cloner(templates, counters, open_share, seed)
    writer = PostgresWriter(url) if url.startswith("postgresql") else SqliteWriter(url)
    writer.before()
    rows = 0
    for done, batch in batches(cloner, directives, batch_size):
        writer.write(batch)
        rows += sum(len(v) for v in batch.values())
        if not quiet and (done % (batch_size * 25) == 0 or done == directives):
            rate = done / (time.perf_counter() - began)
            print(f"generate: {done:,} directives, {rows:,} rows ({rate:,.0f} directives/s)", file=sys.stderr,
                  flush=True)
    writer.after()
    engine = create_engine(url)
    _store_counters(engine, counters)
    with engine.begin() as connection:
        tallies.recount(connection)  # the copies went in as rows, past the engine that keeps the totals
        step_figures.recount(connection)  # and so did their steps: the heatmap's and forecast's figures
    engine.dispose()
    return Generated(directives, rows, time.perf_counter() - began, seed_seconds, len(templates))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the database to fill (made if SQLite)")
    parser.add_argument("--directives", type=int, default=10_000)
    parser.add_argument("--open-escalations", type=float, default=0.1,
                        help="share of a copy's open escalations that stay open (default 0.1)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    result = generate(args.url, args.directives, open_share=args.open_escalations, seed=args.seed)
    print(f"generated {result.directives:,} directives ({result.rows:,} rows) from {result.templates} templates "
          f"in {result.seconds:.0f} s (+ {result.seed_seconds:.0f} s playing the templates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
