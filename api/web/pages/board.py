"""The supervisor's escalation board: open escalations by level, entity, track and age, with the actions
extend, reassign, escalate and close (with a note), and comment; one at a time or in bulk."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.web import i18n
from api.web.core import WebRoute, is_htmx, redirect, render
from api.web.forms import deadline_from_form
from api.web.session import form_of, require_user
from engine.directives import access, supervision
from engine.directives.directives import TRACKS, Directive
from engine.foundation import clock
from engine.foundation.errors import N_, Forbidden, InvalidInput, NotFound, TansiqError
from engine.people import entities
from engine.work.escalations import Escalation

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 50
AGES = (1, 6, 24, 72)
ACTIONS = ("extend", "reassign", "escalate", "close", "comment")


SORTS = supervision.BOARD_SORTS
FILTERS = ("status", "level", "entity", "track", "age", "q", "sort", "order")


def _filters(source: Any) -> dict[str, str]:
    """The board's filters from a query string (or a form that carries them), only known values kept."""
    raw = {name: str(source.get(name) or "").strip()[:200] for name in FILTERS}
    allowed = {"status": ("open", "resolved", "all"), "level": tuple(str(n) for n in range(1, 6)),
               "track": TRACKS, "age": tuple(str(a) for a in AGES), "sort": SORTS, "order": ("asc", "desc")}
    return {k: v for k, v in raw.items() if v and len(v) <= 100 and (k not in allowed or v in allowed[k])}


def _chosen(filters: dict[str, str]) -> supervision.BoardFilters:
    return supervision.BoardFilters(
        status=filters.get("status", "open"), level=int(filters["level"]) if "level" in filters else None,
        entity=filters.get("entity"), track=filters.get("track"),
        min_age_hours=float(filters["age"]) if "age" in filters else None, text=filters.get("q"),
        sort=filters.get("sort", "level"), descending={"asc": False, "desc": True}.get(filters.get("order", "")))


def _query(filters: dict[str, str], **extra: Any) -> str:
    return urlencode({**filters, **{k: v for k, v in extra.items() if v is not None}})


@router.get("/escalations")
def board(request: Request, page: int = 1) -> Response:
    user = require_user(request)
    access.require(user, "escalation.read")
    filters = _filters(request.query_params)
    now = clock.now()
    page = max(1, min(page, 10_000))
    with request.app.state.tansiq.db.reading() as session:
        rows, total = supervision.search_board(session, user, _chosen(filters), PAGE_SIZE, (page - 1) * PAGE_SIZE,
                                               now)
        by_level = dict(session.execute(
            access.visible_escalations(select(Escalation.level, func.count()).where(Escalation.status == "open")
                                       .group_by(Escalation.level), user)).all())
        entity_list = entities.list_entities(session)
        names = {e.code: e for e in entity_list}
        allowed = {e.id: {a for a in ACTIONS if access.can_resolve_escalation(user, e, a)} for e, _ in rows}
        notice = _resolution_notice(session, user, request.query_params.get("done"))
    context = {"rows": rows, "total": total, "filters": filters, "now": now, "page": page,
               "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE), "by_level": by_level,
               "entities": entity_list, "names": names, "tracks": TRACKS, "ages": AGES, "allowed": allowed,
               "may_resolve": access.allowed(user, "escalation.resolve"),
               "may_comment": access.allowed(user, "escalation.comment"), "notice": notice,
               "query_without_page": _query(filters), "max_selected": supervision.MAX_SELECTED,
               "query_of_this_page": _query(filters, page=page if page > 1 else None),
               "hijri_today": _hijri_today(), "hijri_months": i18n.HIJRI_MONTHS,
               "ages_of": {e.id: (now - e.raised_at).total_seconds() / 3600 for e, _ in rows}}
    return render(request, "partials/board_results.html" if is_htmx(request) else "board.html", context)


def _resolution_notice(session: Session, user: Any, done: str | None) -> dict[str, Any] | None:
    """What the action just taken on escalation `done` did, read back from the stored escalation and directive
    (nothing from the query string is shown but the id it names)."""
    if not (done or "").isdigit() or not 0 < int(done or "0") <= 2_147_483_647:
        return None
    escalation = session.get(Escalation, int(done or "0"))
    if escalation is None or escalation.directive_id is None or not access.can_see_escalation(session, user,
                                                                                                 escalation):
        return None
    directive = session.get(Directive, escalation.directive_id)
    return {"escalation": escalation, "directive": directive,
            "action": escalation.resolved_action if escalation.status == "resolved" else "comment"}


def _hijri_today():
    from engine.calendar.business_calendar import gregorian_to_hijri

    return gregorian_to_hijri(i18n.local(clock.now()).date())


