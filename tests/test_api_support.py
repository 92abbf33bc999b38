# ruff: noqa: E501  (the inline BPMN model keeps its long XML lines)
"""Shared fixtures and helpers of the API tests (this module holds no tests).

`world` is a season, three entities, one user per role (and a user of a second entity), the test
models deployed, and the app on the test's database behind a TestClient. Users are created with a
cheaper Argon2 setting than production's, only to keep the suite fast.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from api.app import create_app
from api.settings import ApiSettings
from engine.bpmn import process_models
from engine.calendar import seasons
from engine.foundation import clock
from engine.people import entities, users
from engine.people.users import User
from engine.storage.audit import GENESIS, AuditHead
from engine.storage.db import Database
from engine.system.schema import Base
from engine.work.work_items import OPEN, WorkItem
from tests.conftest import deploy_shipped

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx is what the project has
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NOW = datetime(2026, 5, 20, 6, tzinfo=UTC)  # 1447-12-03, in the season
PASSWORD = "correct horse battery staple"
# username -> (role, entity)
PEOPLE: dict[str, tuple[str, str | None]] = {
    "admin": ("admin", None),
    "secretariat": ("secretariat", None),
    "officer": ("follow_up_officer", None),
    "supervisor": ("supervisor", None),
    "leader": ("leadership", None),
    "viewer": ("viewer", None),
    "housing.user": ("entity_user", "housing"),
    "transport.user": ("entity_user", "transport"),
}
ROLES_AND_OUTSIDER = list(PEOPLE)

FLOW_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="defs_api_flow" targetNamespace="http://tansiq.example/bpmn">
  <bpmn:message id="msg_extension" name="extension_requested" />
  <bpmn:process id="api_flow" name="Acknowledge, execute, verify" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="acknowledge" name="Acknowledge">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="role" value="entity_user" />
          <spiffworkflow:property name="assignee_entity" value="responsible_entity" />
          <spiffworkflow:property name="due" value="deadline" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="merge"><bpmn:incoming>f2</bpmn:incoming><bpmn:incoming>f_rework</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:userTask id="execute" name="Execute">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="role" value="entity_user" />
          <spiffworkflow:property name="assignee_entity" value="responsible_entity" />
          <spiffworkflow:property name="due" value="deadline" />
        </spiffworkflow:properties>
        <spiffworkflow:formSchema>{"type": "object", "properties": {"summary": {"type": "string", "minLength": 1, "maxLength": 2000}, "evidence": {"type": "array", "items": {"type": "integer"}}}, "required": ["summary"], "additionalProperties": false}</spiffworkflow:formSchema>
      </bpmn:extensionElements>
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:userTask id="verify" name="Verify">
      <bpmn:extensionElements>
        <spiffworkflow:properties><spiffworkflow:property name="role" value="follow_up_officer" /></spiffworkflow:properties>
        <spiffworkflow:formSchema>{"type": "object", "properties": {"accepted": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 2000}}, "required": ["accepted"], "additionalProperties": false}</spiffworkflow:formSchema>
      </bpmn:extensionElements>
      <bpmn:incoming>f4</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="accepted_gateway" default="f_rework">
      <bpmn:incoming>f5</bpmn:incoming><bpmn:outgoing>f_done</bpmn:outgoing><bpmn:outgoing>f_rework</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="done"><bpmn:incoming>f_done</bpmn:incoming></bpmn:endEvent>

    <bpmn:boundaryEvent id="overdue" name="Deadline passed" attachedToRef="execute" cancelActivity="false">
      <bpmn:outgoing>f_overdue</bpmn:outgoing>
      <bpmn:timerEventDefinition id="overdue_timer"><bpmn:timeDate>deadline</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:serviceTask id="escalate_overdue" name="Escalate to the supervisor">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="escalate" resultVariable="escalation">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="level" type="int" value="1" />
            <spiffworkflow:parameter id="reason" type="str" value="'overdue'" />
            <spiffworkflow:parameter id="entity" type="str" value="responsible_entity" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>f_overdue</bpmn:incoming><bpmn:outgoing>f_escalated</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:endEvent id="escalated"><bpmn:incoming>f_escalated</bpmn:incoming></bpmn:endEvent>

    <bpmn:boundaryEvent id="extension_asked" name="More time asked" attachedToRef="execute" cancelActivity="false">
      <bpmn:outgoing>f_asked</bpmn:outgoing>
      <bpmn:messageEventDefinition id="extension_definition" messageRef="msg_extension">
        <bpmn:extensionElements><spiffworkflow:messageVariable>extension</spiffworkflow:messageVariable></bpmn:extensionElements>
      </bpmn:messageEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:userTask id="review_extension" name="Decide the extension">
      <bpmn:extensionElements>
        <spiffworkflow:properties><spiffworkflow:property name="role" value="supervisor" /></spiffworkflow:properties>
        <spiffworkflow:formSchema>{"type": "object", "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}}, "required": ["approved"]}</spiffworkflow:formSchema>
      </bpmn:extensionElements>
      <bpmn:incoming>f_asked</bpmn:incoming><bpmn:outgoing>f_decided</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="approved_gateway" default="f_refused">
      <bpmn:incoming>f_decided</bpmn:incoming><bpmn:outgoing>f_approved</bpmn:outgoing><bpmn:outgoing>f_refused</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:serviceTask id="extend_deadline" name="Move the deadline">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="change_deadline" resultVariable="extended">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="deadline" type="str" value="extension[&quot;new_deadline&quot;]" />
            <spiffworkflow:parameter id="reason" type="str" value="extension[&quot;reason&quot;]" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>f_approved</bpmn:incoming><bpmn:outgoing>f_extended</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:endEvent id="extension_done"><bpmn:incoming>f_extended</bpmn:incoming><bpmn:incoming>f_refused</bpmn:incoming></bpmn:endEvent>

    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="acknowledge" />
    <bpmn:sequenceFlow id="f2" sourceRef="acknowledge" targetRef="merge" />
    <bpmn:sequenceFlow id="f3" sourceRef="merge" targetRef="execute" />
    <bpmn:sequenceFlow id="f4" sourceRef="execute" targetRef="verify" />
    <bpmn:sequenceFlow id="f5" sourceRef="verify" targetRef="accepted_gateway" />
    <bpmn:sequenceFlow id="f_done" sourceRef="accepted_gateway" targetRef="done">
      <bpmn:conditionExpression>accepted == True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_rework" sourceRef="accepted_gateway" targetRef="merge" />
    <bpmn:sequenceFlow id="f_overdue" sourceRef="overdue" targetRef="escalate_overdue" />
    <bpmn:sequenceFlow id="f_escalated" sourceRef="escalate_overdue" targetRef="escalated" />
    <bpmn:sequenceFlow id="f_asked" sourceRef="extension_asked" targetRef="review_extension" />
    <bpmn:sequenceFlow id="f_decided" sourceRef="review_extension" targetRef="approved_gateway" />
    <bpmn:sequenceFlow id="f_approved" sourceRef="approved_gateway" targetRef="extend_deadline">
      <bpmn:conditionExpression>approved == True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_refused" sourceRef="approved_gateway" targetRef="extension_done" />
    <bpmn:sequenceFlow id="f_extended" sourceRef="extend_deadline" targetRef="extension_done" />
  </bpmn:process>
</bpmn:definitions>
"""


