from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import CurrentUser, State, requires
from api.problems import documented
from api.schemas.admin import SeasonCreate, SeasonOut, SeasonUpdate
from api.views import season_out
from engine.calendar import seasons

router = APIRouter(tags=["seasons"])
Year = Annotated[int, Path(ge=1343, le=1500, description="The season's Hijri year.")]


@router.get("/seasons", operation_id="listSeasons",
            response_model=list[SeasonOut], dependencies=[requires("season.read")],
            responses=documented(401, 403, 503))
def list_all(state: State) -> list[SeasonOut]:
    with state.db.reading() as session:
        return [season_out(s) for s in seasons.list_seasons(session)]


@router.post("/seasons", operation_id="createSeason",
             response_model=SeasonOut, status_code=201, responses=documented(401, 403, 409, 422, 503))
def create(body: SeasonCreate, state: State,
           caller: Annotated[CurrentUser, requires("season.manage")]) -> SeasonOut:
    with state.db.transaction() as session:
        season = seasons.create_season(session, body.hijri_year, body.starts_on, body.ends_on,
                                       calendar_mode=body.calendar_mode,
                                       holidays=[d.isoformat() for d in body.holidays], actor=caller.username)
        return season_out(season)


@router.patch("/seasons/{year}", operation_id="updateSeason",
              response_model=SeasonOut, responses=documented(401, 403, 404, 422, 503))
def update(year: Year, body: SeasonUpdate, state: State,
           caller: Annotated[CurrentUser, requires("season.manage")]) -> SeasonOut:
    """Move a season's dates (moon sighting), its calendar mode or its holidays."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "holidays" in changes:
        changes["holidays"] = sorted({d.isoformat() for d in body.holidays or []})
    with state.db.transaction() as session:
        season = seasons.update_season(session, seasons.get_season(session, year), actor=caller.username, **changes)
        return season_out(season)
