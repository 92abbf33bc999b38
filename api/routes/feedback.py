"""Pilgrim feedback: the public form (no sign-in: rate-limited per client address, spam-resistant),
intake from signed-in systems, the unit's list with filters and figures, triage, raising a directive
from feedback items; and the recurring obstacles of a season (from directive and feedback tags)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.orm import Session

from api.deps import Caller, CurrentUser, State, requires
from api.problems import ApiProblem, documented, retry_after
from api.schemas.common import MAX_ID, Id, Page
from api.schemas.directives import DirectiveOut
from api.schemas.feedback import (
    CountAndMean,
    DirectiveSuggestion,
    FeedbackCreate,
    FeedbackFiguresOut,
    FeedbackOut,
    FeedbackUpdate,
    NamedChoice,
    ObstacleOut,
    ObstaclesOut,
    PublicFeedbackAccepted,
    PublicFeedbackForm,
    PublicFeedbackIn,
    RaiseDirective,
)
from api.schemas.meetings import EntityName
from api.security import load_secret
from api.views import directive_out, directive_summary, season_years
from engine import feedback
from engine.feedback import FeedbackFilters, FeedbackItem, NewFeedback, PublicSubmission
from engine.foundation.errors import N_, Forbidden
from engine.insight import obstacles
from engine.people.roles import role_word

router = APIRouter(tags=["feedback"])
FeedbackId = Annotated[int, Path(ge=1, le=MAX_ID)]
LIMITS = feedback.PublicLimits()
HONEYPOT = "website"


def public_form_key(request: Request) -> bytes:
    """The key of the public form (its time tokens and rate-limit counters), derived from the server's secret
    and kept apart from the token key. The API and the web page use this one key."""
    key = getattr(request.app.state, "tansiq_feedback_key", None)
    if key is None:
        secret = load_secret(request.app.state.tansiq.settings)
        key = hmac.new(secret, b"tansiq/public-feedback", hashlib.sha256).digest()
        request.app.state.tansiq_feedback_key = key
    return key


def item_out(item: FeedbackItem, years: dict[int, int], linked: list | None = None) -> FeedbackOut:
    entity = item.entity
    return FeedbackOut(
        id=item.id, season=years.get(item.season_id, 0), received_at=item.received_at, channel=item.channel,
        service=item.service,
        entity=EntityName(code=entity.code, name_ar=entity.name_ar, name_en=entity.name_en) if entity else None,
        rating=item.rating, language=item.language, text=item.text, text_ar=item.text_ar, text_en=item.text_en,
        status=item.status, note=item.note, tags=[t.tag for t in item.tags], submitted_by=item.submitted_by,
        source_ref=item.source_ref, updated_by=item.updated_by, updated_at=item.updated_at,
        directives=[directive_summary(d) for d in (linked or [])],
    )


def _one(session: Session, item: FeedbackItem) -> FeedbackOut:
    return item_out(item, season_years(session), feedback.linked_directives(session, [item.id])[item.id])


# --- the public form ------------------------------------------------------------------------------------

@router.get("/public/feedback/form", operation_id="getPublicFeedbackForm",
            response_model=PublicFeedbackForm, responses=documented(503))
def public_form(request: Request, state: State) -> PublicFeedbackForm:
    """No sign-in. What the public form needs: a signed token to send back (not sooner than `min_seconds`),
    the services and entities, and the name of the honeypot field to render hidden and leave empty."""
    with state.db.reading() as session:
        form = feedback.public_form(session, public_form_key(request))
    return PublicFeedbackForm(token=form["token"], honeypot_field=HONEYPOT, min_seconds=LIMITS.min_seconds,
                              max_text=LIMITS.max_text, services=[NamedChoice(**s) for s in form["services"]],
                              entities=[NamedChoice(**e) for e in form["entities"]])


@router.post("/public/feedback", operation_id="submitPublicFeedback",
             response_model=PublicFeedbackAccepted, status_code=202,
             responses=documented(409, 422, 429, 503))
def public_submit(body: PublicFeedbackIn, request: Request, state: State) -> PublicFeedbackAccepted:
    """No sign-in. A pilgrim's feedback from the public form: rate-limited per client address (429 with
    Retry-After), refused with 422 naming the fields when the form is forged, too quick, expired or used
    already, or the text is too long, has links or direction-override characters."""
    address = request.client.host if request.client else "unknown"
    submission = PublicSubmission(token=body.token, service=body.service, rating=body.rating,  # type: ignore[arg-type]
                                  text=body.text, entity=body.entity, website=body.website)
    try:
        feedback.public_intake(state.db, public_form_key(request), address, submission, LIMITS)
    except feedback.RateLimited as exc:
        raise ApiProblem("too-many-requests", exc.message, headers=retry_after(exc.retry_after)) from None
    return PublicFeedbackAccepted()


# --- the unit's list ----------------------------------------------------------------------------------------

@router.post("/feedback", operation_id="recordFeedback", response_model=FeedbackOut, status_code=201,
             responses=documented(401, 403, 404, 409, 422, 503))
def record(body: FeedbackCreate, state: State, caller: Caller) -> FeedbackOut:
    """Record feedback from a signed-in system or member of staff (administrators, the secretariat,
    follow-up officers)."""
    if not feedback.can_intake(caller):
        raise Forbidden(N_("%(role)s may not record feedback"), params={"role": role_word(caller.role)})
    new = NewFeedback(service=body.service, rating=body.rating, text=body.text, text_ar=body.text_ar,
                      text_en=body.text_en, language=body.language, entity=body.entity, tags=list(body.tags),
                      received_at=body.received_at, source_ref=body.source_ref)
    with state.db.transaction() as session:
        return _one(session, feedback.record(session, new, caller.username))


Sort = Literal["received", "-received", "rating", "-rating"]


def _filters(season: int | None, service: str | None, entity: str | None, status: str | None, channel: str | None,
             rating_min: int | None, rating_max: int | None, tag: str | None, q: str | None,
             received_from: datetime | None, received_to: datetime | None, raised: bool | None) -> FeedbackFilters:
    return FeedbackFilters(season=season, service=service, entity=entity, status=status, channel=channel,
                           rating_min=rating_min, rating_max=rating_max, tag=tag, text=q,
                           received_from=received_from, received_to=received_to, raised=raised)


Service = Literal["housing", "transport", "reception", "departure", "other"]
FeedbackStatus = Literal["new", "reviewed", "raised", "dismissed"]


@router.get("/feedback", operation_id="listFeedback",
            response_model=Page[FeedbackOut], responses=documented(401, 403, 422, 503))
def search(
    state: State,
    caller: Caller,
    season: Annotated[int | None, Query(ge=1343, le=1500, description="Hijri year.")] = None,
    service: Service | None = None,
    entity: Annotated[str | None, Query(max_length=50, description="Entity code; `none` for no entity.")] = None,
    status: FeedbackStatus | None = None,
    channel: Literal["public", "api"] | None = None,
    rating_min: Annotated[int | None, Query(ge=1, le=5)] = None,
    rating_max: Annotated[int | None, Query(ge=1, le=5)] = None,
    tag: Annotated[str | None, Query(max_length=60)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the feedback.")] = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    raised: bool | None = None,
    sort: Sort = "-received",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[FeedbackOut]:
    """The feedback the caller may see (entity users: about their entity only), filtered, sorted and paged."""
    _require_read(caller)
    filters = _filters(season, service, entity, status, channel, rating_min, rating_max, tag, q, received_from,
                       received_to, raised)
    with state.db.reading() as session:
        rows, total = feedback.search(session, caller, filters, sort=sort, limit=limit, offset=offset)
        years = season_years(session)
        linked = feedback.linked_directives(session, [r.id for r in rows])
        return Page(items=[item_out(r, years, linked[r.id]) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/feedback/figures", operation_id="getFeedbackFigures",
            response_model=FeedbackFiguresOut, responses=documented(401, 403, 422, 503))
def figures(
    state: State,
    caller: Caller,
    season: Annotated[int | None, Query(ge=1343, le=1500)] = None,
    service: Service | None = None,
    entity: Annotated[str | None, Query(max_length=50)] = None,
    status: FeedbackStatus | None = None,
    channel: Literal["public", "api"] | None = None,
    tag: Annotated[str | None, Query(max_length=60)] = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> FeedbackFiguresOut:
    """Counts and mean ratings of the feedback the caller may see, with the list's filters."""
    _require_read(caller)
    filters = _filters(season, service, entity, status, channel, None, None, tag, None, received_from, received_to,
                       None)
    with state.db.reading() as session:
        result = feedback.figures(session, caller, filters)
    return FeedbackFiguresOut(
        responses=result.responses, mean_rating=result.mean_rating, low_ratings=result.low_ratings,
        by_rating=result.by_rating,
        by_service=[CountAndMean(key=k, responses=n, mean_rating=m) for k, (n, m) in result.by_service.items()],
        by_entity=[CountAndMean(key=k, responses=n, mean_rating=m) for k, (n, m) in result.by_entity.items()],
    )


