"""Evidence downloads, only for those who may see the directive; always as an attachment."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse
from sqlalchemy import select

from api.deps import Caller, State
from api.problems import documented, file_download
from api.schemas.common import MAX_ID
from engine import access, evidence_store
from engine.directives import Directive
from engine.errors import NotFound

router = APIRouter(tags=["evidence"])
EvidenceId = Annotated[int, Path(ge=1, le=MAX_ID)]


def content_disposition(filename: str) -> str:
    ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in " ._-()") else "_" for ch in filename)
    ascii_name = ascii_name.strip() or "evidence"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/evidence/{evidence_id}", response_class=FileResponse,
            responses={**file_download(sorted(set(evidence_store.CONTENT_TYPES.values())),
                                       "The file, as an attachment"), **documented(401, 404, 422, 503)})
def download(evidence_id: EvidenceId, state: State, caller: Caller) -> FileResponse:
    with state.db.reading() as session:
        row = session.get(evidence_store.Evidence, evidence_id)
        if row is None:
            raise NotFound(f"no evidence {evidence_id}")
        directive = session.get(Directive, row.directive_id) if row.directive_id is not None else None
        if directive is None and row.instance_id is not None:
            directive = session.scalar(select(Directive).where(Directive.instance_id == row.instance_id))
        visible = access.can_see_directive(session, caller, directive) if directive else access.reads_all(caller)
        if not visible:
            raise NotFound(f"no evidence {evidence_id}")
        filename, content_type, sha256 = row.filename, row.content_type, row.sha256
    path = evidence_store.path_for(state.settings.home, sha256)
    if not path.is_file():
        raise NotFound(f"the file of evidence {evidence_id} is missing from the store")
    return FileResponse(path, media_type=content_type, headers={
        "Content-Disposition": content_disposition(filename),
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    })
