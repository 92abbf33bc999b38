"""Narrowing a value that a query or a state guarantees is set: a None there is a bug, said plainly."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def present(value: T | None, what: str) -> T:
    """`value`, which the caller knows is set (its query filtered out NULLs, its state requires it)."""
    if value is None:
        raise RuntimeError(f"{what} is not set, though it must be here")
    return value
