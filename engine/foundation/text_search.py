"""Searching free text ("contains") the way people type it, from an index on both databases.

Folding. People type Arabic without hamza on alef, with ه for ة and ي for ى, without (or with) tashkeel and
tatweel, and in Arabic-Indic or ASCII digits. `fold` maps every such variant to one form, and it is the only
implementation: the engine writes each searched column's folded twin (`<column>_folded`, `fold_on_write`),
and `contains` folds the typed text with it before comparing. What is folded:
- Unicode NFKC, then case folding (Latin: `Airport` = `airport`; presentation forms such as ﻻ = لا);
- alef with hamza above or below, alef with madda and alef wasla (أ إ آ ٱ) → ا;
- taa marbuta ة → ه; alef maqsura ى → ي; hamza on waw ؤ → و and on yaa ئ → ي (people type them without
  the hamza; no two words a committee writes differ only there);
- tashkeel (U+064B-U+065F) and the superscript alef (U+0670) removed, as is tatweel ـ (U+0640), and the
  invisible marks a copied text carries (zero-width and direction marks);
- Arabic-Indic digits (٠-٩ and the Persian ۰-۹) → 0-9: a reference typed as ١٤٤٧/٠٠٠١٢ finds 1447/00012.
The standalone hamza ء and Latin accents are kept.

Writing. Every INSERT and UPDATE of a registered table that gives a searched column is completed with its
folded twin by one listener on every Engine (`_fold_written_text`): the unit of work, `write_row`, Core
inserts and updates (bulk import, seeding) all pass through it. A value the listener cannot fold in Python
(an SQL expression, INSERT … SELECT) is refused, so no write path can leave a twin stale. Raw SQL text is
not seen: a migration or a test writing that way writes the twins itself.

Searching. A search is `folded_column LIKE '%folded text%'` over the twins of some columns of a table.
PostgreSQL answers it from trigram indexes on the twins (pg_trgm). SQLite has no index for a pattern with a
leading wildcard and would read every row; there, each searchable table has an FTS5 table with the trigram
tokenizer over the twins, kept by triggers (migrations 0007 and 0011, `SEARCH_TABLES`), and the same
condition is compiled as `id IN (SELECT rowid FROM <fts> WHERE <fts> MATCH '"text"')`: a phrase of the
trigram tokenizer matches any substring of one column, which is what the LIKEs OR-ed together match.
Trigrams need three characters: a shorter text is searched with LIKE on SQLite too (it reads every row; two
letters select little anyway). The choice is made when the statement is compiled for a dialect, so the
engine's queries stay one query.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Insert,
    Select,
    Table,
    TableClause,
    Update,
    bindparam,
    column,
    event,
    literal_column,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import FromClause

from engine.foundation.errors import InvalidInput

# Each searchable table's FTS5 table on SQLite, and the folded columns both index (migration 0011).
SEARCH_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "directive": ("directive_search", ("reference_folded", "title_folded", "title_en_folded")),
    "pilgrim_feedback": ("pilgrim_feedback_search", ("text_ar_folded", "text_en_folded")),
    "meeting": ("meeting_search", ("title_ar_folded", "title_en_folded")),
    "user_account": ("user_account_search", ("username_folded", "full_name_folded", "email_folded")),
}
TRIGRAM = 3  # characters a text needs before SQLite's trigram index can answer for it
FOLDED_SUFFIX = "_folded"

_ALEF = "\u0623\u0625\u0622\u0671"  # أ إ آ ٱ
_REMOVED = [chr(c) for c in range(0x064B, 0x0660)] + [
    "\u0670",  # superscript alef
    "\u0640",  # tatweel
    "\u061C", "\u200B", "\u200C", "\u200D", "\u200E", "\u200F", "\uFEFF",  # invisible and direction marks
]
_FOLDING = str.maketrans(
    {**{a: "\u0627" for a in _ALEF},
     "\u0629": "\u0647",  # ة → ه
     "\u0649": "\u064A",  # ى → ي
     "\u0624": "\u0648",  # ؤ → و
     "\u0626": "\u064A",  # ئ → ي
     **{chr(0x0660 + d): str(d) for d in range(10)},
     **{chr(0x06F0 + d): str(d) for d in range(10)},
     **{mark: None for mark in _REMOVED}}
)


def fold(text: str | None) -> str | None:
    """The one form of `text` that search compares: the same for every way of typing the same words."""
    if text is None:
        return None
    caseless = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return caseless.translate(_FOLDING)


def folded_name(column: str) -> str:
    return column + FOLDED_SUFFIX


# --- writing the folded twins ---------------------------------------------------------------------------

_FOLDED_COLUMNS: dict[FromClause, tuple[str, ...]] = {}  # table: its searched columns, each with a folded twin


def fold_on_write(table_: Table, columns: Iterable[str]) -> None:
    """Register a table whose `columns` each have a `<column>_folded` twin kept by every write."""
    names = tuple(columns)
    missing = [folded_name(c) for c in names if folded_name(c) not in table_.c]
    if missing:
        raise ValueError(f"{table_.name} has no {', '.join(missing)}")
    _FOLDED_COLUMNS[table_] = names


def folded_values(row: Mapping[str, Any] | RowMapping, columns: Iterable[str]) -> dict[str, str | None]:
    """The twins of those `columns` the row gives (for writers that pass the listener: COPY, raw SQL)."""
    return {folded_name(c): fold(row[c]) for c in columns if c in row}


class CannotFold(ValueError):
    """A write gives a searched column in a form the listener cannot fold in Python."""


@event.listens_for(Engine, "before_execute", retval=True)
def _fold_written_text(connection: Connection, statement: Any, multiparams: list[dict[str, Any]],
                       params: dict[str, Any], execution_options: Any) -> tuple[Any, Any, Any]:
    """Complete each INSERT or UPDATE of a registered table with the folded twins of the columns it writes."""
    if not isinstance(statement, (Insert, Update)):
        return statement, multiparams, params
    columns = _FOLDED_COLUMNS.get(statement.table._deannotate())
    if columns is None:
        return statement, multiparams, params
    if isinstance(statement, Insert) and statement.select is not None:
        _refuse_select(statement, columns)
        return statement, multiparams, params
    statement = _with_folded_values(statement, columns)
    multiparams = [_with_folded_params(p, columns) for p in multiparams]
    return statement, multiparams, _with_folded_params(params, columns)


def _with_folded_params(parameters: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    if not parameters or not any(c in parameters for c in columns):
        return parameters
    return {**parameters, **folded_values(parameters, columns)}


def _with_folded_values(statement: Insert | Update, columns: tuple[str, ...]) -> Insert | Update:
    """Values given in the statement itself (`.values(title=...)`): their twins join them."""
    if statement._multi_values:
        raise CannotFold(f"fold the rows of a multi-row INSERT into {_table_name(statement)} yourself: pass them "
                         "as parameters (executemany) instead")
    given = {getattr(key, "key", key): value for key, value in (statement._values or {}).items()}
    twins = {}
    for name in columns:
        if name in given:
            value = given[name]
            if not isinstance(value, BindParameter) or value.callable is not None or value.required:
                raise CannotFold(f"{_table_name(statement)}.{name} is written as an SQL expression: write the value")
            twins[folded_name(name)] = fold(value.value)
    return statement.values(**twins) if twins else statement


def _table_name(statement: Insert | Update) -> str:
    """The name of the table a statement writes: one registered with `fold_on_write`, so a named table."""
    target = statement.table
    if not isinstance(target, TableClause):
        raise TypeError(f"a folded write goes to a table, not to {type(target).__name__}")
    return target.name


def _refuse_select(statement: Insert, columns: tuple[str, ...]) -> None:
    named = set(statement._select_names or ())
    written = {getattr(c, "key", c) for c in named}
    if written & set(columns):
        raise CannotFold(f"INSERT … SELECT into {_table_name(statement)} writes searched columns: fold them in Python")


# --- searching ------------------------------------------------------------------------------------------

class _ContainsText(FunctionElement[bool]):
    """Holds two equivalent conditions: the LIKEs (PostgreSQL) and the FTS5 match (SQLite)."""

    name = "contains_text"
    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # it is a condition already: no `= 1` after it where booleans are integers


@compiles(_ContainsText)
def _as_like(element: _ContainsText, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses.clauses[0], **kw)


@compiles(_ContainsText, "sqlite")
def _as_fts_match(element: _ContainsText, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses.clauses[1], **kw)


def search_text(typed: str | None) -> str:
    """The text a list was asked to search for, stripped ("" for none); refused when the database cannot hold it."""
    text = (typed or "").strip()
    if "\x00" in text:
        raise InvalidInput("the search text may not contain NUL characters")
    return text


def contains(id_column: Any, columns: list[Any], text: str) -> ColumnElement[bool]:
    """Rows where one of the folded `columns` (of the table `id_column` is the key of) contains `text`, folded.

    A text that folds to nothing (tatweel or tashkeel alone) asks for nothing: every row matches."""
    folded = fold(text) or ""
    if not folded:
        return true()
    fts_table, indexed = SEARCH_TABLES[id_column.table.name]
    if tuple(column.key for column in columns) != indexed:
        raise ValueError(f"{fts_table} indexes {indexed}, not {[column.key for column in columns]}")
    pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    like = or_(*(column.like(pattern, escape="\\") for column in columns)).self_group()
    if len(folded) < TRIGRAM:
        return like
    phrase = '"' + folded.replace('"', '""') + '"'
    matching: Select[Any] = (select(literal_column("rowid")).select_from(table(fts_table))
                .where(literal_column(fts_table).op("MATCH")(bindparam("phrase", phrase, unique=True))))
    return _ContainsText(like, id_column.in_(matching))


# --- folding rows already written -----------------------------------------------------------------------

REFOLD_BATCH = 2_000


def refold(connection: Connection, table_name: str, columns: Iterable[str], batch: int = REFOLD_BATCH) -> int:
    """Write the folded twins of `columns` for every row of the table, `batch` rows at a time, by id.

    For migrations: the one that added the twins (0011), and any later one that changes `fold`. It names the
    table by its name, as a migration must (the models may have moved on). Returns the rows written."""
    names = tuple(columns)
    rows = table(table_name, column("id"), *(column(c) for c in names), *(column(folded_name(c)) for c in names))
    read = select(rows.c.id, *(rows.c[c] for c in names)).where(rows.c.id > bindparam("after")).order_by(
        rows.c.id).limit(batch)
    write = rows.update().where(rows.c.id == bindparam("row_id")).values(
        {folded_name(c): bindparam("new_" + folded_name(c)) for c in names})
    after, written = 0, 0
    while chunk := connection.execute(read, {"after": after}).mappings().all():
        connection.execute(write, [{"row_id": r["id"], **{"new_" + k: v for k, v in folded_values(r, names).items()}}
                                   for r in chunk])
        after, written = chunk[-1]["id"], written + len(chunk)
    return written
