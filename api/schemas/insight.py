"""Insight: the bottleneck heatmap of a model version and the escalation forecast."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class StepHeatOut(BaseModel):
    element_id: str
    name: str
    name_ar: str | None
    name_en: str | None
    opened: int = Field(description="Visits that opened in the period.")
    open_now: int
    overdue_now: int = Field(description="Open now and past their due moment.")
    completed: int
    withdrawn: int = Field(description="Taken away by an event (an extension, a reassignment, a close).")
    late: int = Field(description="Closed after their due moment.")
    overdue_share: float | None = Field(description="(late + overdue now) / opened.")
    reworks: int = Field(description="Visits of a step the instance had finished before.")
    rework_share: float | None
    p50_hours: float | None = Field(description="Median working hours open, of the completed visits.")
    p90_hours: float | None
    p90_beyond_buckets: bool = Field(description="The 90th percentile is longer than the last bucket (504 h).")
    mean_hours: float | None
    band: int = Field(description="The colour: 0 (calm) to 3 (hot), by the measure asked for.")


class HeatmapOut(BaseModel):
    model: str
    version: int
    measure: str
    thresholds: list[float] = Field(description="The bands' upper bounds: a value above the n-th is band n + 1.")
    season: int | None
    entity: str | None
    track: str | None
    opened_from: date | None
    opened_until: date | None
    steps: list[StepHeatOut]


class EscalationOutlookOut(BaseModel):
    entity: str
    level: int
    within_24h: int
    within_72h: int


class ComingEscalationOut(BaseModel):
    instance_id: int
    directive_id: int | None
    reference: str | None
    title: str | None
    title_en: str | None
    entity: str
    level: int
    due_at: datetime


class StepRiskOut(BaseModel):
    work_item_id: int
    instance_id: int
    directive_id: int | None
    reference: str | None
    title: str | None
    element_id: str
    name: str
    entity: str
    due_at: datetime
    probability: float | None = Field(description="That it misses its due moment (None: no history at all).")
    basis: str | None = Field(description="entity (its own history), every_entity, baseline or overdue.")
    visits: int = Field(description="The completed visits the probability rests on.")
    median_hours: float | None
    age_hours: float | None = Field(description="Working hours open so far.")
    left_hours: float | None = Field(description="Working hours to the due moment.")


class ForecastOut(BaseModel):
    now: datetime
    entity: str | None
    escalations: list[EscalationOutlookOut]
    coming: list[ComingEscalationOut] = Field(description="The escalations due in the next 72 hours, soonest first.")
    steps: list[StepRiskOut] = Field(description="Open steps due in the next 72 hours, likeliest to miss first "
                                                 "(`limit` of them).")
    due_within_72h: int = Field(description="Open steps due within the next 72 hours (not past due).")
    expected_misses: float = Field(description="How many of those are expected to miss: the sum of their "
                                               "probabilities.")
    likely_misses: int = Field(description="How many of those have a probability of missing of 50 % or more.")
    past_due: int = Field(description="The listed steps already past their due moment.")
