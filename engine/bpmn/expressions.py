"""The restricted evaluator for every expression and script a process model carries.

SpiffWorkflow would `eval`/`exec` model text as Python with full builtins. Tansiq evaluates it
with simpleeval instead: no imports, no names or attributes that start with an underscore, only
whitelisted attributes and functions, bounded sizes. Scripts are a tiny statement language on top
(assignments, `if`/`else`, `pass`, `del`), so there are no loops to run away.
"""

from __future__ import annotations

import ast
import copy
import operator
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from numbers import Number
from typing import Any, Literal, SupportsAbs, cast, overload

import simpleeval

from engine.calendar import durations
from engine.calendar.business_calendar import WORKWEEK, BusinessCalendar
from engine.foundation import clock
from engine.foundation.errors import N_, ExpressionError, InvalidInput, Sentence

MAX_SOURCE_LENGTH = 20_000
MAX_LENGTH = 100_000  # characters of a string, items of a list
MAX_INT_BITS = 4_096  # about 1,200 decimal digits: more than any deadline, count or rate needs


def _now() -> str:
    return clock.now().isoformat()


def _is_past(moment: str) -> bool:
    return durations.parse_moment(moment) <= clock.now()


def _seconds_until(moment: str) -> float:
    return (durations.parse_moment(moment) - clock.now()).total_seconds()


def working_days(calendar: Callable[[], BusinessCalendar]) -> Callable[[Any, int], str]:
    """`add_working_days(moment, days)` counted in the calendar `calendar()` gives when it is called: the
    running instance's season's (its mode and holidays), or `WORKWEEK` (Sunday to Thursday) without one."""

    def add_working_days(start: Any, days: int) -> str:
        return durations.iso(calendar().add_working_days(durations.parse_moment(start), days))

    return add_working_days


