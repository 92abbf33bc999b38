"""Forms the pages generate and read: a step's form from its JSON Schema, and deadlines typed in the Hijri
or the Gregorian calendar (or as a duration)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from engine.business_calendar import hijri_to_gregorian
from engine.durations import RIYADH
from engine.errors import InvalidInput

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


def read_form(schema: dict[str, Any] | None, form: Any) -> dict[str, Any]:
    """Form fields back into the JSON the schema describes (the engine validates the result)."""
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
                    raise InvalidInput(f"{f.name} must be a number") from None
        elif f.widget == "lines":
            data[f.name] = [line.strip() for line in text.splitlines() if line.strip()]
        elif text:
            try:
                data[f.name] = json.loads(text)
            except json.JSONDecodeError:
                raise InvalidInput(f"{f.name} must be JSON") from None
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
    """
    mode = _text(form, f"{prefix}_mode") or "gregorian"
    clock_text = _text(form, f"{prefix}_time")
    if mode == "duration":
        value = _text(form, f"{prefix}_duration")
        if not value:
            raise InvalidInput("type how long from now, e.g. 48 hours or PT6H")
        return value
    if mode == "hijri":
        try:
            year, month, day = (int(_text(form, f"{prefix}_hijri_{part}") or "0") for part in ("year", "month", "day"))
        except ValueError:
            raise InvalidInput("the Hijri date is year, month and day in numbers") from None
        if not (year and month and day):
            raise InvalidInput("choose the Hijri year, month and day")
        on = hijri_to_gregorian(year, month, day)
    elif mode == "gregorian":
        text = _text(form, f"{prefix}_date")
        if not text:
            raise InvalidInput("choose the deadline's date")
        try:
            on = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"not a date: {text}") from None
    else:
        raise InvalidInput("choose how the deadline is given")
    at = time(23, 59)
    if clock_text:
        try:
            at = time.fromisoformat(clock_text)
        except ValueError:
            raise InvalidInput(f"not a time of day: {clock_text}") from None
    return datetime.combine(on, at, tzinfo=RIYADH)


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