def _fields(form: Any, action: str, prefix: str) -> dict[str, Any]:
    if action not in ACTIONS:
        raise InvalidInput(N_("choose an action"))
    if action == "extend":
        return {"new_deadline": deadline_from_form(form, prefix)}
    if action == "reassign":
        entity = str(form.get("entity") or "")
        if not entity:
            raise InvalidInput(N_("choose the entity to reassign to"))
        return {"entity": entity}
    if action == "close":
        outcome = str(form.get("outcome") or "")
        if outcome not in ("done", "cancelled"):
            raise InvalidInput(N_("closing needs an outcome: done or cancelled"))
        return {"outcome": outcome}
    if action == "escalate" and str(form.get("level") or "").isdigit():
        return {"level": int(str(form.get("level")))}
    return {}


def _permitted(session: Session, user: Any, escalation_id: int, action: str) -> Escalation:
    escalation = session.get(Escalation, escalation_id) if 0 < escalation_id <= 2_147_483_647 else None
    if escalation is None or not access.can_see_escalation(session, user, escalation):
        raise NotFound(N_("no escalation %(escalation)s"), params={"escalation": str(escalation_id)})
    if not access.can_resolve_escalation(user, escalation, action):
        raise Forbidden(N_("your role may not do this to this escalation"))
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
    return redirect(f"{back}{'&' if '?' in back else '?'}done={escalation_id}")


CONFIRM_KEPT = ("csrf_token", "confirmed")  # form fields the confirmation page does not carry over as they came


@router.post("/escalations/bulk")
async def resolve_many(request: Request) -> Response:
    user = require_user(request)
    access.require(user, "escalation.read")
    form = await form_of(request)
    action = str(form.get("action") or "")
    note = str(form.get("note") or "")
    fields = _fields(form, action, "deadline_bulk")
    every_matching = form.get("scope") == "matching"
    with request.app.state.tansiq.db.transaction() as session:
        ids = _matching(session, user, form) if every_matching else _selected(form)
        if every_matching and str(form.get("confirmed") or "") != str(len(ids)):
            # First ask (or ask again: what matches changed since the count the user confirmed).
            kept = [(k, v) for k, v in form.multi_items() if k not in CONFIRM_KEPT and isinstance(v, str)]
            return render(request, "bulk_confirm.html", {"count": len(ids), "action": action, "kept": kept,
                                                         "back": _back(form)})
        outcomes = _apply(session, user, ids, action, note, fields)
        rows = _with_directives(session, outcomes)
    succeeded = sum(1 for o in outcomes if o.ok)
    context = {"rows": rows, "action": action, "back": _back(form), "succeeded": succeeded,
               "failed": len(outcomes) - succeeded}
    return render(request, "bulk_result.html", context, status=200 if succeeded else 409)


def _selected(form: Any) -> list[int]:
    ids = list(dict.fromkeys(int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit()
                             and 0 < int(v) <= 2_147_483_647))
    if not ids:
        raise InvalidInput(N_("select at least one escalation"))
    if len(ids) > supervision.MAX_SELECTED:
        raise InvalidInput(N_("select at most %(limit)s escalations at once"),
                           params={"limit": supervision.MAX_SELECTED})
    return ids


def _matching(session: Session, user: Any, form: Any) -> list[int]:
    """Every escalation that matches the filters the board showed (carried in the form as its query string)."""
    filters = _filters(dict(parse_qsl(str(form.get("filters") or ""))))
    ids = supervision.matching_ids(session, user, _chosen(filters))
    if not ids:
        raise InvalidInput(N_("no escalation matches these filters"))
    return ids


def _apply(session: Session, user: Any, ids: list[int], action: str, note: str,
           fields: dict[str, Any]) -> list[supervision.BulkOutcome]:
    """Each escalation the user may act on gets the action; each other one fails with its reason."""
    refused: dict[int, supervision.BulkOutcome] = {}
    permitted = []
    for escalation_id in ids:
        try:
            _permitted(session, user, escalation_id, action)
            permitted.append(escalation_id)
        except TansiqError as exc:
            refused[escalation_id] = supervision.BulkOutcome.refused(escalation_id, exc)
    done = {o.escalation_id: o for o in supervision.resolve_many(session, permitted, action, user.username, note,
                                                                 **fields)}
    return [refused.get(i) or done[i] for i in ids]


def _with_directives(session: Session, outcomes: list[supervision.BulkOutcome]
                     ) -> list[tuple[supervision.BulkOutcome, Directive | None]]:
    ids = [o.escalation_id for o in outcomes]
    found = dict(session.execute(select(Escalation.id, Directive).join(Directive, Directive.id ==
                                                                       Escalation.directive_id)
                                 .where(Escalation.id.in_(ids))).all()) if ids else {}
    return [(o, found.get(o.escalation_id)) for o in outcomes]
