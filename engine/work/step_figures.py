"""Kept figures of every step: how long each kind of step stays open, how often it goes overdue, how often
it comes back (rework) and how many are open now, by model version, season, entity, track and the day the
step opened.

The heatmap (`engine.insight.bottlenecks`) and the forecast (`engine.insight.forecast`) read these rows, never the
steps of a season. A visit is counted where its step opens (`opened`, `open_now`, `reworks`: the instance had
finished this step before) and where it closes (`completed` with its time open in one of `BUCKETS`,
`withdrawn` when an event took it away, `late` when it closed after its due moment). Times are working hours
of the season's business calendar (every hour in season mode), so the forecast compares like with like.
Percentiles come from the buckets: a median is not a sum, a histogram is.

`engine.work.work_items` and `engine.work.instances` report the visits; the additions are resolved (model version,
the directive's season and track, the season's calendar: from the objects the transaction holds, else one
query per commit) and written when the
transaction commits (`engine.storage.kept_counts`). `recount` computes every row again from the steps.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, NamedTuple

from sqlalchemy import Connection, Date, Index, Integer, String, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.calendar.business_calendar import calendar_of, working_hours_between
from engine.calendar.durations import RIYADH
from engine.storage import kept_counts
from engine.storage.db import Base

NO_SEASON, NONE = 0, "-"  # the season of a step outside any directive; an entity or track not named
# Upper bounds, in working hours, of the buckets a completed visit's time open falls in; the last bucket
# holds everything longer.
BUCKETS: tuple[float, ...] = (0.5, 1, 2, 4, 6, 8, 12, 18, 24, 36, 48, 72, 96, 120, 168, 240, 336, 504)
BUCKET_FIGURES = tuple(f"h{index:02d}" for index in range(len(BUCKETS) + 1))
COUNTS = ("opened", "open_now", "completed", "withdrawn", "late", "reworks")
FIGURES = (*COUNTS, "hours", *BUCKET_FIGURES)
KEYS = ("process_model_id", "season_id", "element_id", "entity", "track", "opened_on", "due_on")
NO_DUE = date(9999, 12, 31)  # the `due_on` of steps without a due moment


class StepTally(Base):
    __tablename__ = "step_tally"
    __table_args__ = (Index("ix_step_tally_history", "element_id", "entity"),)

    process_model_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    season_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 0: no directive
    element_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    entity: Mapped[str] = mapped_column(String(100), primary_key=True)
    track: Mapped[str] = mapped_column(String(20), primary_key=True)
    opened_on: Mapped[date] = mapped_column(Date, primary_key=True)  # the local day the steps opened
    # The local day they are due (NO_DUE: none): the steps open past due are those of the days before today,
    # with today's counted from the steps (the only figure that moves with the clock).
    due_on: Mapped[date] = mapped_column(Date, primary_key=True, default=NO_DUE)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    open_now: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn: Mapped[int] = mapped_column(Integer, default=0)
    late: Mapped[int] = mapped_column(Integer, default=0)
    reworks: Mapped[int] = mapped_column(Integer, default=0)
    hours: Mapped[float] = mapped_column(default=0.0)  # working hours open, summed over the completed
    # Completed visits by time open: h00 up to BUCKETS[0] hours, ..., h18 longer than BUCKETS[-1].
    h00: Mapped[int] = mapped_column(Integer, default=0)
    h01: Mapped[int] = mapped_column(Integer, default=0)
    h02: Mapped[int] = mapped_column(Integer, default=0)
    h03: Mapped[int] = mapped_column(Integer, default=0)
    h04: Mapped[int] = mapped_column(Integer, default=0)
    h05: Mapped[int] = mapped_column(Integer, default=0)
    h06: Mapped[int] = mapped_column(Integer, default=0)
    h07: Mapped[int] = mapped_column(Integer, default=0)
    h08: Mapped[int] = mapped_column(Integer, default=0)
    h09: Mapped[int] = mapped_column(Integer, default=0)
    h10: Mapped[int] = mapped_column(Integer, default=0)
    h11: Mapped[int] = mapped_column(Integer, default=0)
    h12: Mapped[int] = mapped_column(Integer, default=0)
    h13: Mapped[int] = mapped_column(Integer, default=0)
    h14: Mapped[int] = mapped_column(Integer, default=0)
    h15: Mapped[int] = mapped_column(Integer, default=0)
    h16: Mapped[int] = mapped_column(Integer, default=0)
    h17: Mapped[int] = mapped_column(Integer, default=0)
    h18: Mapped[int] = mapped_column(Integer, default=0)


def bucket_of(hours: float) -> str:
    return BUCKET_FIGURES[bisect_left(BUCKETS, hours)]


# --- reporting visits (work_items and instances call these) ----------------------------------------------

_VISIT_FIGURES = ("opened", "open_now", "reworks", "completed", "withdrawn")


def _visit_key(instance_id: int, element_id: str, entity: str | None, opened_at: datetime,
               due_at: datetime | None, closed_at: datetime | None = None) -> tuple[Any, ...]:
    """A visit's pending key: its opening and its closing (with `closed_at`) are two keys."""
    return (instance_id, element_id, entity or NONE, opened_at, due_at, closed_at)


