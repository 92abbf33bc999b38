"""Recurring obstacles (المعوقات المتكررة): the one place that computes them.

An obstacle is named by a tag. Tags sit on directives (what the committee asked for) and on pilgrim
feedback (what pilgrims complained about). A tag found in a season and in the season before it is a
recurring obstacle: the seasonal report's section and the obstacles page both come from `recurring`,
with counts (directives and feedback items, this season and the previous one) and the entities
concerned (the directives' responsible entities and the entities the feedback was about).

Tags are normalised by `engine.directives.tags`, for directives and feedback alike, so the same word
typed on a directive and on a feedback item is the same obstacle.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.foundation.errors import N_, InvalidInput, NotFound

if TYPE_CHECKING:
    from engine.calendar.seasons import Season
    from engine.people.entities import EntityRef


@dataclass(frozen=True)
class Obstacle:
    """A tag found in this season and in the previous one: a recurring obstacle (معوق متكرر).

    `count` and `previous_count` add up directives and feedback items carrying the tag; the split is in
    `directives`/`feedback` and `previous_directives`/`previous_feedback`.
    """

    tag: str
    count: int
    previous_count: int
    entities: list[EntityRef]
    previous_entities: list[EntityRef]
    directives: int = 0
    feedback: int = 0
    previous_directives: int = 0
    previous_feedback: int = 0


@dataclass(frozen=True)
class TagFigures:
    """One tag in one season."""

    tag: str
    directives: int
    feedback: int
    entity_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def count(self) -> int:
        return self.directives + self.feedback


def season_tags(session: Session, season_ids: Iterable[int]) -> dict[tuple[str, int], TagFigures]:
    """Every tag of the given seasons, from directives and feedback: two grouped queries in all."""
    from engine.directives.directives import Directive, DirectiveTag
    from engine.feedback import FeedbackItem, FeedbackTag

    ids = tuple(season_ids)
    directive_rows = session.execute(
        select(DirectiveTag.tag, Directive.season_id, Directive.responsible_entity_id, func.count())
        .join(Directive, Directive.id == DirectiveTag.directive_id)
        .where(Directive.season_id.in_(ids))
        .group_by(DirectiveTag.tag, Directive.season_id, Directive.responsible_entity_id)
    ).all()
    feedback_rows = session.execute(
        select(FeedbackTag.tag, FeedbackItem.season_id, FeedbackItem.entity_id, func.count())
        .join(FeedbackItem, FeedbackItem.id == FeedbackTag.feedback_id)
        .where(FeedbackItem.season_id.in_(ids))
        .group_by(FeedbackTag.tag, FeedbackItem.season_id, FeedbackItem.entity_id)
    ).all()
    directive_counts: dict[tuple[str, int], int] = defaultdict(int)
    feedback_counts: dict[tuple[str, int], int] = defaultdict(int)
    holders: dict[tuple[str, int], set[int]] = defaultdict(set)
    for tag, season_id, entity_id, count in directive_rows:
        directive_counts[(tag, season_id)] += count
        holders[(tag, season_id)].add(entity_id)
    for tag, season_id, feedback_entity_id, count in feedback_rows:
        feedback_counts[(tag, season_id)] += count
        if feedback_entity_id is not None:
            holders[(tag, season_id)].add(feedback_entity_id)
    keys = set(directive_counts) | set(feedback_counts)
    return {key: TagFigures(key[0], directive_counts.get(key, 0), feedback_counts.get(key, 0),
                            frozenset(holders.get(key, set()))) for key in keys}


def previous_season(session: Session, season: Season) -> Season | None:
    from engine.calendar.seasons import Season

    return session.scalar(select(Season).where(Season.hijri_year < season.hijri_year)
                          .order_by(Season.hijri_year.desc()).limit(1))


def recurring(session: Session, season: Season, previous: Season | None = None,
              refs: dict[int, EntityRef] | None = None) -> list[Obstacle]:
    """Tags of `season` also found in `previous` (by default the latest season before it), most frequent
    first (both seasons together), then by tag. Empty when there is no previous season."""
    from engine.people.entities import entity_refs, unknown_entity

    previous = previous if previous is not None else previous_season(session, season)
    if previous is None:
        return []
    if previous.id == season.id:
        raise InvalidInput("compare a season with another season")
    refs = refs if refs is not None else entity_refs(session)
    figures = season_tags(session, (season.id, previous.id))

    def named(ids: Iterable[int]) -> list[EntityRef]:
        return sorted((refs.get(i) or unknown_entity(str(i)) for i in ids), key=lambda r: r.code)

    now_tags = {tag for tag, sid in figures if sid == season.id}
    before_tags = {tag for tag, sid in figures if sid == previous.id}
    obstacles = []
    for tag in now_tags & before_tags:
        now, before = figures[(tag, season.id)], figures[(tag, previous.id)]
        obstacles.append(Obstacle(tag, now.count, before.count, named(now.entity_ids), named(before.entity_ids),
                                  now.directives, now.feedback, before.directives, before.feedback))
    return sorted(obstacles, key=lambda o: (-(o.count + o.previous_count), o.tag))


@dataclass(frozen=True)
class ObstaclesView:
    """The obstacles page: a season, the season it is compared with, and the tags that recurred."""

    season_year: int
    previous_year: int | None
    obstacles: list[Obstacle]


def recurring_for_year(session: Session, hijri_year: int | None = None,
                       previous_year: int | None = None) -> ObstaclesView:
    """`recurring` by Hijri years; without `hijri_year`, the season of today."""
    from engine.calendar import seasons
    from engine.foundation import clock

    season = seasons.get_season(session, hijri_year) if hijri_year else seasons.season_for(session, clock.now())
    previous = seasons.get_season(session, previous_year) if previous_year else previous_season(session, season)
    if previous is not None and previous.hijri_year >= season.hijri_year:
        raise InvalidInput("the season compared with comes before the season shown")
    if previous is None and previous_year:
        raise NotFound(N_("no season %(season)s"), params={"season": str(previous_year)})
    return ObstaclesView(season.hijri_year, previous.hijri_year if previous else None,
                         recurring(session, season, previous) if previous else [])


def seed_demo_previous_season(session: Session, data: dict[str, Any], hijri_year: int, starts_on: date, ends_on: date,
                              rng: random.Random, *, actor: str = "demo") -> Season:
    """For `engine.system.demo`: the season before the demo's, so that the obstacles page and the seasonal report
    have something to compare with. It holds, for a random half of the sample directives (season.json),
    one directive with the sample's tags — cancelled at once ("closed with the season"), since only its
    tags matter — and the sample feedback received during that season (`engine.feedback.seed_demo`)."""
    from engine import feedback
    from engine.calendar import seasons
    from engine.calendar.durations import RIYADH
    from engine.directives import directives
    from engine.foundation import clock

    season = seasons.create_season(session, hijri_year, starts_on, ends_on)
    for template in rng.sample(data["directives"], k=max(1, len(data["directives"]) // 2)):
        directive = directives.create(session, directives.NewDirective(
            title=template["title_ar"], title_en=template["title_en"], kind=template["kind"],
            responsible_entity=template["responsible"] or directives.ALL_ENTITIES, deadline="P1D",
            track=template["track"], programme_track=template["programme_track"], priority=template["priority"],
            supporting_entities=list(template["supporting"]), tags=list(template["tags"]), season_year=hijri_year,
            source="أرشيف الموسم السابق",
        ), actor)
        directives.cancel(session, directive.id, actor, "أُغلق بانتهاء الموسم")
    start = datetime.combine(starts_on, datetime.min.time(), tzinfo=RIYADH)
    end = min(datetime.combine(ends_on, datetime.min.time(), tzinfo=RIYADH), clock.now())
    feedback.seed_demo(session, data["feedback"], start, end, rng, copies=3)
    return season