@dataclass
class World:
    db: Database
    client: TestClient
    settings: ApiSettings
    user_ids: dict[str, int] = field(default_factory=dict)

    @property
    def tokens(self):
        return self.client.app.state.tansiq.tokens

    def headers(self, username: str) -> dict[str, str]:
        """A bearer token for `username`, minted directly (signing in over HTTP is tested on its own)."""
        return {"Authorization": f"Bearer {self.tokens.issue(self.user_ids[username])}"}

    def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        response = self.client.post("/api/v1/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def call(self, username: str | None, method: str, url: str, **kwargs: Any):
        headers = dict(kwargs.pop("headers", {}) or {})
        if username is not None:
            headers.update(self.headers(username))
        return self.client.request(method, url, headers=headers, **kwargs)

    def create_directive(self, *, launch: bool = True, by: str = "secretariat", **overrides: Any) -> dict[str, Any]:
        body = {"title": "تجهيز مراكز الاستقبال قبل وصول الحجاج", "title_en": "Prepare the reception centres",
                "kind": "decision", "responsible_entity": "housing", "deadline": "PT6H",
                "process_model_key": "api_flow", "launch": launch}
        body.update(overrides)
        response = self.call(by, "POST", "/api/v1/directives", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def escalated_standard_directive(self) -> dict[str, Any]:
        """A directive on the shipped standard model, two hours late: the timer worker raised level 1."""
        from engine.work import timers

        with self.db.transaction() as session:
            deploy_shipped(session, "directive-standard.bpmn")
        directive = self.create_directive(launch=True, process_model_key="directive_standard", deadline="PT2H")
        clock.set_now(NOW + timedelta(hours=2, minutes=1))
        timers.run_until_idle(self.db)
        return directive

    def open_step(self, directive_id: int, element_id: str) -> int:
        with self.db.reading() as session:
            from engine.directives.directives import Directive

            instance_id = session.scalar(select(Directive.instance_id).where(Directive.id == directive_id))
            ids = session.scalars(select(WorkItem.id).where(WorkItem.instance_id == instance_id,
                                                            WorkItem.element_id == element_id,
                                                            WorkItem.status == OPEN)).all()
        assert len(ids) == 1, f"expected one open {element_id} in directive {directive_id}, found {ids}"
        return ids[0]


def make_settings(home: Any, database_url: str, **overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {"home": home, "database_url": database_url, "secret_key": "k" * 48}
    values.update(overrides)
    return ApiSettings(**values)


def build_world(db: Database, home: Any, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> World:
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock.set_now(NOW)
    with db.transaction() as session:
        process_models.deploy(session, FLOW_BPMN.encode(), "api_flow.bpmn", "tester")
        for name in ("deadline.bpmn", "two-steps.bpmn"):
            deploy_shipped(session, name)
        seasons.create_season(session, 1447, date(2026, 4, 18), date(2026, 7, 16))
        for code, ar, en in (("housing", "الإسكان", "Housing"), ("transport", "النقل", "Transport"),
                             ("civil_defence", "الدفاع المدني", "Civil Defence")):
            entities.create_entity(session, code, ar, en)
        ids = {}
        for username, (role, entity) in PEOPLE.items():
            ids[username] = users.create_user(session, username, PASSWORD, role, entity_code=entity).id
    app_settings = make_settings(home, db.url.render_as_string(hide_password=False), **settings)
    client = TestClient(create_app(app_settings, database=db), raise_server_exceptions=False)
    return World(db=db, client=client, settings=app_settings, user_ids=ids)


@contextmanager
def open_world(db: Database, home: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[World]:
    """Each test module declares its `world` fixture with this (importing a fixture trips the linter)."""
    built = build_world(db, home, monkeypatch, **settings)
    with built.client:
        yield built


@contextmanager
def open_shared_world(database_url: str, home: Path, **settings: Any) -> Iterator[World]:
    """A world for a whole module (one per database), for tables of cases that each arrange their own
    objects. Such a module must not also use the function-scoped `db` fixture, which empties the tables."""
    db = Database(database_url, pool_size=12)
    with db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
        connection.execute(AuditHead.__table__.insert().values(id=1, last_id=0, last_hash=GENESIS))
    try:
        with pytest.MonkeyPatch.context() as monkeypatch, open_world(db, home, monkeypatch, **settings) as built:
            yield built
    finally:
        clock.set_now(None)
        db.dispose()


def assert_problem(response, status: int, kind: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status and body["title"], body
    assert body["type"].startswith("https://tansiq.example/problems/"), body
    if kind is not None:
        assert body["type"] == f"https://tansiq.example/problems/{kind}", body
    return body


# --- files for evidence tests -------------------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def office_file(kind: str = "xlsx", *, extra: dict[str, bytes] | None = None) -> bytes:
    main_part, content_type = {
        "xlsx": ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
        "docx": ("word/document.xml",
                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"),
    }[kind]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml",
                         f'<?xml version="1.0"?><Types><Override PartName="/{main_part}" '
                         f'ContentType="{content_type}"/></Types>')
        archive.writestr(main_part, "<root/>")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def user_id(db: Database, username: str) -> int:
    with db.reading() as session:
        return session.scalar(select(User.id).where(User.username == username))
