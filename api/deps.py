"""Dependencies of the routes: the app's state, the database, the caller, and role checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from api.problems import ApiProblem
from api.security import InvalidToken, TokenService, revoked
from api.settings import ApiSettings
from engine.directives import access
from engine.foundation.errors import NotFound
from engine.people import users
from engine.people.roles import ENTITY_USER
from engine.people.users import User
from engine.storage.db import Database

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


@dataclass
class AppState:
    settings: ApiSettings
    db: Database
    tokens: TokenService


@dataclass(frozen=True)
class CurrentUser:
    """The caller, read afresh from the database on every request (role changes apply at once)."""

    id: int
    username: str
    full_name: str
    email: str | None
    role: str
    entity_id: int | None
    entity_code: str | None
    entity_name_ar: str | None
    entity_name_en: str | None
    language: str
    active: bool
    tokens_valid_after: datetime | None

    @classmethod
    def of(cls, user: User) -> CurrentUser:
        entity = user.entity
        return cls(id=user.id, username=user.username, full_name=user.full_name, email=user.email, role=user.role,
                   entity_id=user.entity_id, entity_code=entity.code if entity else None,
                   entity_name_ar=entity.name_ar if entity else None, entity_name_en=entity.name_en if entity else None,
                   language=user.language, active=user.active, tokens_valid_after=user.tokens_valid_after)


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in the thread pool,
# and each such hop costs more than the work (only `current_user`, which reads the database, needs one).
async def get_state(request: Request) -> AppState:
    return request.app.state.tansiq


State = Annotated[AppState, Depends(get_state)]


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem("unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def current_user(state: State, token: Annotated[str | None, Depends(oauth2)]) -> CurrentUser:
    if not token:
        raise _unauthorized("sign in first: send `Authorization: Bearer <token>` from POST /api/v1/auth/token")
    try:
        claims = state.tokens.read(token)
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from None
    with state.db.single_read() as connection:
        row = users.profile(connection, claims.user_id)
    if row is None or not row.active:
        raise _unauthorized("the account is not active")
    if revoked(claims, row.tokens_valid_after):
        raise _unauthorized("the token was revoked; sign in again")
    return CurrentUser(**row._asdict())


Caller = Annotated[CurrentUser, Depends(current_user)]


def operator() -> Any:
    """The operations view's dependency: administrators only; to an entity user it does not exist (404)."""

    async def check(user: Caller) -> CurrentUser:
        if user.role == ENTITY_USER:
            raise NotFound("not found")
        access.require(user, "instance.operate")
        return user

    return Depends(check)


def requires(action: str) -> Any:
    """A dependency that lets only roles allowed to do `action` through (403 otherwise)."""

    async def check(user: Caller) -> CurrentUser:
        access.require(user, action)
        return user

    check.__name__ = f"requires_{action.replace('.', '_')}"
    return Depends(check)
