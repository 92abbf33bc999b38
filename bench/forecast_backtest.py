"""How good the forecast's miss probabilities are: a backtest on a season played by the demo's people.

    .venv/bin/python bench/forecast_backtest.py [--days 35] [--per-template 8] [--json PATH]

A fresh SQLite database is given the demo (`engine.system.demo.seed`: the demo's entities, directives and fates,
each directive played hour by hour through the engine), replayed with its clock in the dates of the
previous season, 1447 (2026-04-18 to 2026-07-16): it ends on 2026-06-10 after `--days` days. Then every step that had a
due moment is looked at as the forecast would have seen it at a quarter, half and three quarters of its
time to the due moment (when still open then), knowing only the visits completed before that moment:

* the forecast: `engine.insight.forecast.estimate` on the entity's own history of the step (its visits completed
  before then, and those open then, by age), else every entity's, else the entity's share of steps closed
  late before then (the same code as the page, on the same buckets);
* the naive baseline: the entity's overall share of steps closed late before then (every step; the
  season's overall share when the entity has none yet).

Each is scored against what happened (the step missed its due moment, or not) with the Brier score (the
mean squared difference; 0 is perfect, 0.25 is a coin flip at 50 %). A step whose due moment lies after the
end of the played season and is still open is left out: its outcome is not known.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bench.common import record, write_json  # noqa: E402  (a temporary TANSIQ_HOME before engine imports)
from engine.calendar.business_calendar import BusinessCalendar, working_hours_between  # noqa: E402
from engine.foundation import clock  # noqa: E402
from engine.insight import forecast  # noqa: E402
from engine.insight.forecast import History  # noqa: E402
from engine.storage.db import Database  # noqa: E402
from engine.system import demo, migrate  # noqa: E402
from engine.work.step_figures import BUCKET_FIGURES, bucket_of  # noqa: E402
from engine.work.work_items import WorkItem  # noqa: E402

SEASON_END = datetime(2026, 6, 10, 12, tzinfo=UTC)  # in the 1447 season, the one before the demo's
LOOKS = (0.25, 0.5, 0.75)  # when the forecast looks at a step: these shares of its time to the due moment


@dataclass(frozen=True)
class Visit:
    element_id: str
    entity: str
    opened_at: datetime
    due_at: datetime
    closed_at: datetime | None
    completed: bool

    @property
    def missed(self) -> bool:
        return (self.closed_at or SEASON_END) > self.due_at


@dataclass(frozen=True)
class Scored:
    forecast: float
    baseline: float
    missed: bool
    basis: str


def play(url: str, days: int, per_template: int) -> tuple[float, list[Visit]]:
    """The demo played over `days` days ending at SEASON_END: the seconds it took, and its steps with a due
    moment."""
    migrate.upgrade(url)
    db = Database(url)
    began = time.perf_counter()
    clock.set_now(SEASON_END)
    try:
        demo.seed(db, ROOT / "bpmn", days=days, per_template=per_template)
    finally:
        clock.set_now(None)
    with db.reading() as session:
        rows = session.scalars(select(WorkItem).where(WorkItem.due_at.is_not(None))).all()
        visits = [Visit(r.element_id, r.assignee_entity or "-", r.created_at, r.due_at,
                        r.completed_at if r.status != "open" else None, r.status == "completed") for r in rows]
    db.dispose()
    return time.perf_counter() - began, visits


def _buckets(durations: list[float]) -> tuple[int, ...]:
    counts = dict.fromkeys(BUCKET_FIGURES, 0)
    for hours in durations:
        counts[bucket_of(hours)] += 1
    return tuple(counts[name] for name in BUCKET_FIGURES)


def backtest(visits: list[Visit], calendar: BusinessCalendar) -> list[Scored]:
    """Each look at a step, with what the forecast and the baseline said then and what happened."""
    closed = sorted((v for v in visits if v.closed_at), key=lambda v: v.closed_at)
    scored = []
    for visit in visits:
        if visit.closed_at is None and visit.due_at > SEASON_END:
            continue  # still open, due after the season played: its outcome is not known
        for share in LOOKS:
            moment = visit.opened_at + (visit.due_at - visit.opened_at) * share
            if visit.closed_at is not None and visit.closed_at <= moment:
                continue  # closed before the forecast would have looked
            own, everyone = _known_at(visits, visit, moment, calendar)
            baseline = _late_share(closed, moment, visit.entity)
            estimate = forecast.estimate(visit.opened_at, visit.due_at, moment, calendar, own, everyone, baseline)
            scored.append(Scored(estimate.probability if estimate else baseline, baseline, visit.missed,
                                 estimate.basis if estimate else forecast.BASELINE))
    return scored


def _known_at(visits: list[Visit], visit: Visit, moment: datetime,
              calendar: BusinessCalendar) -> tuple[History, History]:
    """What the kept figures held at `moment` about the visit's step: by its entity, and by every entity."""
    done: dict[str, list[float]] = defaultdict(list)
    still: dict[str, list[float]] = defaultdict(list)
    for earlier in visits:
        if earlier.element_id != visit.element_id or earlier.opened_at >= moment:
            continue
        if earlier.completed and earlier.closed_at < moment:
            done[earlier.entity].append(working_hours_between(calendar, earlier.opened_at, earlier.closed_at))
        elif earlier.closed_at is None or earlier.closed_at >= moment:
            still[earlier.entity].append(working_hours_between(calendar, earlier.opened_at, moment))
    own = History(_buckets(done[visit.entity]), _buckets(still[visit.entity]))
    everyone = History(_buckets([h for hours in done.values() for h in hours]),
                       _buckets([h for hours in still.values() for h in hours]))
    return own, everyone


