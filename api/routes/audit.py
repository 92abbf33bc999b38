"""The audit trail: events about one subject the caller may see; verification of the whole chain."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from api.deps import Caller, CurrentUser, State, requires
from api.problems import documented
from api.schemas.common import Page
from api.schemas.directives import AuditEventOut
from api.schemas.health import VerificationOut
from api.views import audit_out
from engine.directives import access, directives
from engine.directives.directives import Directive
from engine.foundation.errors import N_, Forbidden, InvalidInput, NotFound
from engine.storage import audit
from engine.storage.audit import AuditEvent
from engine.work import instances

router = APIRouter(tags=["audit"])
_SUBJECT = re.compile(r"^(directive|instance):([1-9][0-9]{0,9})$")


def _subjects(session, caller: CurrentUser, subject: str | None) -> list[str] | None:
    """The subjects the query may read; None means all (administrators without a subject)."""
    if subject is None:
        if access.allowed(caller, "audit.read_any"):
            return None
        raise InvalidInput("name a subject, e.g. subject=directive:42")
    match = _SUBJECT.match(subject)
    if match is None:
        if access.allowed(caller, "audit.read_any"):
            return [subject]
        raise Forbidden(N_("only administrators read subjects other than directive:N or instance:N"))
    kind, number = match.group(1), int(match.group(2))
    if number > 2_147_483_647:
        missing = N_("no directive %(directive)s") if kind == "directive" else N_("no process instance %(instance)s")
        raise NotFound(missing, params={"directive": str(number), "instance": str(number)})
    if kind == "directive":
        directive = access.visible_directive(session, caller, number)
        found = [directives.subject(directive.id)]
        if directive.instance_id is not None:
            found.append(instances.subject(directive.instance_id))
        return found
    directive = session.scalar(select(Directive).where(Directive.instance_id == number))
    if directive is not None:
        if not access.can_see_directive(session, caller, directive):
            raise NotFound(N_("no process instance %(instance)s"), params={"instance": str(number)})
    elif not access.reads_all(caller):
        raise NotFound(N_("no process instance %(instance)s"), params={"instance": str(number)})
    return [instances.subject(number)]


@router.get("/audit", operation_id="listAuditEvents",
            response_model=Page[AuditEventOut], responses=documented(401, 403, 404, 422, 503))
def events(
    state: State,
    caller: Annotated[CurrentUser, requires("audit.read")],
    subject: Annotated[str | None, Query(max_length=120, description="directive:N (with its process) or "
                                         "instance:N; administrators may name any subject or none.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[AuditEventOut]:
    """Audit events, oldest first."""
    with state.db.reading() as session:
        subjects = _subjects(session, caller, subject)
        query = select(AuditEvent)
        if subjects is not None:
            query = query.where(AuditEvent.subject.in_(subjects))
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = session.scalars(query.order_by(AuditEvent.id).limit(limit).offset(offset)).all()
        return Page(items=[audit_out(e) for e in rows], total=total, limit=limit, offset=offset)


@router.get("/audit/verify", operation_id="verifyAuditChain",
            response_model=VerificationOut, dependencies=[requires("audit.verify")],
            responses=documented(401, 403, 503))
def verify(state: State, caller: Caller) -> VerificationOut:
    """Walk the whole hash chain; `ok` is false and names the first broken event if it does not hold."""
    with state.db.reading() as session:
        result = audit.verify(session)
    return VerificationOut(ok=result.ok, checked=result.checked, first_broken_id=result.first_broken_id,
                           problem=result.problem)
