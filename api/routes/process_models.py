from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Path, UploadFile
from fastapi.responses import JSONResponse, Response

from api.deps import CurrentUser, State, requires
from api.problems import ApiProblem, documented
from api.schemas.admin import DeploymentOut, ProcessModelDetail, ProcessModelOut
from api.views import model_out
from engine.bpmn import process_models
from engine.directives.evidence_store import safe_filename

router = APIRouter(tags=["process models"])
Key = Annotated[str, Path(min_length=1, max_length=200)]
Version = Annotated[int, Path(ge=1, le=2_147_483_647)]


def read_model_upload(file: UploadFile, limit: int, what: str) -> bytes:
    """An uploaded model or decision table, refused with 413 past the models' size limit."""
    content = file.file.read(limit + 1)
    if len(content) > limit:
        raise ApiProblem("payload-too-large", f"a {what} may be at most {limit:,} bytes")
    return content


@router.get("/process-models", operation_id="listProcessModels",
            response_model=list[ProcessModelOut], dependencies=[requires("model.read")],
            responses=documented(401, 403, 503))
def list_all(state: State) -> list[ProcessModelOut]:
    """The newest version of every deployed model."""
    with state.db.reading() as session:
        return [model_out(m) for m in process_models.list_models(session)]


@router.post("/process-models", operation_id="deployProcessModel", response_model=DeploymentOut, status_code=201,
             responses={200: {"model": DeploymentOut, "description": "Identical content: the same version"},
                        **documented(401, 403, 409, 413, 422, 503)})
def deploy(state: State, file: Annotated[UploadFile, File(description="A BPMN 2.0 file")],
           caller: Annotated[CurrentUser, requires("model.deploy")]) -> JSONResponse:
    """Validate and deploy a BPMN file (admin). A refused model answers 422 naming the element."""
    content = read_model_upload(file, state.settings.model_max_bytes, "process model")
    name = safe_filename(file.filename or "model.bpmn")
    with state.db.transaction() as session:
        deployment = process_models.deploy(session, content, name, caller.username)
        body = DeploymentOut(created=deployment.created, model=model_out(deployment.model))
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if deployment.created else 200)


@router.get("/process-models/{key}", operation_id="getProcessModel",
            response_model=ProcessModelDetail, dependencies=[requires("model.read")],
            responses=documented(401, 403, 404, 422, 503))
def detail(key: Key, state: State) -> ProcessModelDetail:
    with state.db.reading() as session:
        latest = process_models.get_model(session, key)
        versions = [model_out(m) for m in process_models.list_versions(session, key)]
        return ProcessModelDetail(**model_out(latest).model_dump(), versions=versions)


@router.get("/process-models/{key}/versions/{version}/xml", operation_id="getProcessModelXml",
            dependencies=[requires("model.read")],
            response_class=Response,
            responses={200: {"content": {"application/xml": {"schema": {"type": "string"}}},
                             "description": "The BPMN XML as deployed"}, **documented(401, 403, 404, 422, 503)})
def xml(key: Key, version: Version, state: State) -> Response:
    with state.db.reading() as session:
        model = process_models.get_model(session, key, version)
        content = model.bpmn_xml
        filename = f"{model.key}-v{model.version}.bpmn"
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in filename)
    return Response(content, media_type="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"'})