def _refuse_big(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ExpressionError(N_("a number larger than %(limit)s bits is not allowed"), params={"limit": MAX_INT_BITS})
    if isinstance(value, str | list | tuple | dict | set) and len(value) > MAX_LENGTH:
        raise ExpressionError(N_("a value longer than %(limit)s is not allowed"), params={"limit": MAX_LENGTH})
    return value


def _safe_power(base: Any, exponent: Any) -> Any:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if base.bit_length() * exponent > MAX_INT_BITS:
            raise ExpressionError(N_("%(base)s ** %(exponent)s would be larger than %(limit)s bits"),
                                  params={"base": str(base), "exponent": str(exponent), "limit": MAX_INT_BITS})
    elif isinstance(exponent, Number) and abs(cast(SupportsAbs[float], exponent)) > 10_000:  # the ABC declares no abs
        raise ExpressionError(N_("the exponent %(exponent)s is too large"), params={"exponent": str(exponent)})
    return _refuse_big(base**exponent)


def _safe_mult(left: Any, right: Any) -> Any:
    for sized, times in ((left, right), (right, left)):
        if hasattr(sized, "__len__") and isinstance(times, int) and len(sized) * times > MAX_LENGTH:
            raise ExpressionError(N_("a value longer than %(limit)s is not allowed"), params={"limit": MAX_LENGTH})
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise ExpressionError(N_("a number larger than %(limit)s bits is not allowed"), params={"limit": MAX_INT_BITS})
    return left * right


def _safe_add(left: Any, right: Any) -> Any:
    if hasattr(left, "__len__") and hasattr(right, "__len__") and len(left) + len(right) > MAX_LENGTH:
        raise ExpressionError(N_("a value longer than %(limit)s is not allowed"), params={"limit": MAX_LENGTH})
    return left + right


def _safe_mod(left: Any, right: Any) -> Any:
    if isinstance(left, str | bytes):
        raise ExpressionError(N_("%-formatting of strings is not allowed; use an f-string"))
    return left % right


def _sum(values: Any, start: Any = 0) -> Any:
    items = list(values)
    if not all(isinstance(v, Number) for v in [*items, start]):
        raise ExpressionError(N_("sum() adds numbers only"))
    return sum(items, start)


OPERATORS = dict(simpleeval.DEFAULT_OPERATORS)
OPERATORS.update({ast.Pow: _safe_power, ast.Mult: _safe_mult, ast.Add: _safe_add, ast.Mod: _safe_mod,
                  ast.LShift: simpleeval.safe_lshift, ast.RShift: simpleeval.safe_rshift,
                  ast.BitOr: operator.or_, ast.BitAnd: operator.and_})

# Methods an expression may call, by type: read-only ones whose result is bounded by their input.
_STR_METHODS = frozenset({
    "lower", "upper", "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "rsplit", "splitlines",
    "title", "casefold", "capitalize", "isdigit", "isalpha", "isalnum", "isspace", "isnumeric", "count",
    "find", "rfind", "index", "rindex",
})
ALLOWED_ATTRIBUTES: dict[type, frozenset[str]] = {
    str: _STR_METHODS,
    dict: frozenset({"get", "keys", "values", "items"}),
    list: frozenset({"index", "count"}),
    tuple: frozenset({"index", "count"}),
    int: frozenset(),
    float: frozenset({"is_integer"}),
    bool: frozenset(),
}


LIBRARY: dict[str, Callable[..., Any]] = {
    # dates and durations (moments are ISO strings in UTC)
    "now": _now,
    "add_duration": durations.add_duration,
    "subtract_duration": durations.subtract_duration,
    "add_working_days": working_days(lambda: WORKWEEK),  # the runtime passes the instance's own
    "earliest": durations.earliest,
    "is_past": _is_past,
    "seconds_until": _seconds_until,
    # plain values
    "len": len,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "round": round,
    "abs": abs,
    "min": min,
    "max": max,
    "sum": _sum,
    "sorted": sorted,
    "any": any,
    "all": all,
}
# Functions the runtime adds per evaluation (they need the running instance).
RUNTIME_FUNCTIONS = frozenset({"visits"})
RESERVED_NAMES = frozenset(LIBRARY) | RUNTIME_FUNCTIONS | {"True", "False", "None"}
# Python builtins that must never appear, even as values (a sort key, say): they are not data either.
FORBIDDEN_NAMES = frozenset({
    "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "hasattr", "globals", "locals", "vars",
    "input", "breakpoint", "help", "exit", "quit", "memoryview", "object", "type", "super", "classmethod",
    "staticmethod", "property", "dir", "id",
})

_ALLOWED_ATTRIBUTES = frozenset().union(*ALLOWED_ATTRIBUTES.values())

_EXPRESSION_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression, ast.Name, ast.Load, ast.Constant, ast.UnaryOp, ast.BinOp, ast.BoolOp,
    ast.Compare, ast.IfExp, ast.Call, ast.keyword, ast.Subscript, ast.Attribute, ast.Slice,
    ast.JoinedStr, ast.FormattedValue, ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp,
    ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension, ast.Store,
    ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context,
)
_STATEMENT_NODES: tuple[type[ast.AST], ...] = (ast.Module, ast.Assign, ast.AugAssign, ast.If, ast.Pass, ast.Delete)


def _said(exc: Exception) -> str:
    """An error raised while evaluating, as a reason: the engine's own in the reader's language too."""
    return Sentence.of(exc) if isinstance(exc, InvalidInput) else str(exc)


def _refuse(message: str, source: str, **params: Any) -> ExpressionError:
    """Why `source` is refused (`message` marked with N_, filled from `params`), naming the expression."""
    return ExpressionError(N_("%(reason)s in %(source)s"),
                           params={"reason": Sentence(message, **params), "source": repr(source[:200])})


def _check_tree(tree: ast.AST, source: str, statements: bool) -> None:
    nodes = list(ast.walk(tree))
    for node in nodes:  # names first: the most telling refusal of `__import__('os')...` is the name
        _check_node(node, source)
    allowed = _EXPRESSION_NODES + (_STATEMENT_NODES if statements else ())
    for node in nodes:
        if isinstance(node, ast.Expr):
            raise _refuse(N_("a script is made of assignments (x = ...), if/else, del and pass"), source)
        if not isinstance(node, allowed):
            raise _refuse(N_("%(kind)s is not allowed"), source, kind=type(node).__name__)