def _late_share(closed: list[Visit], moment: datetime, entity: str) -> float:
    """The entity's share of steps closed late before `moment` (the season's share when it has none)."""
    before = [v for v in closed if v.closed_at < moment]
    mine = [v for v in before if v.entity == entity]
    pool = mine or before
    return sum(v.missed for v in pool) / len(pool) if pool else 0.5


def reliability(scored: list[Scored], pick: Any) -> list[tuple[float, float, int]]:
    """Per fifth of the probability scale: (its lower bound, the share that missed, how many looks)."""
    bins: dict[int, list[bool]] = defaultdict(list)
    for item in scored:
        bins[min(4, int(pick(item) * 5))].append(item.missed)
    return [(index / 5, sum(found) / len(found), len(found)) for index, found in sorted(bins.items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--per-template", type=int, default=8)
    parser.add_argument("--json", help="write the records here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tansiq-backtest-") as folder:
        seconds, visits = play(f"sqlite:///{folder}/tansiq.db", args.days, args.per_template)
    scored = backtest(visits, BusinessCalendar())
    model = forecast.brier((s.forecast, s.missed) for s in scored)
    naive = forecast.brier((s.baseline, s.missed) for s in scored)
    bases = {basis: sum(1 for s in scored if s.basis == basis) for basis in forecast.BASES}
    for name, pick in (("forecast", lambda s: s.forecast), ("baseline", lambda s: s.baseline)):
        bins = reliability(scored, pick)
        print(f"{name} reliability (predicted -> observed, looks): " + "; ".join(
            f"{low:.1f}-{low + 0.2:.1f} -> {observed:.2f} ({count})" for low, observed, count in bins), file=sys.stderr)
    print(f"played {args.days} days in {seconds:.0f} s; {len(scored):,} looks at {len(visits):,} steps "
          f"({sum(s.missed for s in scored) / len(scored):.1%} missed); bases {bases}", file=sys.stderr)
    records = [
        record("forecast Brier score, backtest (lower is better)", "sqlite", [model], "brier"),
        record("naive baseline Brier score (entity's share closed late)", "sqlite", [naive], "brier"),
        record("Brier skill score against the baseline (1 - forecast/baseline)", "sqlite", [1 - model / naive],
               "skill"),
        record("looks scored in the backtest", "sqlite", [len(scored)], "looks"),
    ]
    write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
