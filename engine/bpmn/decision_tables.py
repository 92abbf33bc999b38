"""Decision tables (DMN): deployed and versioned as process models are, used by business rule tasks.

A `.dmn` file holds one decision with one table. It is refused whole, with nothing stored, when it is too
large, has a DTD, is not valid DMN, or has an expression the restricted evaluator would refuse (input
expressions, each rule's input and output entries). Identical content is the same version; changed content
is a new version. A model's business rule task is checked at deploy against the deployed decisions, and an
instance runs with the versions that were newest when it started: a changed rule applies to new directives
while running ones keep theirs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from lxml import etree
from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.bpmn import bpmn_runtime, expressions
from engine.bpmn.model_validation import parse_xml, read_limited
from engine.foundation import clock
from engine.foundation.errors import N_, Conflict, ExpressionError, ModelRejected, NotFound, Sentence
from engine.foundation.settings import get_settings
from engine.storage import audit
from engine.storage.db import Base, UTCDateTime

HIT_POLICIES = ("UNIQUE", "FIRST", "COLLECT")
_DMN_NAMESPACES = frozenset(bpmn_runtime.DMN_XSD_PATHS)
_QUESTION = re.compile(r'(\?)(?=(?:[^\'"]|[\'"][^\'"]*[\'"])*$)')  # a `?` outside quotes, as SpiffWorkflow reads it


class DecisionTable(Base):
    __tablename__ = "decision_table"
    __table_args__ = (UniqueConstraint("key", "version"), UniqueConstraint("key", "checksum"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    checksum: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(300))
    dmn_xml: Mapped[str] = mapped_column(Text)
    rule_count: Mapped[int] = mapped_column(Integer)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("decision_table.id"))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deployed_by: Mapped[str] = mapped_column(String(200))


@dataclass(frozen=True)
class TableView:
    """A decision table as people read it: a header of inputs and outputs, one row per rule."""

    hit_policy: str
    inputs: list[str]
    outputs: list[str]
    rules: list[tuple[list[str], list[str]]]


@dataclass(frozen=True)
class Deployment:
    decision: DecisionTable
    created: bool


def subject(key: str) -> str:
    return f"decision:{key}"


def deploy(session: Session, content: bytes, filename: str, deployed_by: str) -> Deployment:
    """Validate and store one DMN file; nothing is stored when it is refused."""
    settings = get_settings()
    key, name, table = validate(content, filename, max_bytes=settings.model_max_bytes,
                                max_elements=settings.model_max_elements)
    checksum = hashlib.sha256(content).hexdigest()
    existing = session.scalar(select(DecisionTable).where(DecisionTable.key == key,
                                                          DecisionTable.checksum == checksum))
    if existing is not None:
        return Deployment(existing, created=False)
    latest = latest_version(session, key)
    decision = DecisionTable(
        key=key, version=latest.version + 1 if latest else 1, name=name[:300], checksum=checksum,
        filename=filename[:300], dmn_xml=content.decode("utf-8"), rule_count=len(table.rules),
        previous_id=latest.id if latest else None, deployed_at=clock.now(), deployed_by=deployed_by)
    try:
        with session.begin_nested():
            session.add(decision)
    except IntegrityError:
        raise Conflict(N_("%(key)s was deployed by someone else at the same moment; try again"),
                       params={"key": key}) from None
    audit.record(session, deployed_by, "decision.deployed", subject(key),
                 {"key": key, "version": decision.version, "checksum": checksum, "filename": decision.filename})
    return Deployment(decision, created=True)


def validate(content: bytes, filename: str, *, max_bytes: int, max_elements: int) -> tuple[str, str, TableView]:
    """The decision's id, its name and its table, or ModelRejected naming what is wrong."""
    root, _count = read_limited(content, filename, max_bytes=max_bytes, max_elements=max_elements)
    namespace = etree.QName(root).namespace
    if etree.QName(root).localname != "definitions" or namespace not in _DMN_NAMESPACES:
        raise ModelRejected(N_("%(file)s: not a DMN file (the root must be dmn:definitions of DMN 1.1 to 1.3)"),
                            params={"file": filename})
    schema = _schema(namespace)
    if not schema.validate(root):
        error = schema.error_log[0]
        raise ModelRejected(N_("%(file)s: not valid DMN at line %(line)s: %(reason)s"),
                            params={"file": filename, "line": str(error.line), "reason": error.message})
    decisions = root.findall(f"{{{namespace}}}decision")
    if len(decisions) != 1:
        raise ModelRejected(N_("%(file)s: a DMN file holds exactly one decision, not %(count)s"),
                            params={"file": filename, "count": len(decisions)})
    decision = decisions[0]
    tables = decision.findall(f"{{{namespace}}}decisionTable")
    if len(tables) != 1:
        raise ModelRejected(N_("%(file)s: the decision %(decision)s needs exactly one decision table"),
                            params={"file": filename, "decision": decision.get("id")}, element_id=decision.get("id"))
    table = _read_table(tables[0], namespace)
    _check_expressions(tables[0], namespace, filename)
    return decision.get("id"), decision.get("name") or decision.get("id"), table


