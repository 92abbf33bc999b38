"""Forms the pages generate and read: a step's form from its JSON Schema, and deadlines typed in the Hijri
or the Gregorian calendar (or as a duration)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from engine.calendar.business_calendar import hijri_to_gregorian
from engine.calendar.durations import RIYADH
from engine.foundation.errors import N_, FieldIssue, FieldProblems, InvalidInput
from engine.foundation.schema_issues import TYPE_MESSAGES

MAX_TEXT = 20_000


@dataclass
class Field:
    """One input of a generated form."""

    name: str
    widget: str  # text, textarea, number, integer, yesno, select, evidence, lines, json
    title: str | None  # the schema's own title, if any (else the page translates the name)
    required: bool
    description: str | None = None
    options: list[str] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    value: Any = None


def fields_of(schema: dict[str, Any] | None, values: dict[str, Any] | None = None) -> list[Field]:
    """The inputs for a step's form schema (object properties, in their order)."""
    if not schema or schema.get("type", "object") != "object":
        return []
    required = set(schema.get("required") or [])
    values = values or {}
    out = []
    for name, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, dict):
            continue
        kind = spec.get("type")
        widget = "json"
        if "enum" in spec and kind in ("string", None):
            widget = "select"
        elif kind == "string":
            widget = "textarea" if (spec.get("maxLength") or MAX_TEXT) > 300 else "text"
        elif kind == "boolean":
            widget = "yesno"
        elif kind in ("integer", "number"):
            widget = "integer" if kind == "integer" else "number"
        elif kind == "array" and name == "evidence":
            widget = "evidence"
        elif kind == "array" and (spec.get("items") or {}).get("type") in ("string", "integer"):
            widget = "lines"
        title = spec.get("title") if isinstance(spec.get("title"), str) else None
        out.append(Field(name=name, widget=widget, title=title, required=name in required,
                         description=spec.get("description") if isinstance(spec.get("description"), str) else None,
                         options=[str(o) for o in spec.get("enum") or []], minimum=spec.get("minimum"),
                         maximum=spec.get("maximum"), max_length=spec.get("maxLength"), value=values.get(name)))
    return out


def read_form(schema: dict[str, Any] | None, form: Any, problems: FieldProblems | None = None) -> dict[str, Any]:
    """Form fields back into the JSON the schema describes (the engine validates the result). An input that
    cannot be read is left out and counted in `problems` (refused at once without them)."""
    given_problems = problems is not None
    problems = problems if problems is not None else FieldProblems()
    data: dict[str, Any] = {}
    for f in fields_of(schema):
        raw = form.get(f"field.{f.name}")
        if f.widget == "evidence":
            data[f.name] = [v for v in form.getlist(f"field.{f.name}") if isinstance(v, str) and v]
            continue
        if not isinstance(raw, str):
            continue
        text = raw.strip()
        if f.widget in ("text", "textarea", "select"):
            if text or f.required:
                data[f.name] = text
        elif f.widget == "yesno":
            if text in ("yes", "no"):
                data[f.name] = text == "yes"
        elif f.widget in ("integer", "number"):
            if text:
                try:
                    data[f.name] = int(text) if f.widget == "integer" else float(text)
                except ValueError:
                    problems.add(f.name, "type", TYPE_MESSAGES["integer" if f.widget == "integer" else "number"])
        elif f.widget == "lines":
            data[f.name] = [line.strip() for line in text.splitlines() if line.strip()]
        elif text:
            try:
                data[f.name] = json.loads(text)
            except json.JSONDecodeError:
                problems.add(f.name, "type", N_("Type a value in JSON."))
    if not given_problems:
        problems.raise_if_any()
    return data


def evidence_as_integers(schema: dict[str, Any] | None) -> bool:
    evidence = ((schema or {}).get("properties") or {}).get("evidence") or {}
    return isinstance(evidence, dict) and (evidence.get("items") or {}).get("type") == "integer"


# --- deadlines ---------------------------------------------------------------------------------------

def deadline_from_form(form: Any, prefix: str = "deadline") -> str | datetime:
    """What the engine's `parse_deadline` takes, from a deadline typed in one of three ways:

    - `gregorian`: a date (and a time, Riyadh; the end of the day when empty);
    - `hijri`: year, month and day (Umm al-Qura) and a time;
    - `duration`: `PT6H`, `3 working days`, `48 hours`, ...

    A refusal names the input at fault (`<prefix>_date`, `<prefix>_hijri_day`, `<prefix>_duration`,
    `<prefix>_time`), so the page shows the message next to it.
    """
    mode = _text(form, f"{prefix}_mode") or "gregorian"
    if mode == "duration":
        value = _text(form, f"{prefix}_duration")
        if not value:
            raise _refused(f"{prefix}_duration", "required",
                           N_("Type how long from now, for example 48 hours or PT6H."))
        return value
    if mode == "hijri":
        on = _hijri_day(form, prefix)
    elif mode == "gregorian":
        on = _gregorian_day(form, prefix)
    else:
        raise _refused(f"{prefix}_mode", "enum", N_("Choose how the deadline is given."))
    return datetime.combine(on, _time_of_day(form, prefix), tzinfo=RIYADH)


def _refused(name: str, code: str, message_id: str, **params: Any) -> InvalidInput:
    return InvalidInput(message_id, params=params, fields=[FieldIssue(name, code, message_id, params)])


def _hijri_day(form: Any, prefix: str) -> date:
    try:
        year, month, day = (int(_text(form, f"{prefix}_hijri_{part}") or "0") for part in ("year", "month", "day"))
    except ValueError:
        raise _refused(f"{prefix}_hijri_day", "type", N_("The Hijri date is a day, a month and a year in numbers.")
                       ) from None
    if not (year and month and day):
        raise _refused(f"{prefix}_hijri_day", "required", N_("Choose the Hijri day, month and year."))
    try:
        return hijri_to_gregorian(year, month, day)
    except InvalidInput as exc:
        raise _refused(f"{prefix}_hijri_day", "format", exc.message_id, **exc.params) from None


def _gregorian_day(form: Any, prefix: str) -> date:
    text = _text(form, f"{prefix}_date")
    if not text:
        raise _refused(f"{prefix}_date", "required", N_("Choose the deadline's date."))
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _refused(f"{prefix}_date", "format", N_("This is not a date: %(text)s"), text=text) from None


def _time_of_day(form: Any, prefix: str) -> time:
    clock_text = _text(form, f"{prefix}_time")
    if not clock_text:
        return time(23, 59)
    try:
        return time.fromisoformat(clock_text)
    except ValueError:
        raise _refused(f"{prefix}_time", "format", N_("This is not a time of day: %(text)s"), text=clock_text
                       ) from None


def deadline_targets(prefix: str, input_id: str) -> dict[str, tuple[str, str | None]]:
    """The deadline inputs' ids and labels for `form_errors` (the prefix itself: the whole deadline)."""
    return {f"{prefix}_date": (f"{input_id}-date", N_("Date (Gregorian)")),
            f"{prefix}_hijri_day": (f"{input_id}-hday", N_("Date (Hijri, Umm al-Qura)")),
            f"{prefix}_duration": (f"{input_id}-duration", N_("How long from now")),
            f"{prefix}_time": (f"{input_id}-time", N_("Time (Riyadh); the end of the day if empty")),
            f"{prefix}_mode": (f"{input_id}-date", N_("Deadline")),
            prefix: (f"{input_id}-date", N_("Deadline"))}


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