def opened(session: Session, instance_id: int, element_id: str, entity: str | None, opened_at: datetime,
           due_at: datetime | None, *, rework: bool) -> None:
    KEPT.add(session, _visit_key(instance_id, element_id, entity, opened_at, due_at),
             opened=1, open_now=1, reworks=int(rework))


def closed(session: Session, instance_id: int, element_id: str, entity: str | None, opened_at: datetime,
           due_at: datetime | None, closed_at: datetime, *, completed: bool) -> None:
    KEPT.add(session, _visit_key(instance_id, element_id, entity, opened_at, due_at, closed_at),
             **{"completed" if completed else "withdrawn": 1})


# --- resolving visits into rows, at the commit ---------------------------------------------------------

# Built at first use: the tables of engine.directives.directives and engine.calendar.seasons are defined by then.
_CONTEXT = None


def _context_query() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        tables = Base.metadata.tables
        instance, directive, season = tables["process_instance"], tables["directive"], tables["season"]
        _CONTEXT = (
            select(instance.c.id, instance.c.model_id, directive.c.season_id, directive.c.track,
                   season.c.calendar_mode, season.c.holidays)
            .select_from(instance.outerjoin(directive, directive.c.instance_id == instance.c.id)
                         .outerjoin(season, season.c.id == directive.c.season_id))
            .where(instance.c.id.in_(bindparam("ids", expanding=True))))
    return _CONTEXT


class ContextRow(NamedTuple):
    """What a visit's row is keyed and timed by: a row of `_context_query`, or the same found in the session."""

    id: int
    model_id: int
    season_id: int | None
    track: str | None
    calendar_mode: str | None
    holidays: list[str] | None


# Where an instance's context is found among the objects this transaction holds, without a statement: the
# directives layer, above this one, registers how (its held directive and that directive's season). None:
# not all of it is held, and the commit's one query reads it.
ContextFinder = Callable[[Session, int], ContextRow | None]
_context_finders: list[ContextFinder] = []


def find_contexts_with(finder: ContextFinder) -> None:
    if finder not in _context_finders:
        _context_finders.append(finder)


def _held_context(session: Session, instance_id: int) -> ContextRow | None:
    for finder in _context_finders:
        found = finder(session, instance_id)
        if found is not None:
            return found
    return None


class _Context:
    def __init__(self, row: ContextRow | Any) -> None:
        self.model_id: int = row.model_id
        self.season_id: int = row.season_id or NO_SEASON
        self.track: str = row.track or NONE
        self.calendar = calendar_of(row.calendar_mode, row.holidays)


def _contexts(session: Session, ids: list[int]) -> dict[int, _Context]:
    """Each instance's context: from the session where it holds it all, the rest in one query."""
    held = {instance_id: _held_context(session, instance_id) for instance_id in ids}
    contexts = {instance_id: _Context(row) for instance_id, row in held.items() if row is not None}
    missing = [instance_id for instance_id, row in held.items() if row is None]
    if missing:
        rows = session.connection().execute(_context_query(), {"ids": missing})
        contexts |= {row.id: _Context(row) for row in rows}
    return contexts


def _resolve(session: Session, visits: kept_counts.Pending) -> kept_counts.Pending:
    contexts = _contexts(session, sorted({key[0] for key in visits}))
    rows: kept_counts.Pending = defaultdict(lambda: defaultdict(float))
    for (instance_id, element_id, entity, opened_at, due_at, closed_at), changes in visits.items():
        context = contexts.get(instance_id)
        if context is not None:
            _add_visit(rows, context, element_id, entity, opened_at, due_at, closed_at, changes)
    return {key: dict(figures) for key, figures in rows.items()}


