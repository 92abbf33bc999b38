"""Sign in (OAuth2 password form), revoke every token of the caller, and who the caller is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import Caller, State
from api.problems import ApiProblem, documented, retry_after
from api.schemas.auth import EntityRef, MeOut, TokenOut
from engine.directives import access
from engine.people import login_attempts, users

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=TokenOut, responses=documented(400, 401, 422, 429, 503))
def issue_token(request: Request, state: State, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
    """Exchange a username and password for a bearer token (OAuth2 password flow)."""
    username = form.username.strip().lower()[:60]
    client = request.client.host if request.client else None
    if "\x00" in username or "\x00" in form.password or len(form.password) > 1000:
        raise ApiProblem("unauthorized", "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    with state.db.transaction() as session:
        wait = login_attempts.retry_after(session, username, client)
        if wait:
            raise ApiProblem("too-many-requests", "too many failed sign-ins; wait and try again",
                             headers=retry_after(wait.total_seconds()))
        user = users.authenticate(session, username, form.password)
        login_attempts.record(session, username, client, user is not None)
        user_id = user.id if user is not None else None
    if user_id is None:
        raise ApiProblem("unauthorized", "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    return TokenOut(access_token=state.tokens.issue(user_id), expires_in=state.tokens.ttl_seconds)


@router.post("/auth/revoke", operation_id="revokeToken", status_code=204, responses=documented(401, 503))
def revoke(state: State, caller: Caller) -> None:
    """Revoke every token issued to the caller so far (sign out everywhere), at once."""
    with state.db.transaction() as session:
        users.revoke_tokens(session, users.get_user_by_id(session, caller.id), caller.username)


@router.get("/me", operation_id="getCurrentUser", response_model=MeOut, responses=documented(401, 503))
def me(caller: Caller) -> MeOut:
    entity = None
    if caller.entity_code:
        entity = EntityRef(code=caller.entity_code, name_ar=caller.entity_name_ar or "",
                           name_en=caller.entity_name_en or "")
    return MeOut(id=caller.id, username=caller.username, full_name=caller.full_name, email=caller.email,
                 role=caller.role, entity=entity, language=caller.language, permissions=access.permissions(caller),
                 tokens_valid_after=caller.tokens_valid_after)
