"""The one clock of the engine. SpiffWorkflow's timers read it too (see `bpmn_runtime`).

Tests and `--now` move time by setting it; production reads the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_fixed: datetime | None = None


def now() -> datetime:
    """The current moment, timezone-aware UTC."""
    return _fixed if _fixed is not None else datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Naive moments are taken as UTC (the database stores UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def set_now(moment: datetime | None) -> None:
    """Fix the clock at `moment` (None returns to the wall clock)."""
    global _fixed
    _fixed = as_utc(moment) if moment is not None else None


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    previous = _fixed
    set_now(moment)
    try:
        yield
    finally:
        set_now(previous)
