from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from api.schemas.common import Id, Strict, Text, example
from api.schemas.directives import Code, Deadline

Action = Literal["extend", "reassign", "escalate", "close", "comment"]


class ResolveRequest(Strict):
    model_config = example({"action": "extend", "new_deadline": "PT24H",
        "note": "مُدّدت المهلة يوماً واحداً بعد تأكيد الجهة وصول المستلزمات"})

    action: Action
    note: Annotated[Text, Field(max_length=4000)] = ""
    new_deadline: Deadline | None = Field(default=None, description="For `extend`.")
    entity: Code | None = Field(default=None, description="For `reassign`: the entity that takes over.")
    outcome: Literal["done", "cancelled"] | None = Field(default=None, description="For `close`.")
    level: Annotated[int, Field(ge=2, le=5)] | None = Field(
        default=None, description="For `escalate`: the level to raise the directive to (default: the next one).")


class BulkResolveRequest(ResolveRequest):
    model_config = example({"ids": [12, 15], "action": "reassign", "entity": "municipality",
        "note": "تتولى أمانة منطقة المدينة المنورة معالجة المواقف البديلة"})

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
