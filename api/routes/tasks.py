"""The caller's inbox and the work on one step: claim, progress (with evidence), complete (with
evidence), ask for more time. Only the entity or role a step is addressed to may work it."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from sqlalchemy.orm import Session

from api.deps import Caller, CurrentUser, State, requires
from api.problems import documented
from api.schemas.common import MAX_ID, SEARCH_HELP, Page
from api.schemas.directives import DirectiveOut, EvidenceOut, ExtensionRequest, Priority
from api.schemas.tasks import TaskComplete, TaskCompleted, TaskDetail, TaskOut, TaskProgress
from api.settings import ApiSettings
from api.views import directive_out, evidence_out, open_steps_out, page_total, season_years, task_out
from engine.directives import access, directives, evidence_store, steps
from engine.directives import inbox as inbox_list
from engine.directives.evidence_store import CheckedFile
from engine.foundation.errors import N_, Conflict, InvalidInput, NotFound
from engine.people.roles import ADMIN
from engine.work import instances, work_items
from engine.work.work_items import OPEN, WorkItem

router = APIRouter(tags=["tasks"])
TaskId = Annotated[int, Path(ge=1, le=MAX_ID)]
Files = Annotated[list[UploadFile], File(description="Evidence files: PDF, PNG, JPEG, XLSX, DOCX or plain text.")]


@router.get("/tasks", operation_id="listTasks", response_model=Page[TaskOut], responses=documented(401, 403, 422, 503))
def inbox(
    state: State,
    caller: Annotated[CurrentUser, requires("task.work")],
    status: Literal["open", "completed", "withdrawn", "all"] = "open",
    overdue: bool | None = None,
    directive: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    element: Annotated[str | None, Query(max_length=200)] = None,
    priority: Priority | None = None,
    q: Annotated[str | None, Query(max_length=200, description=SEARCH_HELP)] = None,
    sort: Annotated[Literal["due", "level", "age", "entity"] | None,
                    Query(description="due: the step's due moment; level: its directive's escalation level; age: "
                                      "since the step opened; entity: the entity it is addressed to. Ties by id. "
                                      "Default: due first (undated last).")] = None,
    order: Annotated[Literal["asc", "desc"], Query(description="The direction of `sort`.")] = "asc",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[TaskOut]:
    """Steps addressed to the caller's entity (entity users) or role; due and overdue first unless sorted."""
    filters = inbox_list.InboxFilters(status=status, overdue=overdue, directive=directive, element=element,
                                      priority=priority, text=q, sort=sort, descending=order == "desc")
    with state.db.reading() as session:
        rows, counted = inbox_list.search(session, caller, filters, limit, offset)
        total = page_total(session, counted, len(rows), limit, offset)
        return Page(items=[task_out(item, d) for item, d in rows], total=total, limit=limit, offset=offset)


def _visible_item(session: Session, caller: CurrentUser, item_id: int) -> WorkItem:
    item = session.get(WorkItem, item_id)
    if item is None or not access.can_see_item(session, caller, item):
        raise NotFound(N_("no step %(step)s"), params={"step": str(item_id)})
    return item


def _detail(session: Session, caller: CurrentUser, item: WorkItem) -> TaskDetail:
    directive = access.directive_of_item(session, item, with_lists=False)
    base = task_out(item, directive)
    return TaskDetail(**base.model_dump(), form_schema=item.form_schema, completion_data=item.completion_data,
                      evidence=[evidence_out(e) for e in evidence_store.of_work_item(session, item.id)],
                      can_act=access.can_act_on_item(caller, item, access.entity_code(session, caller)))


@router.get("/tasks/{task_id}", operation_id="getTask",
            response_model=TaskDetail, responses=documented(401, 404, 422, 503))
def read(task_id: TaskId, state: State, caller: Caller) -> TaskDetail:
    """One step with its form schema, its directive, its evidence and whether the caller may work it."""
    with state.db.reading() as session:
        return _detail(session, caller, _visible_item(session, caller, task_id))


