"""Decision tables (DMN)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DecisionOut(BaseModel):
    key: str
    version: int
    name: str
    checksum: str
    filename: str
    rule_count: int
    deployed_at: datetime
    deployed_by: str


class DecisionRuleOut(BaseModel):
    inputs: list[str] = Field(description="Each input's test as written ('-': any value).")
    outputs: list[str]


class DecisionDetail(DecisionOut):
    hit_policy: str
    inputs: list[str] = Field(description="The inputs' labels.")
    outputs: list[str] = Field(description="The outputs' labels.")
    rules: list[DecisionRuleOut]
    versions: list[DecisionOut]


class DecisionDeploymentOut(BaseModel):
    created: bool = Field(description="False when identical content was already deployed (the same version).")
    decision: DecisionOut
