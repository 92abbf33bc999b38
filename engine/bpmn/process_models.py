"""Process models: deployed BPMN versions. Identical content is the same version; changed content
is a new version; running instances keep the version they started on."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.bpmn import bpmn_runtime, decision_tables, service_tasks
from engine.bpmn.model_validation import parse_xml, validate_model
from engine.foundation import clock
from engine.foundation.errors import N_, Conflict, NotFound
from engine.foundation.settings import get_settings
from engine.storage import audit
from engine.storage.db import Base, JSONType, UTCDateTime


class ProcessModel(Base):
    __tablename__ = "process_model"
    __table_args__ = (
        UniqueConstraint("key", "version"),
        UniqueConstraint("key", "checksum"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    name_ar: Mapped[str | None] = mapped_column(String(300))
    name_en: Mapped[str | None] = mapped_column(String(300))
    checksum: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    # Large, and needed only on a cache miss or to draw the diagram: loaded when first read.
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, deferred=True)
    element_count: Mapped[int] = mapped_column(Integer)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("process_model.id"))
    # The decision tables its business rule tasks name, at the versions built into `spec` (newest at deploy).
    decision_versions: Mapped[dict[str, int] | None] = mapped_column(JSONType)
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deployed_by: Mapped[str] = mapped_column(String(200))


@dataclass(frozen=True)
class Deployment:
    model: ProcessModel
    created: bool


def subject(key: str) -> str:
    return f"model:{key}"


def deploy(session: Session, content: bytes, filename: str, deployed_by: str) -> Deployment:
    """Validate and store one BPMN file; nothing is stored when it is refused.

    A new version is recorded in the audit trail (`model.deployed`, by `deployed_by`); identical
    content deploys nothing and records nothing.
    """
    settings = get_settings()
    validated = validate_model(
        content, filename, service_tasks.operation_names(),
        max_bytes=settings.model_max_bytes, max_elements=settings.model_max_elements,
        find_decision=lambda key: _newest_decision(session, key),
    )
    existing = session.scalar(
        select(ProcessModel).where(ProcessModel.key == validated.key, ProcessModel.checksum == validated.checksum)
    )
    if existing is not None:
        return Deployment(existing, created=False)
    latest = latest_version(session, validated.key)
    model = ProcessModel(
        key=validated.key,
        version=(latest.version + 1) if latest else 1,
        name=validated.name,
        name_ar=validated.name_ar,
        name_en=validated.name_en,
        checksum=validated.checksum,
        filename=filename[:300],
        bpmn_xml=validated.xml,
        spec=validated.compiled.to_json(),
        element_count=validated.element_count,
        previous_id=latest.id if latest else None,
        decision_versions=validated.decision_versions or None,
        deployed_at=clock.now(),
        deployed_by=deployed_by,
    )
    try:
        with session.begin_nested():
            session.add(model)
    except IntegrityError:
        raise Conflict(N_("%(key)s was deployed by someone else at the same moment; try again"),
                       params={"key": validated.key}) from None
    # Cached as every other node builds it, from the stored JSON: restoring wires what parsing leaves to the
    # first run (a multi-instance's merge of its children), which an instance migrated here never had.
    _cache_put(model.checksum, bpmn_runtime.CompiledModel.from_json(model.spec))
    audit.record(session, deployed_by, "model.deployed", subject(model.key),
                 {"key": model.key, "version": model.version, "checksum": model.checksum, "filename": model.filename})
    return Deployment(model, created=True)


def _newest_decision(session: Session, key: str) -> tuple[int, str] | None:
    decision = decision_tables.latest_version(session, key)
    return (decision.version, decision.dmn_xml) if decision is not None else None


def deploy_directory(session: Session, directory: Path, deployed_by: str) -> list[tuple[str, str, int, bool]]:
    """Every decision table (`*.dmn`) then every model (`*.bpmn`) of a directory, such as the shipped `bpmn/`:
    (kind, key, version, created) each."""
    done = []
    for path in sorted(directory.glob("*.dmn")):
        table = decision_tables.deploy(session, path.read_bytes(), path.name, deployed_by)
        done.append(("decision", table.decision.key, table.decision.version, table.created))
    for path in sorted(directory.glob("*.bpmn")):
        model = deploy(session, path.read_bytes(), path.name, deployed_by)
        done.append(("model", model.model.key, model.model.version, model.created))
    return done


_LATEST = (select(ProcessModel).where(ProcessModel.key == bindparam("key"))
           .order_by(ProcessModel.version.desc()).limit(1))


def latest_version(session: Session, key: str) -> ProcessModel | None:
    return session.scalar(_LATEST, {"key": key})


def get_model(session: Session, key: str, version: int | None = None) -> ProcessModel:
    if version is None:
        model = latest_version(session, key)
    else:
        model = session.scalar(select(ProcessModel).where(ProcessModel.key == key, ProcessModel.version == version))
    if model is None:
        if version is None:
            raise NotFound(N_("no process model %(key)s"), params={"key": repr(key)})
        raise NotFound(N_("no process model %(key)s version %(version)s"),
                       params={"key": repr(key), "version": str(version)})
    return model


def list_models(session: Session) -> list[ProcessModel]:
    latest = (
        select(ProcessModel.key, func.max(ProcessModel.version).label("version"))
        .group_by(ProcessModel.key)
        .subquery()
    )
    return list(session.scalars(
        select(ProcessModel)
        .join(latest, (ProcessModel.key == latest.c.key) & (ProcessModel.version == latest.c.version))
        .order_by(ProcessModel.key)
    ))


def list_versions(session: Session, key: str) -> list[ProcessModel]:
    return list(session.scalars(select(ProcessModel).where(ProcessModel.key == key).order_by(ProcessModel.version)))


# Compiled specs, shared by all instances of a version: content-addressed, so never stale.
_CACHE_SIZE = 64
_compiled: OrderedDict[str, bpmn_runtime.CompiledModel] = OrderedDict()


def _cache_put(checksum: str, compiled: bpmn_runtime.CompiledModel) -> None:
    _compiled[checksum] = compiled
    _compiled.move_to_end(checksum)
    while len(_compiled) > _CACHE_SIZE:
        _compiled.popitem(last=False)


def compiled_with_decisions(session: Session | None, model: ProcessModel,
                            decision_versions: dict[str, int] | None) -> bpmn_runtime.CompiledModel:
    """The model built with these versions of its decision tables: its own spec when they are the versions
    it was deployed with, else built once per combination from its XML and theirs (then cached)."""
    if not decision_versions or decision_versions == (model.decision_versions or {}):
        return compiled_model(model)
    cache_key = model.checksum + "|" + ",".join(f"{k}={v}" for k, v in sorted(decision_versions.items()))
    compiled = _compiled.get(cache_key)
    if compiled is None:
        if session is None:
            raise RuntimeError(f"{model.key} is built with other decision tables than its own: that needs a session")
        dmn = [parse_xml(decision_tables.get_decision(session, key, version).dmn_xml.encode("utf-8"), f"{key}.dmn")
               for key, version in sorted(decision_versions.items())]
        document = parse_xml(model.bpmn_xml.encode("utf-8"), model.filename)
        parsed = bpmn_runtime.parse_model(document, model.filename, model.key, dmn)
        compiled = bpmn_runtime.CompiledModel.from_json(parsed.to_json())  # wired as a restored spec is
        _cache_put(cache_key, compiled)
    return compiled


def compiled_model(model: ProcessModel) -> bpmn_runtime.CompiledModel:
    compiled = _compiled.get(model.checksum)
    if compiled is None:
        compiled = bpmn_runtime.CompiledModel.from_json(model.spec)
        _cache_put(model.checksum, compiled)
    return compiled
