"""Pilgrim feedback (رأي الحاج) in the reports — a HOOK, waiting for issue 9.

There is no feedback table yet. The daily and seasonal reports carry a `feedback` section that stays
`None`, and is left out of every rendered format, until a source is registered:

    from engine.reports import feedback

    def summarise(session, starts_at, ends_at) -> feedback.FeedbackSummary | None: ...
    feedback.register_source(summarise)

Issue 9 registers its function (set-based, like the other report queries) when it adds the table; the
report data, templates, XLSX and CSV already know how to show the section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from engine.reports.common import EntityRef


@dataclass(frozen=True)
class FeedbackEntityRow:
    entity: EntityRef
    responses: int
    mean_rating: float | None
    low_ratings: int  # ratings of 1 or 2 out of 5


@dataclass(frozen=True)
class FeedbackComment:
    entity: EntityRef
    rating: int
    text_ar: str
    text_en: str | None


@dataclass(frozen=True)
class FeedbackSummary:
    responses: int
    mean_rating: float | None
    by_entity: list[FeedbackEntityRow]
    comments: list[FeedbackComment]  # a few, lowest rated first


FeedbackSource = Callable[[Session, datetime, datetime], FeedbackSummary | None]
_source: FeedbackSource | None = None


def register_source(source: FeedbackSource | None) -> None:
    """Set (or, with None, remove) the function that summarises pilgrim feedback between two moments."""
    global _source
    _source = source


def collect(session: Session, starts_at: datetime, ends_at: datetime) -> FeedbackSummary | None:
    """The feedback section of a report, or None (section omitted) while no source exists."""
    return None if _source is None else _source(session, starts_at, ends_at)
