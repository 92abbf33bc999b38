from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import CurrentUser, State, requires
from api.problems import documented
from api.schemas.admin import Role, UserCreate, UserOut, UserUpdate
from api.schemas.common import Page
from api.views import user_out
from engine.people import users

router = APIRouter(tags=["users"])
Username = Annotated[str, Path(min_length=1, max_length=60)]


@router.get("/users", operation_id="listUsers", response_model=Page[UserOut], dependencies=[requires("user.manage")],
            responses=documented(401, 403, 422, 503))
def list_all(state: State, role: Role | None = None,
             entity: Annotated[str | None, Query(max_length=50)] = None,
             q: Annotated[str | None, Query(max_length=200, description="Text in the username, name or email.")] = None,
             limit: Annotated[int, Query(ge=1, le=200)] = 50,
             offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Page[UserOut]:
    with state.db.reading() as session:
        rows, total = users.list_users(session, role=role, entity_code=entity, text=q, limit=limit, offset=offset)
        return Page(items=[user_out(u) for u in rows], total=total, limit=limit, offset=offset)


@router.post("/users", operation_id="createUser",
             response_model=UserOut, status_code=201, responses=documented(401, 403, 404, 409, 422, 503))
def create(body: UserCreate, state: State,
           caller: Annotated[CurrentUser, requires("user.manage")]) -> UserOut:
    with state.db.transaction() as session:
        user = users.create_user(session, body.username, body.password, body.role, full_name=body.full_name,
                                 email=body.email, entity_code=body.entity, language=body.language,
                                 actor=caller.username)
        session.refresh(user)
        return user_out(user)


@router.patch("/users/{username}", operation_id="updateUser",
              response_model=UserOut, responses=documented(401, 403, 404, 422, 503))
def update(username: Username, body: UserUpdate, state: State,
           caller: Annotated[CurrentUser, requires("user.manage")]) -> UserOut:
    """Deactivate (revokes the user's tokens), rename, reset a password."""
    with state.db.transaction() as session:
        user = users.update_user(session, username, caller.username, **body.model_dump(exclude_unset=True))
        return user_out(user)
