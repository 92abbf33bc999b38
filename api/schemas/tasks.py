"""Steps in an inbox: claim, report progress, complete, ask for more time."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from api.schemas.common import FormData, Strict, Text, example
from api.schemas.directives import DirectiveSummary, EvidenceOut, OpenStep, StepOut


class TaskOut(StepOut):
    instance_id: int
    directive: DirectiveSummary | None


class TaskDetail(TaskOut):
    form_schema: dict[str, Any] | None = Field(description="JSON Schema of the data `complete` expects.")
    completion_data: dict[str, Any] | None
    evidence: list[EvidenceOut]
    can_act: bool = Field(description="Whether the caller may claim, report on or complete this step.")


class TaskCompleted(TaskDetail):
    next_steps: list[OpenStep] = Field(
        default_factory=list, description="The instance's open steps after this completion, each with its form "
        "and whether the caller may work it: the next step can be completed without reading the inbox.")


class TaskComplete(Strict):
    model_config = example({"data": {"summary": "استُكملت التجهيزات والكوادر في مراكز الاستقبال"
        " ورُفع تقرير الجاهزية إلى غرفة التنسيق والعمليات", "evidence": ["17"]}})

    data: FormData = Field(default_factory=dict, description="The step's form data (see form_schema). "
                                 "Evidence ids under `evidence` must have been uploaded to this directive.")


class TaskProgress(Strict):
    model_config = example({"percent": 60, "note": "اكتمل تجهيز ثلاثة من خمسة مراكز استقبال على طريق الهجرة"})

    percent: Annotated[int, Field(ge=0, le=100)]
    note: Annotated[Text, Field(max_length=2000)] | None = None