@router.post("/tasks/{task_id}/claim", response_model=TaskDetail, responses=documented(401, 403, 404, 409, 422, 503))
def claim_task(task_id: TaskId, state: State, caller: Caller) -> TaskDetail:
    """Take the step so colleagues see who works on it (claiming one's own claim again is harmless)."""
    with state.db.transaction() as session:
        steps.workable(session, caller, task_id)
        item = steps.claim(session, task_id, caller.username)
        return _detail(session, caller, item)


@router.post("/tasks/{task_id}/release", response_model=TaskDetail,
             responses=documented(401, 403, 404, 409, 422, 503))
def release_task(task_id: TaskId, state: State, caller: Caller) -> TaskDetail:
    """Give a claimed step back (administrators may release anyone's claim)."""
    with state.db.transaction() as session:
        steps.workable(session, caller, task_id)
        item = steps.release(session, task_id, caller.username, force=caller.role == ADMIN)
        return _detail(session, caller, item)


def _require_open(session: Session, item: WorkItem, caller: CurrentUser) -> None:
    if item.status != OPEN:
        raise instances.no_longer_open(session, item)
    if caller.role != ADMIN:
        steps.require_not_claimed_by_other(item, caller.username)


def _check_files(settings: ApiSettings, files: list[UploadFile]) -> list[CheckedFile]:
    return evidence_store.check_many(((f.filename, f.file) for f in files), settings.evidence_limits)


def _store(session: Session, state_settings: ApiSettings, caller: CurrentUser, item: WorkItem,
           checked: list[CheckedFile]) -> list[int]:
    directive = access.directive_of_item(session, item)
    rows = evidence_store.store_and_record(
        session, state_settings.home, checked, caller.username, directive_id=directive.id if directive else None,
        work_item_id=item.id, instance_id=item.instance_id)
    return [row.id for row in rows]


@router.post("/tasks/{task_id}/evidence", operation_id="uploadTaskEvidence",
             response_model=list[EvidenceOut], status_code=201,
             responses=documented(401, 403, 404, 409, 413, 415, 422, 503))
def upload_evidence(task_id: TaskId, state: State, caller: Caller, files: Files) -> list[EvidenceOut]:
    """Attach evidence files to an open step (name their ids under `evidence` when completing it)."""
    checked = _check_files(state.settings, files)
    with state.db.transaction() as session:
        item = steps.workable(session, caller, task_id)
        _require_open(session, item, caller)
        ids = _store(session, state.settings, caller, item, checked)
        return [evidence_out(evidence_store.get(session, i)) for i in ids]


@router.post("/tasks/{task_id}/progress", operation_id="reportTaskProgress", response_model=TaskDetail,
             responses=documented(401, 403, 404, 409, 422, 503))
def progress(task_id: TaskId, body: TaskProgress, state: State, caller: Caller) -> TaskDetail:
    """Report how far the work is (0-100 %) with a note."""
    with state.db.transaction() as session:
        item = steps.workable(session, caller, task_id)
        _require_open(session, item, caller)
        item = steps.record_progress(session, task_id, caller.username, body.percent, body.note)
        return _detail(session, caller, item)


@router.post("/tasks/{task_id}/progress/upload", operation_id="reportTaskProgressWithEvidence",
             response_model=TaskDetail,
             responses=documented(401, 403, 404, 409, 413, 415, 422, 503))
def progress_with_evidence(
    task_id: TaskId, state: State, caller: Caller,
    percent: Annotated[int, Form(ge=0, le=100)],
    files: Files,
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> TaskDetail:
    """Report progress with evidence files (multipart/form-data)."""
    if note is not None and "\x00" in note:
        raise InvalidInput("text may not contain NUL characters")
    checked = _check_files(state.settings, files)
    with state.db.transaction() as session:
        item = steps.workable(session, caller, task_id)
        _require_open(session, item, caller)
        ids = _store(session, state.settings, caller, item, checked)
        item = steps.record_progress(session, task_id, caller.username, percent, note, evidence_ids=ids)
        return _detail(session, caller, item)


def _evidence_as_integers(schema: dict[str, Any] | None) -> bool:
    """Whether the step's form lists evidence as integer ids (else as strings, e.g. the shipped models)."""
    evidence = ((schema or {}).get("properties") or {}).get("evidence") or {}
    return isinstance(evidence, dict) and (evidence.get("items") or {}).get("type") == "integer"


def _named_evidence(data: dict[str, Any]) -> list[int]:
    """Evidence ids named in form data: integers, or strings of digits."""
    named = data.get("evidence")
    if not isinstance(named, list):
        return []
    ids = []
    for value in named:
        if isinstance(value, bool):
            continue
        if isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()):
            number = int(value)
            if not 0 < number <= MAX_ID:
                raise InvalidInput(N_("no evidence %(evidence)s was uploaded to this directive"),
                                   params={"evidence": str(value)})
            ids.append(number)
    return ids


