"""Searching free text ("contains", case-insensitive) from an index on both databases.

A search is `column ILIKE '%text%'` over some columns of a table. PostgreSQL answers it from trigram
indexes (pg_trgm, migration 0002 and 0007). SQLite has no index for a pattern with a leading wildcard and
would read every row; there, each searchable table has an FTS5 table with the trigram tokenizer over the
same columns, kept by triggers (migration 0007, `SEARCH_TABLES`), and the same condition is compiled as
`id IN (SELECT rowid FROM <fts> WHERE <fts> MATCH '"text"')`: a phrase of the trigram tokenizer matches
any substring of one column, which is what the ILIKEs OR-ed together match. Trigrams need three
characters: a shorter text is searched with LIKE on SQLite too (it reads every row; two letters select
little anyway).

The choice is made when the statement is compiled for a dialect, so the engine's queries stay one query.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, bindparam, literal_column, or_, select, table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

# Each searchable table's FTS5 table on SQLite, and the columns both index (migration 0007 creates them).
SEARCH_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "directive": ("directive_search", ("reference", "title", "title_en")),
    "pilgrim_feedback": ("pilgrim_feedback_search", ("text_ar", "text_en")),
}
TRIGRAM = 3  # characters a text needs before SQLite's trigram index can answer for it


class _ContainsText(FunctionElement[bool]):
    """Holds two equivalent conditions: the ILIKEs (PostgreSQL) and the FTS5 match (SQLite)."""

    name = "contains_text"
    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # it is a condition already: no `= 1` after it where booleans are integers


@compiles(_ContainsText)
def _as_ilike(element: _ContainsText, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses.clauses[0], **kw)


@compiles(_ContainsText, "sqlite")
def _as_fts_match(element: _ContainsText, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses.clauses[1], **kw)


def contains(id_column: Any, columns: list[Any], text: str) -> ColumnElement[bool]:
    """Rows where one of `columns` (of the table `id_column` is the key of) contains `text`, ignoring case."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    ilike = or_(*(column.ilike(pattern, escape="\\") for column in columns)).self_group()
    if len(text) < TRIGRAM:
        return ilike
    fts_table, indexed = SEARCH_TABLES[id_column.table.name]
    if tuple(column.key for column in columns) != indexed:
        raise ValueError(f"{fts_table} indexes {indexed}, not {[column.key for column in columns]}")
    phrase = '"' + text.replace('"', '""') + '"'
    matching = (select(literal_column("rowid")).select_from(table(fts_table))
                .where(literal_column(fts_table).op("MATCH")(bindparam("phrase", phrase, unique=True))))
    return _ContainsText(ilike, id_column.in_(matching))