@router.get("/feedback/directive-suggestion", operation_id="suggestDirectiveFromFeedback",
            response_model=DirectiveSuggestion,
            responses=documented(401, 403, 404, 422, 503))
def suggestion(state: State, caller: Annotated[CurrentUser, requires("directive.create")],
               ids: Annotated[list[Id], Query(min_length=1, max_length=200)]) -> DirectiveSuggestion:
    """A draft directive for the feedback items, to fill the form with before raising it."""
    with state.db.reading() as session:
        new = feedback.suggest_directive(session, list(ids), caller)
    return DirectiveSuggestion(title=new.title, title_en=new.title_en, kind=new.kind,
                               responsible_entity=new.responsible_entity or None, deadline=str(new.deadline),
                               body=new.body, source=new.source, tags=list(new.tags))


@router.post("/feedback/raise-directive", operation_id="raiseDirectiveFromFeedback",
             response_model=DirectiveOut, status_code=201,
             responses=documented(401, 403, 404, 409, 422, 503))
def raise_directive(body: RaiseDirective, state: State, caller: Caller) -> DirectiveOut:
    """Create a draft directive from one or several feedback items: linked to them, their tags carried over."""
    with state.db.transaction() as session:
        suggested = feedback.suggest_directive(session, list(body.feedback_ids), caller)
        given = body.model_dump(exclude_unset=True, exclude={"feedback_ids"})
        if "season" in given:
            given["season_year"] = given.pop("season")
        given = {k: (list(v) if isinstance(v, list) else v) for k, v in given.items() if v is not None}
        directive = feedback.raise_directive(session, list(body.feedback_ids), caller, replace(suggested, **given))
        return directive_out(directive, season_years(session))


