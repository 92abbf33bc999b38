"""Directives from Excel: the template to fill in, and the upload that validates every row and then
imports all valid rows or none (the caller's choice), optionally launching them."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from api.deps import CurrentUser, State, requires
from api.problems import MEDIA_TYPE, content_disposition, documented, problem_response
from api.schemas.meetings import ImportErrorOut, ImportReportOut, ImportRowOut
from engine.directives import access, directive_import
from engine.directives.directive_import import ImportReport, RowError
from engine.foundation.errors import N_, InvalidInput

router = APIRouter(tags=["imports"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def error_out(error: RowError) -> ImportErrorOut:
    return ImportErrorOut(row=error.row, column=error.column, field=error.field, header_ar=error.header_ar,
                          header_en=error.header_en, code=error.code, message=error.message, value=error.value)


def report_out(report: ImportReport) -> ImportReportOut:
    return ImportReportOut(
        mode=report.mode, dry_run=report.dry_run, launch=report.launch, season=report.season_year, ok=report.ok,
        total=report.total, valid=report.valid, invalid=report.invalid, imported=report.imported,
        launched=report.launched, seconds=report.seconds, errors=[error_out(e) for e in report.errors],
        rows=[ImportRowOut(row=r.row, status=r.status, reference=r.reference, directive_id=r.directive_id,
                           errors=[error_out(e) for e in r.errors]) for r in report.rows],
    )


@router.get("/imports/directives/template", operation_id="getDirectiveImportTemplate", response_class=Response,
            responses={200: {"content": {XLSX: {}}, "description": "The workbook, as an attachment"},
                       **documented(401, 403, 422, 503)})
def template(state: State, caller: Annotated[CurrentUser, requires("directive.create")],
             lang: Literal["ar", "en"] = "ar") -> Response:
    """The workbook to fill in: Arabic and English headers, drop-down lists (kinds, tracks, priorities,
    entities), and instructions."""
    with state.db.reading() as session:
        content = directive_import.template(session, lang)
    return Response(content, media_type=XLSX, headers={
        "Content-Disposition": content_disposition("tansiq-directives-template.xlsx"),
        "Cache-Control": "private, no-store"})


@router.post("/imports/directives", operation_id="importDirectives", response_model=ImportReportOut,
             responses={**documented(401, 403, 404, 413, 415, 503),
                        422: {"description": "Nothing was imported: the file, its headers or (all or nothing) a row "
                                             "is wrong. `errors` lists each problem by row and column; `report` "
                                             "is the whole report.",
                              "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}})
def upload(
    request: Request,
    state: State,
    caller: Annotated[CurrentUser, requires("directive.create")],
    file: Annotated[UploadFile, File(description="The filled-in workbook (.xlsx).")],
    mode: Annotated[Literal["all_or_nothing", "valid_rows"], Form()] = "all_or_nothing",
    launch: Annotated[bool, Form(description="Launch each imported directive.")] = False,
    dry_run: Annotated[bool, Form(description="Only validate; store nothing.")] = False,
    season: Annotated[int | None, Form(ge=1343, le=1500, description="Hijri year (today's season if omitted).")]
    = None,
) -> ImportReportOut | JSONResponse:
    """Validate every row, then import all of them or none (`all_or_nothing`, a 422 problem listing every
    error when any row is wrong), or the valid rows only (`valid_rows`, the report lists the others).
    A dry run only validates and answers 200 with the report."""
    if launch:
        access.require(caller, "directive.launch")
    data = file.file.read(directive_import.MAX_BYTES + 1)
    if len(data) > directive_import.MAX_BYTES:
        raise InvalidInput(N_("a workbook may be at most %(limit)s bytes"),
                           params={"limit": directive_import.MAX_BYTES})
    with state.db.transaction() as session:
        report = directive_import.import_directives(session, data, caller.username, mode=mode, launch=launch,
                                                    dry_run=dry_run, season_year=season)
    out = report_out(report)
    refused = bool(report.file_errors) or (not dry_run and report.imported == 0 and bool(report.errors))
    if not refused:
        return out
    errors = report.errors
    response = problem_response(
        "invalid-input", f"nothing was imported: {len(errors)} problem(s) in the workbook",
        instance=request.url.path, code="import-refused",
        errors=[{"field": f"row {e.row}" + (f", column {e.column}" if e.column else "") + f" ({e.field})",
                 "message": e.message} for e in errors[:1000]])
    body = json.loads(bytes(response.body))
    body["report"] = json.loads(out.model_dump_json())
    return JSONResponse(body, status_code=422, media_type=MEDIA_TYPE)


@router.get("/imports/directives/columns", operation_id="listDirectiveImportColumns",
            responses=documented(401, 403, 503))
def columns(caller: Annotated[CurrentUser, requires("directive.create")],
            lang: Annotated[Literal["ar", "en"], Query()] = "ar") -> list[dict[str, object]]:
    """The workbook's columns (key, headers, required, help), for a page that explains the template."""
    return [{"key": c.key, "header_ar": c.ar, "header_en": c.en, "required": c.required,
             "help": c.help_ar if lang == "ar" else c.help_en} for c in directive_import.COLUMNS]
