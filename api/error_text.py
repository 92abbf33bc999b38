"""Engine errors in the reader's language: a message id translated through the Babel catalogues and its
parameters filled in (numbers with the language's digits), for the web pages and the API's problem details.

The API reads the language from `Accept-Language` (q-values honoured; English unless Arabic is preferred),
the pages from the page's language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.web import i18n
from engine.foundation.errors import N_, FieldIssue, Named, Sentence, TansiqError, Term, format_message
from engine.foundation.schema_issues import FORMAT_MESSAGES, NOT_A_CHOICE, NOT_ACCEPTED, REQUIRED, TYPE_MESSAGES


def accepted_language(header: str | None) -> str:
    """`ar` when the header prefers Arabic (any `ar-*` tag) to English, else `en`; ties go to the first."""
    best, best_q = "en", 0.0
    for part in (header or "").split(","):
        tag, *options = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.lower().split("-")[0]
        if primary in i18n.LANGUAGES and quality > best_q:
            best, best_q = primary, quality
    return best


def _param(value: Any, language: str) -> Any:
    if isinstance(value, Term):
        return i18n.translations(language).gettext(value)
    if isinstance(value, Sentence):
        return said(value, language)
    if isinstance(value, Named):
        return value.arabic if language == "ar" else str(value)
    if isinstance(value, list | tuple):  # reasons, each said in `language`
        return ("؛ " if language == "ar" else "; ").join(str(_param(item, language)) for item in value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):  # limits and sizes, thousands separated from 1,000 (ids are passed as text)
        return i18n.number(value, language) if abs(value) >= 1000 else i18n.digits(value, language)
    if isinstance(value, float):
        return i18n.number(value, language, 0 if value.is_integer() else 2)
    return value


def translate(message_id: str, params: Mapping[str, Any] | None, language: str) -> str:
    """The message in `language`; a message the catalogue lacks stays as the engine wrote it."""
    text = i18n.translations(language).gettext(message_id)
    return format_message(text, {name: _param(value, language) for name, value in (params or {}).items()})


def said(text: str, language: str) -> str:
    """A listed reason in `language` when it is a `Sentence`; other text as it is."""
    if isinstance(text, Sentence):
        return translate(text.message_id, text.params, language)
    return text


def error_text(exc: TansiqError, language: str) -> str:
    return translate(exc.message_id, exc.params, language)


def issue_text(issue: FieldIssue, language: str) -> str:
    return translate(issue.message_id, issue.params, language)


def error_list(exc: TansiqError, language: str) -> list[dict[str, str]]:
    """The problem details' `errors`: every field's problem, {field, code, message}, in `language`."""
    if exc.fields:
        return [{"field": i.field, "code": i.code, "message": issue_text(i, language)} for i in exc.fields]
    return [{"field": str(d.get("field", "")), "code": str(d.get("code") or exc.code),
             "message": translate(str(d.get("message", "")), None, language)[:500]} for d in exc.details]


_PYDANTIC_LIMITS = {  # pydantic error type -> (code, message id, the ctx key holding the limit)
    "string_too_short": ("min-length", N_("Type at least %(limit)s characters."), "min_length"),
    "string_too_long": ("max-length", N_("Type at most %(limit)s characters."), "max_length"),
    "too_short": ("min-items", N_("Give at least %(limit)s values."), "min_length"),
    "too_long": ("max-items", N_("Give at most %(limit)s values."), "max_length"),
    "greater_than_equal": ("minimum", N_("The value must be at least %(limit)s."), "ge"),
    "greater_than": ("minimum", N_("The value must be more than %(limit)s."), "gt"),
    "less_than_equal": ("maximum", N_("The value must be at most %(limit)s."), "le"),
    "less_than": ("maximum", N_("The value must be less than %(limit)s."), "lt"),
}
_PYDANTIC_TYPES = {
    "missing": ("required", REQUIRED), "string_type": ("type", TYPE_MESSAGES["string"]),
    "int_type": ("type", TYPE_MESSAGES["integer"]), "int_parsing": ("type", TYPE_MESSAGES["integer"]),
    "int_from_float": ("type", TYPE_MESSAGES["integer"]), "float_type": ("type", TYPE_MESSAGES["number"]),
    "float_parsing": ("type", TYPE_MESSAGES["number"]), "bool_type": ("type", TYPE_MESSAGES["boolean"]),
    "bool_parsing": ("type", TYPE_MESSAGES["boolean"]), "list_type": ("type", TYPE_MESSAGES["array"]),
    "dict_type": ("type", TYPE_MESSAGES["object"]), "model_type": ("type", TYPE_MESSAGES["object"]),
    "model_attributes_type": ("type", TYPE_MESSAGES["object"]), "literal_error": ("enum", NOT_A_CHOICE),
    "enum": ("enum", NOT_A_CHOICE), "extra_forbidden": ("unexpected", N_("This form has no such field.")),
    "json_invalid": ("json", N_("the request body is not valid JSON")),
    "date_parsing": ("format", FORMAT_MESSAGES["date"]), "date_from_datetime_parsing": ("format",
                                                                                         FORMAT_MESSAGES["date"]),
    "datetime_parsing": ("format", FORMAT_MESSAGES["date-time"]),
    "datetime_from_date_parsing": ("format", FORMAT_MESSAGES["date-time"]),
    "string_pattern_mismatch": ("pattern", N_("This value is not in the expected form.")),
}


def validation_issue(field: str, error: Mapping[str, Any]) -> FieldIssue:
    """One of FastAPI's (pydantic's) validation errors as a sentence of the catalogue."""
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    if kind in ("too_short", "too_long") and context.get("field_type") not in ("List", "Tuple", "Set"):
        kind = "string_" + kind  # a constrained text type reports its length as `too_short` / `too_long`
    if kind in _PYDANTIC_LIMITS:
        code, message, key = _PYDANTIC_LIMITS[kind]
        return FieldIssue(field, code, message, {"limit": context.get(key, "")})
    code, message = _PYDANTIC_TYPES.get(kind, (kind or "invalid", NOT_ACCEPTED))
    return FieldIssue(field, code, message)
