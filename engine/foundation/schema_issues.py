"""JSON Schema validation errors as sentences: one `FieldIssue` per refused input, named by its path and
said in words a person understands (required, too short, too long, out of range, not a choice, wrong kind,
wrong format), never as the validator's own output."""

from __future__ import annotations

from typing import Any

import jsonschema

from engine.foundation.errors import N_, FieldIssue

FORM = "(form)"

TYPE_MESSAGES = {
    "string": N_("Type text here."),
    "integer": N_("Type a whole number."),
    "number": N_("Type a number."),
    "boolean": N_("Choose yes or no."),
    "array": N_("Give a list of values."),
    "object": N_("Give a group of named values."),
    "null": N_("Leave this field empty."),
}
FORMAT_MESSAGES = {
    "date": N_("Type a date."),
    "date-time": N_("Type a date and a time."),
    "time": N_("Type a time of day."),
    "email": N_("Type an email address."),
    "uri": N_("Type a web address."),
}
REQUIRED = N_("This field is required.")
NOT_EMPTY = N_("This field may not be empty.")
NOT_A_CHOICE = N_("Choose one of the offered values.")
NOT_ACCEPTED = N_("This value is not accepted.")


def _path(error: jsonschema.ValidationError) -> str:
    return "/".join(str(part) for part in error.absolute_path) or FORM


def _limit_issue(field: str, validator: str, limit: Any) -> FieldIssue:
    messages = {
        "minLength": ("min-length", N_("Type at least %(limit)s characters.")),
        "maxLength": ("max-length", N_("Type at most %(limit)s characters.")),
        "minimum": ("minimum", N_("The value must be at least %(limit)s.")),
        "maximum": ("maximum", N_("The value must be at most %(limit)s.")),
        "exclusiveMinimum": ("minimum", N_("The value must be more than %(limit)s.")),
        "exclusiveMaximum": ("maximum", N_("The value must be less than %(limit)s.")),
        "minItems": ("min-items", N_("Give at least %(limit)s values.")),
        "maxItems": ("max-items", N_("Give at most %(limit)s values.")),
    }
    code, message = messages[validator]
    return FieldIssue(field, code, message, {"limit": limit})


def issue_of(error: jsonschema.ValidationError) -> list[FieldIssue]:
    """The sentences for one validation error (`required` names each missing property)."""
    field, validator, expected = _path(error), str(error.validator), error.validator_value
    if validator == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        prefix = "" if field == FORM else field + "/"
        return [FieldIssue(prefix + name, "required", REQUIRED) for name in expected if name not in present]
    if validator == "minLength" and expected == 1:
        return [FieldIssue(field, "required", NOT_EMPTY)]
    if validator in ("minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                     "minItems", "maxItems"):
        return [_limit_issue(field, validator, expected)]
    if validator in ("enum", "const"):
        return [FieldIssue(field, "enum", NOT_A_CHOICE)]
    if validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return [FieldIssue(field, "type", TYPE_MESSAGES.get(str(kinds[0]), NOT_ACCEPTED))]
    if validator == "format":
        return [FieldIssue(field, "format", FORMAT_MESSAGES.get(str(expected), N_("This value is not in the "
                                                                                  "expected form.")))]
    if validator == "pattern":
        return [FieldIssue(field, "pattern", N_("This value is not in the expected form."))]
    if validator in ("additionalProperties", "unevaluatedProperties"):
        return _unexpected(error, field)
    return [FieldIssue(field, validator, NOT_ACCEPTED)]


def _unexpected(error: jsonschema.ValidationError, field: str) -> list[FieldIssue]:
    known = set((error.schema.get("properties") or {}) if isinstance(error.schema, dict) else ())
    extra = [name for name in (error.instance or {}) if name not in known] if isinstance(error.instance, dict) else []
    prefix = "" if field == FORM else field + "/"
    return [FieldIssue(prefix + str(name), "unexpected", N_("This form has no such field.")) for name in extra] or [
        FieldIssue(field, "unexpected", N_("This form has no such field."))]


def schema_issues(schema: dict[str, Any], data: Any) -> list[FieldIssue]:
    """Every problem of `data` against `schema`, in the order of the fields, each input once per code."""
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(map(str, e.path)))
    seen: set[tuple[str, str]] = set()
    issues = []
    for error in errors:
        for issue in issue_of(error):
            if (issue.field, issue.code) not in seen:
                seen.add((issue.field, issue.code))
                issues.append(issue)
    return issues