def _check_node(node: ast.AST, source: str) -> None:
    if isinstance(node, ast.Name) and (node.id.startswith("_") or node.id in FORBIDDEN_NAMES):
        raise _refuse(N_("the name %(name)s is not allowed"), source, name=repr(node.id))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        _check_constant_power(node, source)
    if isinstance(node, ast.Attribute) and (node.attr.startswith("_") or node.attr not in _ALLOWED_ATTRIBUTES):
        raise _refuse(N_("the attribute %(name)s is not allowed"), source, name=repr(node.attr))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name | ast.Attribute):
            raise _refuse(N_("only named functions and methods may be called"), source)
        if isinstance(node.func, ast.Name) and node.func.id not in LIBRARY and node.func.id not in RUNTIME_FUNCTIONS:
            raise _refuse(N_("unknown function %(name)s"), source, name=repr(node.func.id))
    if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
        raise _refuse(N_("format specifications in f-strings are not allowed"), source)


def _check_constant_power(node: ast.BinOp, source: str) -> None:
    """`10 ** 10 ** 10` is known to be too big from the text alone: refuse it at deploy."""
    try:
        _safe_power(_constant(node.left), _constant(node.right))
    except _NotConstant:
        return
    except (ExpressionError, ArithmeticError) as exc:
        raise _refuse(N_("%(reason)s"), source, reason=getattr(exc, "message", str(exc))) from None


class _NotConstant(Exception):
    pass


