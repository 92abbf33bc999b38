"""Errors the engine reports to its callers; adapters map them to HTTP problems or CLI lines."""

from __future__ import annotations


class TansiqError(Exception):
    """Base class: `code` is stable and machine-readable, the message is for people."""

    code = "error"

    def __init__(self, message: str, *, element_id: str | None = None, details: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.element_id = element_id
        self.details = details or []

    def __str__(self) -> str:
        where = f" (element {self.element_id})" if self.element_id else ""
        return f"{self.message}{where}"


class NotFound(TansiqError):
    code = "not-found"


class Conflict(TansiqError):
    """The state changed under the caller: a stale step, an instance already finished, a lost race."""

    code = "conflict"


class InvalidInput(TansiqError):
    code = "invalid-input"


class Forbidden(TansiqError):
    """The caller may see this but not do this (see `engine.access`)."""

    code = "forbidden"


class ModelRejected(TansiqError):
    """A process model failed validation; nothing was stored."""

    code = "model-rejected"


class ExpressionError(TansiqError):
    """An expression was refused by the restricted evaluator or failed while evaluated."""

    code = "expression-error"


class ServiceTaskError(TansiqError):
    code = "service-task-error"