def table_view(decision: DecisionTable) -> TableView:
    root = parse_xml(decision.dmn_xml.encode("utf-8"), decision.filename)
    namespace = etree.QName(root).namespace
    return _read_table(root.find(f"{{{namespace}}}decision/{{{namespace}}}decisionTable"), namespace)


def _read_table(table: etree._Element, ns: str) -> TableView:
    hit_policy = (table.get("hitPolicy") or "UNIQUE").upper()
    if hit_policy not in HIT_POLICIES:
        raise ModelRejected(N_("hit policy %(policy)s is not supported (only %(known)s)"),
                            params={"policy": hit_policy, "known": ", ".join(HIT_POLICIES)}, element_id=table.get("id"))
    inputs = [i.get("label") or _text(i.find(f"{{{ns}}}inputExpression"), ns) for i in table.findall(f"{{{ns}}}input")]
    outputs = [o.get("label") or o.get("name") or "" for o in table.findall(f"{{{ns}}}output")]
    rules = []
    for rule in table.findall(f"{{{ns}}}rule"):
        rules.append(([_text(e, ns) or "-" for e in rule.findall(f"{{{ns}}}inputEntry")],
                      [_text(e, ns) for e in rule.findall(f"{{{ns}}}outputEntry")]))
    return TableView(hit_policy, inputs, outputs, rules)


def _text(element: etree._Element | None, ns: str) -> str:
    if element is None:
        return ""
    text = element.find(f"{{{ns}}}text")
    return (text.text or "").strip() if text is not None else ""


def _check_expressions(table: etree._Element, ns: str, filename: str) -> None:
    """Every expression of the table as the runtime will evaluate it, through the restricted evaluator."""
    inputs = []
    for element in table.findall(f"{{{ns}}}input"):
        source = _text(element.find(f"{{{ns}}}inputExpression"), ns)
        if not source:
            raise ModelRejected(N_("%(file)s: input %(input)s needs an input expression"),
                                params={"file": filename, "input": element.get("id")}, element_id=element.get("id"))
        _check(source, filename, element.get("id"))
        inputs.append(source)
    for rule in table.findall(f"{{{ns}}}rule"):
        for source, entry in zip(inputs, rule.findall(f"{{{ns}}}inputEntry"), strict=False):
            text = _text(entry, ns)
            if text and text != "-":
                _check(_as_test(source, text), filename, rule.get("id"))
        for entry in rule.findall(f"{{{ns}}}outputEntry"):
            text = _text(entry, ns)
            if text:
                _check(text, filename, rule.get("id"))


def _as_test(input_expression: str, entry: str) -> str:
    """The expression SpiffWorkflow's DMN engine builds from an input entry (a value, `< 5`, `4 < ? < 6`)."""
    if _QUESTION.search(entry):
        return _QUESTION.sub("dmninputexpr", entry)
    try:
        compile(entry, "<entry>", "eval")
    except SyntaxError:
        return f"{input_expression} {entry}"
    return f"({input_expression}) == ({entry})"


def _check(source: str, filename: str, element_id: str | None) -> None:
    try:
        expressions.check(source)
    except ExpressionError as exc:
        raise ModelRejected(N_("%(file)s: %(reason)s"), params={"file": filename, "reason": Sentence.of(exc)},
                            element_id=element_id) from None


@lru_cache(maxsize=4)
def _schema(namespace: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(Path(bpmn_runtime.DMN_XSD_PATHS[namespace]))))


_LATEST = (select(DecisionTable).where(DecisionTable.key == bindparam("key"))
           .order_by(DecisionTable.version.desc()).limit(1))


def latest_version(session: Session, key: str) -> DecisionTable | None:
    return session.scalar(_LATEST, {"key": key})


def latest_versions(session: Session, keys: list[str]) -> dict[str, int]:
    """The newest version of each decision named (those not deployed are left out)."""
    if not keys:
        return {}
    rows = session.execute(select(DecisionTable.key, func.max(DecisionTable.version))
                           .where(DecisionTable.key.in_(keys)).group_by(DecisionTable.key))
    return {key: version for key, version in rows}


def get_decision(session: Session, key: str, version: int | None = None) -> DecisionTable:
    if version is None:
        decision = latest_version(session, key)
    else:
        decision = session.scalar(select(DecisionTable).where(DecisionTable.key == key,
                                                              DecisionTable.version == version))
    if decision is None:
        if version is None:
            raise NotFound(N_("no decision table %(key)s"), params={"key": repr(key)})
        raise NotFound(N_("no decision table %(key)s version %(version)s"),
                       params={"key": repr(key), "version": str(version)})
    return decision


def list_decisions(session: Session) -> list[DecisionTable]:
    latest = (select(DecisionTable.key, func.max(DecisionTable.version).label("version"))
              .group_by(DecisionTable.key).subquery())
    return list(session.scalars(
        select(DecisionTable).join(latest, (DecisionTable.key == latest.c.key)
                                   & (DecisionTable.version == latest.c.version)).order_by(DecisionTable.key)))


def list_versions(session: Session, key: str) -> list[DecisionTable]:
    return list(session.scalars(select(DecisionTable).where(DecisionTable.key == key)
                                .order_by(DecisionTable.version)))