def _constant(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _safe_power(_constant(node.left), _constant(node.right))
    raise _NotConstant


@overload
def _parse(source: str, mode: Literal["eval"]) -> ast.Expression: ...
@overload
def _parse(source: str, mode: Literal["exec"]) -> ast.Module: ...
def _parse(source: str, mode: Literal["eval", "exec"]) -> ast.Expression | ast.Module:
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError(N_("empty expression"))
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(N_("expression longer than %(limit)s characters"), params={"limit": MAX_SOURCE_LENGTH})
    try:
        text = source.strip()
        return ast.parse(text, mode="eval") if mode == "eval" else ast.parse(text, mode="exec")
    except SyntaxError as exc:
        raise _refuse(N_("syntax error at line %(line)s: %(reason)s"), source, line=str(exc.lineno),
                      reason=exc.msg) from None
    except (RecursionError, MemoryError):
        raise _refuse(N_("the expression is nested too deeply"), source) from None


def _checked(tree: ast.AST, source: str, statements: bool) -> None:
    try:
        _check_tree(tree, source, statements)
    except (RecursionError, MemoryError):
        raise _refuse(N_("the expression is nested too deeply"), source) from None


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> ast.expr:
    """Parse and check an expression once; the result is cached by its text."""
    tree = _parse(source, "eval")
    _checked(tree, source, statements=False)
    return tree.body


@lru_cache(maxsize=1024)
def compile_script(source: str) -> tuple[ast.stmt, ...]:
    tree = _parse(source, "exec")
    _checked(tree, source, statements=True)
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else (
            [node.target] if isinstance(node, ast.AugAssign) else [])
        for target in targets:
            _check_target(target, source)
    return tuple(tree.body)


def _check_target(target: ast.expr, source: str) -> None:
    root = target
    while isinstance(root, ast.Subscript):
        root = root.value
    if not isinstance(root, ast.Name):
        raise _refuse(N_("only variables and their items may be assigned"), source)
    if root.id in RESERVED_NAMES:
        raise _refuse(N_("%(name)s is a library name and cannot be assigned"), source, name=repr(root.id))


def check(source: str, *, script: bool = False) -> None:
    """Validate without running (used when a model is deployed)."""
    compile_script(source) if script else compile_expression(source)


class _Evaluators(threading.local):
    """Idle evaluators of this thread, to reuse: building one (simpleeval binds ~30 node handlers and
    resets the warning filters) cost more than the evaluation, and SpiffWorkflow evaluates dozens of
    expressions in one timer firing. A stack, because a runtime function may evaluate in turn."""

    def __init__(self) -> None:
        self.idle: list[simpleeval.EvalWithCompoundTypes] = []


_evaluators = _Evaluators()
_COMPOUND_TYPES = {"list": list, "tuple": tuple, "dict": dict, "set": set}  # as EvalWithCompoundTypes adds them


@contextmanager
def _evaluator(
    data: dict[str, Any], extra: Mapping[str, Callable[..., Any]] | None
) -> Iterator[simpleeval.EvalWithCompoundTypes]:
    """An evaluator of this thread bound to `data` and the library (plus `extra`), fresh as a new one."""
    shadowed = sorted(RESERVED_NAMES.intersection(data))
    if shadowed:
        raise ExpressionError(N_("task data shadows library names: %(names)s"), params={"names": ", ".join(shadowed)})
    extra = extra or {}
    if any(function in simpleeval.DISALLOW_FUNCTIONS for function in extra.values()):
        raise ExpressionError(N_("a function given to the evaluator is not allowed"))
    functions = {**LIBRARY, **extra, **_COMPOUND_TYPES}
    idle = _evaluators.idle
    evaluator = idle.pop() if idle else simpleeval.EvalWithCompoundTypes(
        operators=OPERATORS, functions={}, names={}, allowed_attrs=ALLOWED_ATTRIBUTES)
    evaluator.functions, evaluator.names, evaluator._max_count = functions, data, 0
    try:
        yield evaluator
    finally:
        evaluator.functions, evaluator.names = {}, {}  # hold no task data while idle
        idle.append(evaluator)


def _run(evaluator: simpleeval.EvalWithCompoundTypes, node: ast.AST, source: str) -> Any:
    evaluator.expr = source
    try:
        return _refuse_big(evaluator._eval(node))
    except ExpressionError:
        raise
    except (simpleeval.InvalidExpression, InvalidInput) as exc:
        raise _refuse(N_("%(reason)s"), source, reason=_said(exc)) from None
    except (ArithmeticError, LookupError, TypeError, ValueError, MemoryError, RecursionError) as exc:
        raise _refuse(N_("%(kind)s: %(reason)s"), source, kind=type(exc).__name__, reason=str(exc)) from None


def evaluate(source: str, data: Mapping[str, Any], extra: Mapping[str, Callable[..., Any]] | None = None) -> Any:
    node = compile_expression(source)
    with _evaluator(dict(data), extra) as evaluator:
        return _run(evaluator, node, source)


def execute(source: str, data: dict[str, Any], extra: Mapping[str, Callable[..., Any]] | None = None) -> None:
    """Run a script against `data`, changing it in place only if every statement succeeds."""
    statements = compile_script(source)
    scratch = copy.deepcopy(data)
    with _evaluator(scratch, extra) as evaluator:
        for statement in statements:
            _run_statement(evaluator, statement, scratch, source)
    data.clear()
    data.update(scratch)


def _run_statement(evaluator: simpleeval.EvalWithCompoundTypes, node: ast.stmt, data: dict[str, Any],
                   source: str) -> None:
    if isinstance(node, ast.Pass):
        return
    if isinstance(node, ast.If):
        branch = node.body if _run(evaluator, node.test, source) else node.orelse
        for statement in branch:
            _run_statement(evaluator, statement, data, source)
        return
    if isinstance(node, ast.Delete):
        for target in node.targets:
            _assign(evaluator, target, data, source, delete=True)
        return
    if isinstance(node, ast.AugAssign):
        combined = ast.BinOp(left=_as_load(node.target), op=node.op, right=node.value)
        _assign(evaluator, node.target, data, source, _run(evaluator, combined, source))
        return
    if not isinstance(node, ast.Assign):  # compile_script let no other statement through
        raise _refuse(N_("%(kind)s is not allowed"), source, kind=type(node).__name__)
    value = _run(evaluator, node.value, source)
    for target in node.targets:
        _assign(evaluator, target, data, source, value)


def _as_load(target: ast.expr) -> ast.expr:
    clone = ast.parse(ast.unparse(target), mode="eval").body
    return clone


def _assign(evaluator: simpleeval.EvalWithCompoundTypes, target: ast.expr, data: dict[str, Any], source: str,
            value: Any = None, delete: bool = False) -> None:
    if isinstance(target, ast.Name):
        if delete:
            data.pop(target.id, None)
        else:
            data[target.id] = value
        return
    if not isinstance(target, ast.Subscript):  # _check_target let no other target through
        raise _refuse(N_("only variables and their items may be assigned"), source)
    container = _run(evaluator, _as_load(target.value), source)
    key = _run(evaluator, target.slice, source)
    if not isinstance(container, dict | list):
        raise _refuse(N_("only dictionaries and lists take item assignment"), source)
    try:
        if delete:
            del container[key]
        else:
            container[key] = value
    except (LookupError, TypeError) as exc:
        raise _refuse(N_("%(kind)s: %(reason)s"), source, kind=type(exc).__name__, reason=str(exc)) from None