@router.get("/feedback/{feedback_id}", operation_id="getFeedback",
            response_model=FeedbackOut, responses=documented(401, 403, 404, 422, 503))
def read(feedback_id: FeedbackId, state: State, caller: Caller) -> FeedbackOut:
    _require_read(caller)
    with state.db.reading() as session:
        return _one(session, feedback.visible_item(session, caller, feedback_id))


@router.patch("/feedback/{feedback_id}", operation_id="updateFeedback",
              response_model=FeedbackOut, responses=documented(401, 403, 404, 422, 503))
def update(feedback_id: FeedbackId, body: FeedbackUpdate, state: State, caller: Caller) -> FeedbackOut:
    """Triage: status (new, reviewed, dismissed), tags, a note, or the entity when it was not known."""
    changes = body.model_dump(exclude_unset=True)
    if "tags" in changes:
        changes["tags"] = list(changes["tags"] or [])
    with state.db.transaction() as session:
        feedback.visible_item(session, caller, feedback_id)
        return _one(session, feedback.update(session, caller, feedback_id, **changes))


def _require_read(caller: CurrentUser) -> None:
    if not feedback.can_read(caller):
        raise Forbidden(N_("%(role)s may not read pilgrim feedback"), params={"role": role_word(caller.role)})


# --- recurring obstacles ---------------------------------------------------------------------------------------

@router.get("/obstacles", operation_id="listRecurringObstacles",
            response_model=ObstaclesOut, tags=["obstacles"], responses=documented(401, 403, 404, 422,
                                                                                                 503))
def recurring_obstacles(
    state: State,
    caller: Annotated[CurrentUser, requires("report.read")],
    season: Annotated[int | None, Query(ge=1343, le=1500, description="Hijri year (today's season if omitted).")]
    = None,
    previous: Annotated[int | None, Query(ge=1343, le=1500, description="Compared with (the season before).")]
    = None,
) -> ObstaclesOut:
    """Tags (on directives and on pilgrim feedback) found this season and in the previous one: the obstacles
    that recurred, with counts and the entities concerned."""
    with state.db.reading() as session:
        view = obstacles.recurring_for_year(session, season, previous)

    def names(refs: list) -> list[EntityName]:
        return [EntityName(code=r.code, name_ar=r.name_ar, name_en=r.name_en) for r in refs]

    return ObstaclesOut(season=view.season_year, previous_season=view.previous_year, obstacles=[
        ObstacleOut(tag=o.tag, count=o.count, previous_count=o.previous_count, directives=o.directives,
                    feedback=o.feedback, previous_directives=o.previous_directives,
                    previous_feedback=o.previous_feedback, entities=names(o.entities),
                    previous_entities=names(o.previous_entities)) for o in view.obstacles])
