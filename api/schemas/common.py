"""Shared pieces: bounded ids and text, pages."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from engine.storage.db import MAX_ID
from engine.work.work_items import MAX_DEPTH, nesting_depth


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    return value


def _shallow(value: dict) -> dict:
    if nesting_depth(value) > MAX_DEPTH:
        raise ValueError(f"data may nest at most {MAX_DEPTH} levels deep")
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
FormData = Annotated[dict[str, Any], AfterValidator(_shallow)]
Text = Annotated[str, AfterValidator(_no_nul)]

T = TypeVar("T")


SEARCH_HELP = ("Text in the directive's reference or titles, found however its Arabic is typed (hamza, taa marbuta, "
               "tashkeel, Arabic-Indic digits).")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="How many match the filters, across all pages.")
    limit: int
    offset: int


class Strict(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


def example(*examples: dict[str, Any]) -> ConfigDict:
    """A request body's documented examples (OpenAPI `examples`), on top of `Strict`'s configuration:
    `model_config = example({...})`. tests/test_api_examples.py validates each against its own model."""
    return ConfigDict(json_schema_extra={"examples": list(examples)})
