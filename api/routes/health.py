"""Liveness and readiness of the service, and how far behind the timer worker is.

- `/livez`: the process answers (no database): a supervisor restarts a process that stops answering it.
- `/readyz`: the database answers, its schema is at this code's Alembic head, and the timer lag is under
  `TANSIQ_READY_MAX_TIMER_LAG_SECONDS`: a load balancer sends traffic only to a process that says so.
- `/healthz`: the database answers, with the timer lag (kept for existing checks and tests).
None needs a sign-in; the nginx site (deploy/nginx) passes /livez and /readyz on for load balancers and keeps
/metrics inside.
"""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import State
from api.problems import BASE, KINDS, MEDIA_TYPE, documented, problem_response
from api.schemas.health import CheckOut, HealthOut, LiveOut, ReadyOut
from engine.foundation import clock
from engine.foundation.version import installed_version
from engine.system import migrate
from engine.work.timers import timer_lag_seconds

router = APIRouter(tags=["health"])
RETRY_AFTER_SECONDS = "5"
UNREACHABLE = "the database cannot be reached"


@cache
def head_revision() -> str | None:
    """The newest migration this code knows: read from the migration scripts once per process."""
    return migrate.head_revision()


@router.get("/healthz", operation_id="getHealth", response_model=HealthOut, responses=documented(503))
def healthz(state: State):
    """200 when the database answers; `timer_lag_seconds` is how overdue the oldest due timer is."""
    try:
        with state.db.reading() as session:
            session.execute(text("SELECT 1"))
            lag = timer_lag_seconds(session, clock.now())
    except SQLAlchemyError:
        return problem_response("service-unavailable", UNREACHABLE, instance="/healthz",
                                headers={"Retry-After": RETRY_AFTER_SECONDS})
    return HealthOut(database="ok", timer_lag_seconds=round(lag, 3))


@router.get("/livez", operation_id="getLiveness", response_model=LiveOut)
async def livez() -> LiveOut:
    """200 while the process answers; touches nothing else."""
    return LiveOut(version=installed_version())


def _schema_check(state: State) -> CheckOut:
    """The database's Alembic revision against this code's head (a node started before `tansiq db upgrade`
    ran, or an old node after it, is not ready). Its own connection: a missing table aborts a transaction."""
    head = head_revision()
    try:
        with state.db.single_read() as connection:
            found = list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except SQLAlchemyError:
        return CheckOut(ok=False, detail=f"no schema version in the database; head is {head}")
    if found == [head]:
        return CheckOut(ok=True, detail="at head", value=head)
    current = ", ".join(found) or "none"
    return CheckOut(ok=False, detail=f"the database is at {current}, this code expects {head}", value=current)


def _lag_check(state: State, lag: float) -> CheckOut:
    limit = state.settings.ready_max_timer_lag_seconds
    if lag <= limit:
        return CheckOut(ok=True, detail=f"under {limit:g} s", value=round(lag, 3))
    return CheckOut(ok=False, detail=f"the oldest due timer is {lag:.0f} s late (limit {limit:g} s)",
                    value=round(lag, 3))


def readiness(state: State) -> dict[str, CheckOut]:
    """Each check's result; the later ones are not run when the database does not answer."""
    try:
        with state.db.reading() as session:
            session.execute(text("SELECT 1"))
            lag = timer_lag_seconds(session, clock.now())
    except SQLAlchemyError:
        skipped = CheckOut(ok=False, detail="not checked: " + UNREACHABLE)
        return {"database": CheckOut(ok=False, detail=UNREACHABLE), "schema": skipped, "timer_lag": skipped}
    return {"database": CheckOut(ok=True, detail="answers"), "schema": _schema_check(state),
            "timer_lag": _lag_check(state, lag)}


@router.get("/readyz", operation_id="getReadiness", response_model=ReadyOut, responses=documented(503))
def readyz(state: State):
    """200 with each check's result when all pass; else 503 problem details naming the failing checks
    (the results in `checks`), with Retry-After."""
    checks = readiness(state)
    failing = [name for name, check in checks.items() if not check.ok]
    if not failing:
        return ReadyOut(version=installed_version(), checks=checks)
    status, title = KINDS["service-unavailable"]
    body = {"type": BASE + "service-unavailable", "title": title, "status": status, "instance": "/readyz",
            "detail": "not ready: " + "; ".join(f"{name}: {checks[name].detail}" for name in failing),
            "failing": failing, "checks": {name: check.model_dump() for name, check in checks.items()}}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE,
                        headers={"Retry-After": RETRY_AFTER_SECONDS})
