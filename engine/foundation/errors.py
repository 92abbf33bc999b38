"""Errors the engine reports to its callers; adapters map them to HTTP problems or CLI lines.

An error's message is a message id: English text, marked with `N_` so pybabel extracts it into the
catalogues, with `%(name)s` placeholders filled from its parameters. The engine formats it in English
(`message`); the web pages and the API's problem details translate the id and fill it in the reader's
language. Per-field problems (`fields`) say which input was refused and why, each with its own id. A
parameter that is a word of the catalogue (a status) is given as a `Term` and translated with its message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


def N_(message: str) -> str:
    """Mark a message id for extraction (pybabel -k N_); the adapters translate it."""
    return message


class Term(str):
    """A parameter that is itself a word of the catalogue (a status, an action), so the reader sees it in
    their language too; it reads as its English word wherever it is not translated."""

    @classmethod
    def of(cls, words: Mapping[str, str], code: str) -> Term:
        """The word of `code` in `words` (a status's, a role's); a code without a word reads as itself."""
        return cls(words.get(code, code))


class Named(str):
    """A parameter that is a name kept in both languages (an entity's): it reads as the English name, and
    the adapters show the Arabic one to an Arabic reader."""

    arabic: str

    def __new__(cls, english: str, arabic: str) -> Named:
        name = super().__new__(cls, english)
        name.arabic = arabic
        return name


def format_message(message_id: str, params: Mapping[str, Any]) -> str:
    """A message id with its parameters filled in (unchanged when it has none, or they do not fit). Whole
    numbers are limits and sizes (ids are passed as text): from 1,000 on, with thousands separators; a list
    (of reasons) is joined with semicolons."""
    if not params:
        return message_id
    shown = {name: f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1000
             else "; ".join(map(str, value)) if isinstance(value, list | tuple) else value
             for name, value in params.items()}
    try:
        return message_id % shown
    except (KeyError, TypeError, ValueError):
        return message_id


class Sentence(str):
    """A message id with its parameters, as its English text, for a reason that is listed rather than
    raised (why a row of a bulk action or an instance of a migration was refused): it compares and prints
    as the English text, and the adapters say it in the reader's language from `message_id` and `params`."""

    message_id: str
    params: Mapping[str, Any]

    def __new__(cls, message_id: str, /, **params: Any) -> Sentence:
        said = super().__new__(cls, format_message(message_id, params))
        said.message_id, said.params = message_id, params
        return said

    @classmethod
    def of(cls, exc: TansiqError) -> Sentence:
        return cls(exc.message_id, **exc.params)


@dataclass(frozen=True)
class FieldIssue:
    """What is wrong with one input: its path (`summary`, `deadline`, `files`), a stable code
    (`required`, `maximum`, `empty-file`, ...) and a message id with its parameters."""

    field: str
    code: str
    message_id: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def message(self) -> str:
        return format_message(self.message_id, self.params)

    def as_detail(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class TansiqError(Exception):
    """Base class: `code` is stable and machine-readable, the message is for people."""

    code = "error"

    def __init__(self, message: str, *, element_id: str | None = None, details: list[dict[str, str]] | None = None,
                 params: Mapping[str, Any] | None = None, fields: list[FieldIssue] | None = None):
        self.message_id = message
        self.params = dict(params or {})
        self.fields = list(fields or [])
        self.message = format_message(message, self.params)
        super().__init__(self.message)
        self.element_id = element_id
        self.details = details or [issue.as_detail() for issue in self.fields]

    def __str__(self) -> str:
        where = f" (element {self.element_id})" if self.element_id else ""
        return f"{self.message}{where}"

    def field_issues(self, default_field: str = "") -> list[FieldIssue]:
        """Its per-field problems; an error without any is one problem of `default_field`."""
        if self.fields:
            return self.fields
        return [FieldIssue(default_field, self.code, self.message_id, self.params)]


class NotFound(TansiqError):
    code = "not-found"


class Conflict(TansiqError):
    """The state changed under the caller: a stale step, an instance already finished, a lost race."""

    code = "conflict"


class InvalidInput(TansiqError):
    code = "invalid-input"


class Forbidden(TansiqError):
    """The caller may see this but not do this (see `engine.directives.access`)."""

    code = "forbidden"


class ModelRejected(TansiqError):
    """A process model failed validation; nothing was stored."""

    code = "model-rejected"


class ExpressionError(TansiqError):
    """An expression was refused by the restricted evaluator or failed while evaluated."""

    code = "expression-error"


class ServiceTaskError(TansiqError):
    code = "service-task-error"


SEE_EACH_FIELD = N_("Some of what was typed is not accepted; see the message next to each field.")


class FieldProblems:
    """Every problem of one form, gathered so it is refused whole with all of them at once."""

    def __init__(self) -> None:
        self.issues: list[FieldIssue] = []

    def add(self, field_path: str, code: str, message_id: str, /, **params: Any) -> None:
        self.issues.append(FieldIssue(field_path, code, message_id, params))

    def absorb(self, exc: InvalidInput, field_path: str) -> None:
        """An error raised while reading one input, counted against that input."""
        self.issues.extend(exc.field_issues(field_path))

    @contextmanager
    def checking(self, field_path: str) -> Iterator[None]:
        try:
            yield
        except InvalidInput as exc:
            self.absorb(exc, field_path)

    def has(self, field_path: str) -> bool:
        return any(issue.field == field_path for issue in self.issues)

    def raise_if_any(self, message_id: str | None = None, **params: Any) -> None:
        """Refuse with every issue; the message is the only issue's own, or says to see each field."""
        if not self.issues:
            return
        if message_id is None and len(self.issues) == 1:
            message_id, params = self.issues[0].message_id, dict(self.issues[0].params)
        raise InvalidInput(message_id or SEE_EACH_FIELD, params=params, fields=self.issues)
