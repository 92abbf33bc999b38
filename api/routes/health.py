"""Liveness of the service and its database, and how far behind the timer worker is."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import State
from api.problems import documented, problem_response
from api.schemas.health import HealthOut
from engine import clock, instances
from engine.instances import ProcessInstance

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, responses=documented(503))
def healthz(state: State):
    """200 when the database answers; `timer_lag_seconds` is how overdue the oldest due timer is."""
    try:
        with state.db.reading() as session:
            session.execute(text("SELECT 1"))
            oldest = session.scalar(select(func.min(ProcessInstance.next_timer_at))
                                    .where(ProcessInstance.status == instances.RUNNING))
    except SQLAlchemyError:
        return problem_response("service-unavailable", "the database cannot be reached", instance="/healthz",
                                headers={"Retry-After": "5"})
    lag = 0.0
    if oldest is not None:
        lag = max(0.0, (clock.now() - clock.as_utc(oldest)).total_seconds())
    return HealthOut(database="ok", timer_lag_seconds=round(lag, 3))