def _add_visit(rows: kept_counts.Pending, context: _Context, element_id: str, entity: str, opened_at: datetime,
               due_at: datetime | None, closed_at: datetime | None, changes: Mapping[str, float]) -> None:
    """Add a visit's changes (opened and, with `closed_at`, closed) to the row of its key."""
    row = rows[(context.model_id, context.season_id, element_id, entity, context.track, local_day(opened_at),
                local_day(due_at) if due_at is not None else NO_DUE)]
    for name in ("opened", "open_now", "reworks"):
        row[name] += changes.get(name, 0)
    if closed_at is None:
        return
    count = changes.get("completed", 0) + changes.get("withdrawn", 0)
    row["open_now"] -= count
    row["withdrawn"] += changes.get("withdrawn", 0)
    if due_at is not None and closed_at > due_at:
        row["late"] += count
    if changes.get("completed"):
        hours = working_hours_between(context.calendar, opened_at, closed_at)
        row["completed"] += changes["completed"]
        row["hours"] += hours * changes["completed"]
        row[bucket_of(hours)] += changes["completed"]


def local_day(moment: datetime) -> date:
    return moment.astimezone(RIYADH).date()


def local_midnight(day: date) -> datetime:
    """The moment (UTC) a local day begins: the kept figures' days are Riyadh's."""
    return datetime.combine(day, time(), tzinfo=RIYADH).astimezone(UTC)


KEPT = kept_counts.register(kept_counts.KeptCounts(
    "step_figures", StepTally.__table__, KEYS, FIGURES, before_write=_resolve, accepts=_VISIT_FIGURES))


# --- counting from the rows ---------------------------------------------------------------------------

def recount(connection: Connection) -> int:
    """Replace every row by the figures counted from the steps (work_item), ordered per instance and step
    so that a step finished before counts its later visits as rework; return how many rows there are."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE step_tally IN EXCLUSIVE MODE")
    rows: kept_counts.Pending = defaultdict(lambda: defaultdict(float))
    contexts: dict[int, _Context] = {}
    for batch in _visits_in_batches(connection):
        missing = sorted({visit.instance_id for visit in batch} - set(contexts))
        if missing:
            contexts.update((row.id, _Context(row)) for row in connection.execute(_context_query(), {"ids": missing}))
        for visit, rework in _with_rework(batch):
            context = contexts.get(visit.instance_id)
            if context is not None:
                _add_visit(rows, context, visit.element_id, visit.assignee_entity or NONE, visit.created_at,
                           visit.due_at, None if visit.status == "open" else (visit.completed_at or visit.created_at),
                           _RECOUNTED_REWORK[visit.status] if rework else _RECOUNTED[visit.status])
    table = StepTally.__table__
    connection.execute(table.delete())
    values = [{**dict(zip(KEYS, key, strict=True)), **dict.fromkeys(FIGURES, 0), **figures}
              for key, figures in sorted(rows.items())]
    for start in range(0, len(values), 1000):
        connection.execute(table.insert(), values[start:start + 1000])
    return len(values)



def _visits_in_batches(connection: Connection, size: int = 5000) -> Iterator[list[Any]]:
    item = Base.metadata.tables["work_item"]
    query = (select(item.c.id, item.c.instance_id, item.c.element_id, item.c.assignee_entity, item.c.status,
                    item.c.created_at, item.c.due_at, item.c.completed_at)
             .order_by(item.c.instance_id, item.c.id))
    batch: list[Any] = []
    for row in connection.execute(query):
        if len(batch) >= size and batch[-1].instance_id != row.instance_id:  # an instance stays in one batch
            yield batch
            batch = []
        batch.append(row)
    if batch:
        yield batch


def _with_rework(batch: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
    done: set[tuple[int, str]] = set()
    for visit in batch:
        step = (visit.instance_id, visit.element_id)
        yield visit, step in done
        if visit.status == "completed":
            done.add(step)


_RECOUNTED = {"open": {"opened": 1, "open_now": 1}, "completed": {"opened": 1, "open_now": 1, "completed": 1},
              "withdrawn": {"opened": 1, "open_now": 1, "withdrawn": 1}}
_RECOUNTED_REWORK = {status: {**changes, "reworks": 1} for status, changes in _RECOUNTED.items()}
