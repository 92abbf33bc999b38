"""The supervisor's escalation board: open escalations by level, entity, track and age, with the actions
extend, reassign, escalate and close (with a note), and comment; one at a time or in bulk."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.web import i18n
from api.web.core import WebRoute, is_htmx, redirect, render
from api.web.forms import deadline_from_form
from api.web.session import form_of, require_user
from engine import access, audit, clock, entities, supervision
from engine.directives import TRACKS, Directive
from engine.errors import InvalidInput, NotFound, TansiqError
from engine.escalations import Escalation

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 50
AGES = (1, 6, 24, 72)
ACTIONS = ("extend", "reassign", "escalate", "close", "comment")


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    out: dict[str, str] = {}
    if q.get("status") in ("open", "resolved", "all"):
        out["status"] = q["status"]
    if (q.get("level") or "").isdigit() and 1 <= int(q["level"]) <= 5:
        out["level"] = q["level"]
    if q.get("entity") and len(q["entity"]) <= 100:
        out["entity"] = q["entity"]
    if q.get("track") in TRACKS:
        out["track"] = q["track"]
    if (q.get("age") or "").isdigit() and int(q["age"]) in AGES:
        out["age"] = q["age"]
    return out


@router.get("/escalations")
def board(request: Request, page: int = 1) -> Response:
    user = require_user(request)
    access.require(user, "escalation.read")
    filters = _filters(request)
    now = clock.now()
    page = max(1, min(page, 10_000))
    conditions = _conditions(filters, now)
    query = access.visible_escalations(
        select(Escalation, Directive).outerjoin(Directive, Directive.id == Escalation.directive_id), user)
    # Counted on the escalation table (joined to directives only to filter by track): the outer join would make
    # PostgreSQL read every matching row instead of the index.
    counted = select(func.count()).select_from(Escalation)
    if "track" in filters:
        counted = counted.join(Directive, Directive.id == Escalation.directive_id)
    counted = access.visible_escalations(counted, user)
    with request.app.state.tansiq.db.reading() as session:
        total = session.scalar(counted.where(*conditions))
        by_level = dict(session.execute(
            access.visible_escalations(select(Escalation.level, func.count()).where(Escalation.status == "open")
                                       .group_by(Escalation.level), user)).all())
        rows = session.execute(query.where(*conditions)
                               .order_by(Escalation.level.desc(), Escalation.raised_at, Escalation.id)
                               .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
        entity_list = entities.list_entities(session)
        names = {e.code: e for e in entity_list}
        allowed = {e.id: {a for a in ACTIONS if access.can_resolve_escalation(user, e, a)} for e, _ in rows}
    context = {"rows": rows, "total": total, "filters": filters, "now": now, "page": page,
               "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE), "by_level": by_level,
               "entities": entity_list, "names": names, "tracks": TRACKS, "ages": AGES, "allowed": allowed,
               "may_resolve": access.allowed(user, "escalation.resolve"),
               "may_comment": access.allowed(user, "escalation.comment"),
               "hijri_today": _hijri_today(), "hijri_months": i18n.HIJRI_MONTHS,
               "ages_of": {e.id: (now - e.raised_at).total_seconds() / 3600 for e, _ in rows}}
    return render(request, "partials/board_results.html" if is_htmx(request) else "board.html", context)


def _conditions(filters: dict[str, str], now: Any) -> list[Any]:
    status = filters.get("status", "open")
    conditions: list[Any] = [] if status == "all" else [Escalation.status == status]
    if "level" in filters:
        conditions.append(Escalation.level == int(filters["level"]))
    if "entity" in filters:
        conditions.append(Escalation.entity == filters["entity"])
    if "track" in filters:
        conditions.append(Directive.track == filters["track"])
    if "age" in filters:
        conditions.append(Escalation.raised_at <= now - timedelta(hours=int(filters["age"])))
    return conditions


def _hijri_today():
    from engine.business_calendar import gregorian_to_hijri

    return gregorian_to_hijri(i18n.local(clock.now()).date())


def _fields(form: Any, action: str, prefix: str) -> dict[str, Any]:
    if action not in ACTIONS:
        raise InvalidInput("choose an action")
    if action == "extend":
        return {"new_deadline": deadline_from_form(form, prefix)}
    if action == "reassign":
        entity = str(form.get("entity") or "")
        if not entity:
            raise InvalidInput("choose the entity to reassign to")
        return {"entity": entity}
    if action == "close":
        outcome = str(form.get("outcome") or "")
        if outcome not in ("done", "cancelled"):
            raise InvalidInput("closing needs an outcome: done or cancelled")
        return {"outcome": outcome}
    if action == "escalate" and str(form.get("level") or "").isdigit():
        return {"level": int(str(form.get("level")))}
    return {}


def _permitted(session: Session, user: Any, escalation_id: int, action: str) -> Escalation:
    escalation = session.get(Escalation, escalation_id) if 0 < escalation_id <= 2_147_483_647 else None
    if escalation is None or not access.can_see_escalation(session, user, escalation):
        raise NotFound(f"no escalation {escalation_id}")
    if not access.can_resolve_escalation(user, escalation, action):
        raise access.Forbidden(f"a {user.role} may not {action} this escalation")
    return escalation


def _back(form: Any) -> str:
    back = str(form.get("back") or "")
    return back if back.startswith("/escalations") and "//" not in back else "/escalations"


@router.post("/escalations/{escalation_id}/resolve")
async def resolve(request: Request, escalation_id: int) -> Response:
    user = require_user(request)
    form = await form_of(request)
    action = str(form.get("action") or "")
    note = str(form.get("note") or "")
    fields = _fields(form, action, f"deadline_{escalation_id}")
    with request.app.state.tansiq.db.transaction() as session:
        _permitted(session, user, escalation_id, action)
        supervision.resolve(session, escalation_id, action, user.username, note, **fields)
    back = _back(form)
    return redirect(f"{back}{'&' if '?' in back else '?'}msg=resolved")


@router.post("/escalations/bulk")
async def resolve_many(request: Request) -> Response:
    user = require_user(request)
    access.require(user, "escalation.read")
    form = await form_of(request)
    action = str(form.get("action") or "")
    note = str(form.get("note") or "")
    ids = list(dict.fromkeys(int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit()))[:200]
    if not ids:
        raise InvalidInput("select at least one escalation")
    fields = _fields(form, action, "deadline_bulk")
    outcomes: list[tuple[int, bool, str]] = []
    with request.app.state.tansiq.db.transaction() as session:
        for escalation_id in ids:
            mark = audit.mark(session)
            try:
                _permitted(session, user, escalation_id, action)
                with session.begin_nested():
                    supervision.resolve(session, escalation_id, action, user.username, note, **fields)
                outcomes.append((escalation_id, True, ""))
            except TansiqError as exc:
                audit.discard_since(session, mark)
                outcomes.append((escalation_id, False, exc.message))
    failed = [o for o in outcomes if not o[1]]
    if failed:
        return render(request, "bulk_result.html", {"outcomes": outcomes, "action": action, "back": _back(form)},
                      status=200 if len(failed) < len(ids) else 409)
    back = _back(form)
    return redirect(f"{back}{'&' if '?' in back else '?'}msg=bulk")
