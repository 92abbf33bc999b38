from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from api.schemas.common import Id, Strict, Text
from api.schemas.directives import Code, Deadline

Action = Literal["extend", "reassign", "escalate", "close", "comment"]


class ResolveRequest(Strict):
    action: Action
    note: Annotated[Text, Field(max_length=4000)] = ""
    new_deadline: Deadline | None = Field(default=None, description="For `extend`.")
    entity: Code | None = Field(default=None, description="For `reassign`: the entity that takes over.")
    outcome: Literal["done", "cancelled"] | None = Field(default=None, description="For `close`.")
    level: Annotated[int, Field(ge=2, le=5)] | None = Field(
        default=None, description="For `escalate`: the level to raise the directive to (default: the next one).")


class BulkResolveRequest(ResolveRequest):
    ids: Annotated[list[Id], Field(min_length=1, max_length=200)]


class BulkOutcomeOut(BaseModel):
    id: int
    ok: bool
    status: int = Field(description="The HTTP status this row alone would have had.")
    detail: str


class BulkResolveOut(BaseModel):
    results: list[BulkOutcomeOut]
    succeeded: int
    failed: int