def _complete(session: Session, caller: CurrentUser, item: WorkItem, data: dict[str, Any],
              new_evidence: list[int]) -> None:
    _require_open(session, item, caller)
    data = dict(data)
    if new_evidence:
        properties = (item.form_schema or {}).get("properties") or {}
        if item.form_schema is None or "evidence" in properties:
            named = data.get("evidence")
            existing = named if isinstance(named, list) else []
            added = new_evidence if _evidence_as_integers(item.form_schema) else [str(i) for i in new_evidence]
            data["evidence"] = [*existing, *added]
    evidence_store.require_in_instance(session, _named_evidence(data), item.instance_id)
    instances.complete_task(session, item.id, data, caller.username)


def _completed(session: Session, caller: CurrentUser, item: WorkItem) -> TaskCompleted:
    return TaskCompleted(**_detail(session, caller, item).model_dump(),
                         next_steps=open_steps_out(session, caller, item.instance_id))


@router.post("/tasks/{task_id}/complete", operation_id="completeTask", response_model=TaskCompleted,
             responses=documented(401, 403, 404, 409, 422, 503))
def complete(task_id: TaskId, body: TaskComplete, state: State, caller: Caller) -> TaskCompleted:
    """Complete the step with its form data; exactly one of concurrent completions succeeds (409 for the rest).
    The answer carries the instance's open steps after it (`next_steps`, with their forms)."""
    with state.db.transaction() as session:
        item = steps.workable(session, caller, task_id)
        _complete(session, caller, item, body.data, [])  # the engine updates `item` in this session
        return _completed(session, caller, item)


@router.post("/tasks/{task_id}/complete/upload", operation_id="completeTaskWithEvidence", response_model=TaskCompleted,
             responses=documented(401, 403, 404, 409, 413, 415, 422, 503))
def complete_with_evidence(
    task_id: TaskId, state: State, caller: Caller, files: Files,
    data: Annotated[str, Form(max_length=64_000, description="The form data as a JSON object.")] = "{}",
) -> TaskCompleted:
    """Complete the step with evidence files (multipart/form-data); their ids are added to `evidence`. The
    answer carries the instance's open steps after it (`next_steps`)."""
    try:
        parsed = json.loads(data)
    except (json.JSONDecodeError, RecursionError):
        raise InvalidInput("the form data is not JSON") from None
    work_items.check_variables(parsed)  # refuses data nested too deep, before any file is read
    checked = _check_files(state.settings, files)
    with state.db.transaction() as session:
        item = steps.workable(session, caller, task_id)
        _require_open(session, item, caller)
        ids = _store(session, state.settings, caller, item, checked)
        _complete(session, caller, item, parsed, ids)  # the engine updates `item` in this session
        return _completed(session, caller, item)


@router.post("/tasks/{task_id}/extension-request", operation_id="requestTaskExtension",
             response_model=DirectiveOut, status_code=202,
             responses=documented(401, 403, 404, 409, 422, 503))
def extension_request(task_id: TaskId, body: ExtensionRequest, state: State, caller: Caller) -> DirectiveOut:
    """Ask for a later deadline for the directive this step belongs to."""
    with state.db.transaction() as session:
        item = steps.workable(session, caller, task_id)
        _require_open(session, item, caller)
        directive = access.directive_of_item(session, item)
        if directive is None:
            raise Conflict(N_("this step does not belong to a directive"))
        directive = directives.request_extension(session, directive.id, caller.username, body.new_deadline,
                                                 body.reason)
        return directive_out(directive, season_years(session))
