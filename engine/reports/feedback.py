"""Pilgrim feedback (رأي الحاج) in the daily, periodic and seasonal reports: the `feedback` section.

`collect` summarises the feedback received in a report's period (set-based, two queries at most); a
period with no feedback has no section, and every rendered format leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from engine.feedback import DISMISSED, SERVICE_NAMES, FeedbackItem
from engine.foundation.checks import present
from engine.people.entities import Entity, EntityRef


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


REPORT_COMMENTS = 5


def collect(session: Session, starts_at: datetime, ends_at: datetime) -> FeedbackSummary | None:
    """The reports' pilgrim-feedback section for [starts_at, ends_at): responses, mean rating, figures per
    entity (feedback without an entity is grouped per service) and the lowest-rated comments. None when
    no feedback was received in the period (the section is then left out). Two queries at most."""
    window = (FeedbackItem.received_at >= starts_at, FeedbackItem.received_at < ends_at)
    low = func.sum(case((FeedbackItem.rating <= 2, 1), else_=0))
    rows = session.execute(
        select(Entity.code, Entity.name_ar, Entity.name_en, FeedbackItem.service, func.count(),
               func.sum(FeedbackItem.rating), low)
        .select_from(FeedbackItem).outerjoin(Entity, Entity.id == FeedbackItem.entity_id).where(*window)
        .group_by(Entity.code, Entity.name_ar, Entity.name_en, FeedbackItem.service)
    ).all()
    if not rows:
        return None

    def ref(code: str | None, name_ar: str | None, name_en: str | None, service: str) -> EntityRef:
        if code is not None:
            return EntityRef(code, present(name_ar, "an entity's name_ar"), present(name_en, "an entity's name_en"))
        ar, en = SERVICE_NAMES.get(service, (service, service))
        return EntityRef(f"-{service}", f"{ar} (جهة غير محددة)", f"{en} (entity not known)")

    grouped: dict[EntityRef, list[int]] = {}
    for code, name_ar, name_en, service, count, rating_sum, low_count in rows:
        bucket = grouped.setdefault(ref(code, name_ar, name_en, service), [0, 0, 0])
        bucket[0] += count
        bucket[1] += int(rating_sum or 0)
        bucket[2] += int(low_count or 0)
    by_entity = [FeedbackEntityRow(entity, n, round(s / n, 2) if n else None, lows)
                 for entity, (n, s, lows) in grouped.items()]
    by_entity.sort(key=lambda r: (-r.responses, r.entity.code))
    responses = sum(r.responses for r in by_entity)
    total_rating = sum(s for _, s, _ in grouped.values())
    comments = [
        FeedbackComment(ref(code, name_ar, name_en, service), rating, text_ar or text_en or "",
                        text_en if text_ar else None)
        for code, name_ar, name_en, service, rating, text_ar, text_en in session.execute(
            select(Entity.code, Entity.name_ar, Entity.name_en, FeedbackItem.service, FeedbackItem.rating,
                   FeedbackItem.text_ar, FeedbackItem.text_en)
            .select_from(FeedbackItem).outerjoin(Entity, Entity.id == FeedbackItem.entity_id).where(*window)
            .where(FeedbackItem.status != DISMISSED)
            .order_by(FeedbackItem.rating, FeedbackItem.received_at.desc(), FeedbackItem.id.desc())
            .limit(REPORT_COMMENTS)
        )
    ]
    return FeedbackSummary(responses, round(total_rating / responses, 2) if responses else None, by_entity, comments)
