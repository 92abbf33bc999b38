from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from api.deps import CurrentUser, State, requires
from api.problems import documented
from api.schemas.admin import EntityCreate, EntityOut
from api.views import entity_out
from engine.people import entities

router = APIRouter(tags=["entities"])


@router.get("/entities", response_model=list[EntityOut], dependencies=[requires("entity.read")],
            responses=documented(401, 403, 503))
def list_entities(state: State) -> list[EntityOut]:
    """Every entity (جهة), by code."""
    with state.db.reading() as session:
        return [entity_out(e) for e in entities.list_entities(session)]


@router.post("/entities", response_model=EntityOut, status_code=201, responses=documented(401, 403, 409, 422, 503))
def create_entity(body: EntityCreate, state: State,
                  caller: Annotated[CurrentUser, requires("entity.manage")]) -> EntityOut:
    with state.db.transaction() as session:
        entity = entities.create_entity(session, body.code, body.name_ar, body.name_en, body.kind, body.email,
                                        actor=caller.username)
        return entity_out(entity)
