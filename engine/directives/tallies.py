"""Running totals of each season's directives per entity and track, kept in the transaction of each change.

The dashboard read every directive and every acknowledge step of the season to count them (a sequential
scan of both tables at season scale, tests/test_query_plans.py); it now reads these few rows. Counted:
directives active, completed and completed on time, the hours from launch to end of the completed ones,
the acknowledge steps completed with their hours from creation to completion, and the open escalations by
level (keyed by the escalation's entity). Overdue, which changes with the clock, is still counted from the
rows, through an index that covers that count.

`engine.directives.directives` adds to the totals where a directive is launched, reassigned or ends, where an
acknowledge step is completed and where its escalations are raised or resolved; the additions are written
when the transaction commits (`engine.storage.kept_counts`).
`recount` computes every total from the rows again (the generator, and the test that holds the kept totals
to the recounted ones).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, Float, ForeignKey, Integer, String, case, cast, func, literal_column, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from engine.storage import kept_counts
from engine.storage.db import Base

ACKNOWLEDGE = "acknowledge"  # the element id of a directive model's acknowledge step
NO_ENTITY = "-"  # the entity of an acknowledge step assigned to a role only
ESCALATION_LEVELS = (1, 2, 3)  # open escalations are counted by these levels; higher ones count under the last
FIGURES = ("active", "completed", "on_time", "completion_hours", "acknowledged", "acknowledge_hours",
           *(f"escalations_{level}" for level in ESCALATION_LEVELS))


class Tally(Base):
    __tablename__ = "tally"

    season_id: Mapped[int] = mapped_column(ForeignKey("season.id"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(50), primary_key=True)  # the entity's code
    track: Mapped[str] = mapped_column(String(20), primary_key=True)
    active: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    on_time: Mapped[int] = mapped_column(Integer, default=0)
    completion_hours: Mapped[float] = mapped_column(Float, default=0.0)  # the sum over the completed
    acknowledged: Mapped[int] = mapped_column(Integer, default=0)
    acknowledge_hours: Mapped[float] = mapped_column(Float, default=0.0)  # the sum over the acknowledged
    escalations_1: Mapped[int] = mapped_column(Integer, default=0)  # open, at level 1
    escalations_2: Mapped[int] = mapped_column(Integer, default=0)
    escalations_3: Mapped[int] = mapped_column(Integer, default=0)  # open, at level 3 or higher

    def figures(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in FIGURES}

    def escalations(self) -> dict[int, int]:
        """Open escalations by level (those counted, not the zeros)."""
        counts = {level: getattr(self, escalation_figure(level)) for level in ESCALATION_LEVELS}
        return {level: count for level, count in counts.items() if count}


def escalation_figure(level: int) -> str:
    """The figure an open escalation of `level` counts under."""
    return f"escalations_{min(level, ESCALATION_LEVELS[-1])}"


Key = tuple[int, str, str]  # season id, entity code, track
KEPT = kept_counts.register(kept_counts.KeptCounts("tallies", Tally.__table__, ("season_id", "entity", "track"),
                                                   FIGURES))


def add(session: Session, season_id: int, entity: str, track: str, **changes: float) -> None:
    """Add `changes` (figure -> amount, negative to take away) to one row, made when first needed, when the
    transaction commits."""
    KEPT.add(session, (season_id, entity, track), **changes)


def of_season(session: Session, season_id: int | None) -> list[Tally]:
    """The rows of a season, or of every season when None."""
    query = select(Tally).order_by(Tally.season_id, Tally.entity, Tally.track)
    if season_id is not None:
        query = query.where(Tally.season_id == season_id)
    return list(session.scalars(query))


# --- counting from the rows ---------------------------------------------------------------------------


def recount(connection: Connection) -> int:
    """Replace every row by the totals counted from the directives, their acknowledge steps and escalations;
    return how many rows there are. Writers that commit meanwhile wait for it (PostgreSQL: the table's
    lock, taken before counting; SQLite has one writer), so none of their additions is lost or counted twice.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE tally IN EXCLUSIVE MODE")
    totals: dict[Key, dict[str, float]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
    for key, figures in _counted(connection):
        for name, value in figures.items():
            totals[key][name] += value or 0
    table = Tally.__table__
    connection.execute(table.delete())
    rows = [{"season_id": s, "entity": e, "track": t, **figures} for (s, e, t), figures in sorted(totals.items())]
    if rows:
        connection.execute(table.insert(), rows)
    return len(rows)


def _counted(connection: Connection) -> Any:
    from engine.directives.directives import (  # engine.directives.directives adds to the tallies
        ACTIVE,
        COMPLETED,
        Directive,
    )
    from engine.people.entities import Entity
    from engine.work.escalations import Escalation
    from engine.work.work_items import COMPLETED as STEP_DONE
    from engine.work.work_items import WorkItem

    hours = hours_expression(connection.dialect.name)
    done = Directive.status == COMPLETED
    directives = connection.execute(
        select(Directive.season_id, Entity.code, Directive.track,
               func.sum(case((Directive.status == ACTIVE, 1), else_=0)), func.sum(case((done, 1), else_=0)),
               func.sum(case((done & Directive.completed_on_time.is_(True), 1), else_=0)),
               func.sum(case((done, hours(Directive.launched_at, Directive.ended_at)), else_=0.0)))
        .join(Entity, Entity.id == Directive.responsible_entity_id)
        .group_by(Directive.season_id, Entity.code, Directive.track))
    for season_id, code, track, active, completed, on_time, completion_hours in directives:
        yield (season_id, code, track), {"active": active, "completed": completed, "on_time": on_time,
                                         "completion_hours": completion_hours}
    entity = func.coalesce(WorkItem.assignee_entity, NO_ENTITY)
    acknowledged = connection.execute(
        select(Directive.season_id, entity, Directive.track, func.count(),
               func.sum(hours(WorkItem.created_at, WorkItem.completed_at)))
        .join(Directive, Directive.instance_id == WorkItem.instance_id)
        .where(WorkItem.element_id == ACKNOWLEDGE, WorkItem.status == STEP_DONE)
        .group_by(Directive.season_id, entity, Directive.track))
    for season_id, code, track, count, acknowledge_hours in acknowledged:
        yield (season_id, code, track), {"acknowledged": count, "acknowledge_hours": acknowledge_hours}
    entity = func.coalesce(Escalation.entity, NO_ENTITY)
    escalated = connection.execute(
        select(Directive.season_id, entity, Directive.track, Escalation.level, func.count())
        .join(Directive, Directive.id == Escalation.directive_id).where(Escalation.status == "open")
        .group_by(Directive.season_id, entity, Directive.track, Escalation.level))
    for season_id, code, track, level, count in escalated:
        yield (season_id, code, track), {escalation_figure(level): count}


def hours_expression(dialect: str) -> Any:
    """SQL for the hours between two moments, as a float: SQLite keeps them as text, PostgreSQL as timestamps."""
    def hours(start: Any, end: Any) -> ColumnElement[float]:
        if dialect == "postgresql":  # extract gives a numeric: a float converts faster and adds to a timedelta
            return cast(func.extract("epoch", end - start), Float()) / literal_column("3600.0")
        return (func.julianday(end) - func.julianday(start)) * literal_column("24.0")

    return hours
