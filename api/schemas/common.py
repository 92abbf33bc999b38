"""Shared pieces: bounded ids and text, pages."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_ID = 2_147_483_647  # the database's integer range: larger ids cannot exist


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    return value


MAX_DEPTH = 32  # form data nests at most this deep (the engine's JSON and the responses stay small)


def nesting_depth(value: object, limit: int = MAX_DEPTH) -> int:
    """How deep lists and objects nest, counting no further than `limit` + 1 (no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _shallow(value: dict) -> dict:
    if nesting_depth(value) > MAX_DEPTH:
        raise ValueError(f"data may nest at most {MAX_DEPTH} levels deep")
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
FormData = Annotated[dict[str, Any], AfterValidator(_shallow)]
Text = Annotated[str, AfterValidator(_no_nul)]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="How many match the filters, across all pages.")
    limit: int
    offset: int


class Strict(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")
