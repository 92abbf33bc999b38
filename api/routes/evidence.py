"""Evidence downloads, only for those who may see the directive; always as an attachment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse

from api.deps import Caller, State
from api.problems import attachment, documented, file_download
from api.schemas.common import MAX_ID
from engine.directives import evidence_store

router = APIRouter(tags=["evidence"])
EvidenceId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/evidence/{evidence_id}", operation_id="downloadEvidence", response_class=StreamingResponse,
            responses={**file_download(sorted(set(evidence_store.CONTENT_TYPES.values())),
                                       "The file, as an attachment"), **documented(401, 404, 422, 503)})
def download(evidence_id: EvidenceId, state: State, caller: Caller) -> StreamingResponse:
    with state.db.reading() as session:
        found = evidence_store.for_download(session, state.settings.home, caller, evidence_id)
    return attachment(state.db, found.file, found.content_type, found.filename)
