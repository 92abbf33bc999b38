"""Decision tables (DMN): deploy a `.dmn` file, list them, read one as a table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import JSONResponse, Response

from api.deps import CurrentUser, State, requires
from api.problems import documented
from api.routes.process_models import read_model_upload
from api.schemas.decisions import DecisionDeploymentOut, DecisionDetail, DecisionOut, DecisionRuleOut
from api.views import decision_out
from engine.bpmn import decision_tables
from engine.directives.evidence_store import safe_filename

router = APIRouter(tags=["decision tables"])
Key = Annotated[str, Path(min_length=1, max_length=200)]
Version = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.get("/decisions", operation_id="listDecisions",
            response_model=list[DecisionOut], dependencies=[requires("model.read")],
            responses=documented(401, 403, 503))
def list_all(state: State) -> list[DecisionOut]:
    """The newest version of every deployed decision table."""
    with state.db.reading() as session:
        return [decision_out(d) for d in decision_tables.list_decisions(session)]


@router.post("/decisions", operation_id="deployDecision", response_model=DecisionDeploymentOut, status_code=201,
             responses={200: {"model": DecisionDeploymentOut, "description": "Identical content: the same version"},
                        **documented(401, 403, 409, 413, 422, 503)})
def deploy(state: State, file: Annotated[UploadFile, File(description="A DMN 1.1 to 1.3 file, one decision")],
           caller: Annotated[CurrentUser, requires("model.deploy")]) -> JSONResponse:
    """Validate and deploy a decision table (admin). New directives use the newest version of each table
    their model names; running ones keep the version they started with."""
    content = read_model_upload(file, state.settings.model_max_bytes, "decision table")
    with state.db.transaction() as session:
        deployment = decision_tables.deploy(session, content, safe_filename(file.filename or "decision.dmn"),
                                            caller.username)
        body = DecisionDeploymentOut(created=deployment.created, decision=decision_out(deployment.decision))
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if deployment.created else 200)


@router.get("/decisions/{key}", operation_id="getDecision",
            response_model=DecisionDetail, dependencies=[requires("model.read")],
            responses=documented(401, 403, 404, 422, 503))
def detail(key: Key, state: State,
           version: Annotated[int | None, Query(ge=1, le=2_147_483_647, description="Default: the newest.")] = None,
           ) -> DecisionDetail:
    """A decision table as a table (its rules), with every version."""
    with state.db.reading() as session:
        decision = decision_tables.get_decision(session, key, version)
        view = decision_tables.table_view(decision)
        versions = [decision_out(d) for d in decision_tables.list_versions(session, key)]
        return DecisionDetail(**decision_out(decision).model_dump(), hit_policy=view.hit_policy, inputs=view.inputs,
                              outputs=view.outputs, versions=versions,
                              rules=[DecisionRuleOut(inputs=i, outputs=o) for i, o in view.rules])


@router.get("/decisions/{key}/versions/{version}/xml", operation_id="getDecisionXml",
            dependencies=[requires("model.read")],
            response_class=Response,
            responses={200: {"content": {"application/xml": {"schema": {"type": "string"}}},
                             "description": "The DMN XML as deployed"}, **documented(401, 403, 404, 422, 503)})
def xml(key: Key, version: Version, state: State) -> Response:
    with state.db.reading() as session:
        decision = decision_tables.get_decision(session, key, version)
        content, name = decision.dmn_xml, f"{decision.key}-v{decision.version}.dmn"
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in name)
    return Response(content, media_type="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"'})
