"""Errors in the reader's language: the API's problem details follow `Accept-Language` (Arabic when preferred,
English otherwise, same `type`/`status`/`code`), every field's problem is a sentence of the catalogue
({field, code, message}, never the validator's output), and every message id the engine marks is translated."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from api.error_text import accepted_language, translate
from engine.foundation.errors import N_, FieldProblems, InvalidInput
from engine.foundation.schema_issues import schema_issues
from tests.test_api_support import World, assert_problem, open_world

ROOT = Path(__file__).resolve().parent.parent
ARABIC_PO = ROOT / "api" / "translations" / "ar" / "LC_MESSAGES" / "messages.po"
LATIN = re.compile(r"[A-Za-z]")
ARABIC = {"Accept-Language": "ar"}


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


def _execute_step(world: World) -> int:
    directive = world.create_directive()
    acknowledge = world.open_step(directive["id"], "acknowledge")
    world.call("housing.user", "POST", f"/api/v1/tasks/{acknowledge}/complete", json={"data": {}})
    return world.open_step(directive["id"], "execute")


def test_a_refused_step_form_in_arabic_and_in_english(world: World):
    step = _execute_step(world)
    url = f"/api/v1/tasks/{step}/complete"
    bad = {"data": {"summary": 42, "extra": True}}
    english = assert_problem(world.call("housing.user", "POST", url, json=bad), 422, "invalid-input")
    arabic = assert_problem(world.call("housing.user", "POST", url, json=bad, headers=ARABIC), 422, "invalid-input")
    assert english["title"] == "Invalid input" and arabic["title"] == "مدخلات غير صالحة"
    assert english["detail"] == "the form data does not match the step's form"
    assert arabic["detail"] == "البيانات المرسلة لا تطابق نموذج المهمة"
    assert english["code"] == arabic["code"] == "invalid-input"
    assert [(e["field"], e["code"]) for e in english["errors"]] == [("extra", "unexpected"), ("summary", "type")]
    assert [(e["field"], e["code"]) for e in arabic["errors"]] == [("extra", "unexpected"), ("summary", "type")]
    assert {e["message"] for e in english["errors"]} == {"This form has no such field.", "Type text here."}
    assert {e["message"] for e in arabic["errors"]} == {"لا يوجد في هذا النموذج حقل بهذا الاسم.", "أدخل نصًا هنا."}

    missing = world.call("housing.user", "POST", url, json={"data": {}}, headers={"Accept-Language": "ar-SA"})
    body = assert_problem(missing, 422, "invalid-input")
    assert missing.headers["content-language"] == "ar"
    assert body["errors"] == [{"field": "summary", "code": "required", "message": "هذا الحقل مطلوب."}]
    empty = assert_problem(world.call("housing.user", "POST", url, json={"data": {"summary": ""}}), 422)
    assert empty["errors"] == [{"field": "summary", "code": "required", "message": "This field may not be empty."}]
    assert world.call("housing.user", "GET", f"/api/v1/tasks/{step}").json()["status"] == "open", "nothing changed"


def test_request_validation_errors_follow_the_language_with_q_values(world: World):
    body = {"title": "", "kind": "memo", "responsible_entity": "housing"}
    arabic = assert_problem(world.call("secretariat", "POST", "/api/v1/directives", json=body,
                                       headers={"Accept-Language": "en;q=0.4, ar;q=0.9"}), 422, "invalid-input")
    english = assert_problem(world.call("secretariat", "POST", "/api/v1/directives", json=body,
                                        headers={"Accept-Language": "ar;q=0.2, en"}), 422, "invalid-input")
    by_field = {e["field"]: e for e in arabic["errors"]}
    assert {"body:title", "body:kind", "body:deadline"} <= set(by_field)
    assert by_field["body:deadline"]["code"] == "required"
    assert by_field["body:deadline"]["message"] == "هذا الحقل مطلوب."
    assert by_field["body:kind"]["code"] == "enum"
    assert by_field["body:title"]["code"] == "min-length"
    for error in arabic["errors"]:
        assert not LATIN.search(error["message"]), error
    assert not LATIN.search(arabic["title"] + arabic["detail"])
    assert {e["field"] for e in english["errors"]} == set(by_field)
    assert english["title"] == "Invalid input"
    assert {e["field"]: e["message"] for e in english["errors"]}["body:deadline"] == "This field is required."


def test_an_engine_refusal_in_arabic_keeps_what_the_user_typed(world: World):
    body = {"title": "t", "kind": "decision", "responsible_entity": "ministry_of_magic", "deadline": "PT6H",
            "process_model_key": "api_flow"}
    english = assert_problem(world.call("secretariat", "POST", "/api/v1/directives", json=body), 422)
    arabic = assert_problem(world.call("secretariat", "POST", "/api/v1/directives", json=body, headers=ARABIC), 422)
    assert english["detail"] == "unknown entity: ministry_of_magic"
    assert arabic["detail"] == "جهة غير معروفة: ministry_of_magic"
    not_found = assert_problem(world.call("viewer", "GET", "/api/v1/directives/424242", headers=ARABIC), 404)
    assert not_found["title"] == "غير موجود" and not_found["type"].endswith("/not-found")


@pytest.mark.parametrize(("header", "language"), [
    (None, "en"), ("", "en"), ("ar", "ar"), ("ar-SA,ar;q=0.9", "ar"), ("en-GB,en;q=0.9,ar;q=0.8", "en"),
    ("fr, ar;q=0.5", "ar"), ("ar;q=0, en;q=0.1", "en"), ("*", "en"), ("ar;q=abc", "en"), ("en, ar", "en"),
])
def test_accept_language(header: str | None, language: str):
    assert accepted_language(header) == language


def test_schema_errors_become_sentences():
    schema = {"type": "object", "required": ["summary", "decision"], "additionalProperties": False, "properties": {
        "summary": {"type": "string", "minLength": 1}, "decision": {"enum": ["accept", "return"]},
        "percent": {"type": "integer", "minimum": 0, "maximum": 100}, "on": {"type": "string", "format": "date"},
        "note": {"type": "string", "maxLength": 3}}}
    issues = schema_issues(schema, {"percent": 150, "note": "long"})
    assert [(i.field, i.code) for i in issues] == [("summary", "required"), ("decision", "required"),
                                                   ("note", "max-length"), ("percent", "maximum")]
    assert translate(issues[3].message_id, issues[3].params, "ar") == "يجب ألا تزيد القيمة على ١٠٠."
    assert issues[2].message == "Type at most 3 characters."
    issues = schema_issues(schema, {"summary": "", "decision": "maybe", "percent": "x", "on": 5})
    assert {(i.field, i.code) for i in issues} == {("summary", "required"), ("decision", "enum"),
                                                   ("percent", "type"), ("on", "type")}


def test_field_problems_refuse_with_every_issue_at_once():
    problems = FieldProblems()
    problems.add("title", "required", N_("Type the directive's title."))
    with problems.checking("files"):
        raise InvalidInput(N_("%(name)s is empty"), params={"name": "empty.pdf"})
    with pytest.raises(InvalidInput) as refused:
        problems.raise_if_any()
    assert [(i.field, i.message) for i in refused.value.fields] == [("title", "Type the directive's title."),
                                                                   ("files", "empty.pdf is empty")]
    assert refused.value.details[1] == {"field": "files", "code": "invalid-input", "message": "empty.pdf is empty"}
    assert translate(refused.value.fields[1].message_id, refused.value.fields[1].params, "ar") == "الملف empty.pdf فارغ"


def _marked_ids(folder: Path) -> set[str]:
    """Every string literal passed to N_ in the Python files under `folder`."""
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "N_" \
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def test_every_engine_message_id_is_in_the_arabic_catalogue():
    with ARABIC_PO.open("rb") as handle:
        catalogue = {m.id: m.string for m in read_po(handle, locale="ar") if m.id}
    marked = _marked_ids(ROOT / "engine") | _marked_ids(ROOT / "api")
    assert len(_marked_ids(ROOT / "engine")) >= 40
    missing = sorted(m for m in marked if not catalogue.get(m))
    assert missing == [], f"not translated: {missing}"
    for message_id in marked:
        placeholders = set(re.findall(r"%\((\w+)\)s", message_id))
        assert placeholders == set(re.findall(r"%\((\w+)\)s", catalogue[message_id])), message_id


def _field_messages(html: str) -> dict[str, str]:
    """The pages' per-field messages: input id -> its text (tags stripped)."""
    found = re.findall(r'<p class="field-error" id="([\w-]+)-error">(.*?)</p>', html, flags=re.S)
    return {name: re.sub(r"<[^>]+>", "", text).strip() for name, text in found}


def _assert_marked(html: str, input_id: str) -> None:
    tag = re.search(rf'<(?:input|select|textarea)[^>]*id="{input_id}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in tag and f'aria-describedby="{input_id}-error"' in tag, tag


def test_the_admin_user_form_names_every_bad_field_in_arabic(world: World):
    from engine.people.users import User
    from tests.ui_support import signed_in

    admin = signed_in(world, "admin", "ar")
    admin.get("/admin/users")
    response = admin.post("/admin/users", {"username": "Bad Name!", "full_name": "مستخدم جديد", "role": "entity_user",
                                           "entity": "", "language": "ar", "password": "short"})
    assert response.status_code == 422
    messages = _field_messages(response.text)
    assert set(messages) == {"u-name", "u-pass", "u-entity"}, messages
    assert messages["u-pass"] == "يجب ألا يقل عدد أحرف كلمة المرور عن ١٠"
    for input_id, text in messages.items():
        _assert_marked(response.text, input_id)
        assert not LATIN.search(text), text
    summary = response.text.split('id="form-error"')[1].split("</div>")[0]
    assert all(f'href="#{input_id}"' in summary for input_id in messages)
    assert 'value="مستخدم جديد"' in response.text, "what was typed stays"
    with world.db.reading() as session:
        assert session.scalar(select(User.id).where(User.full_name == "مستخدم جديد")) is None


def test_the_meeting_form_and_the_import_upload_refuse_in_the_page_language(world: World):
    from tests.ui_support import signed_in

    secretariat = signed_in(world, "secretariat", "ar")
    secretariat.get("/meetings/new")
    response = secretariat.post("/meetings/new", {"number": "x", "title_ar": "", "held_mode": "gregorian",
                                                  "held_date": "", "chair": "أمير المنطقة"})
    assert response.status_code == 422
    messages = _field_messages(response.text)
    assert messages == {"number": "رقم الاجتماع عدد صحيح موجب", "title_ar": "أدخل عنوان الاجتماع بالعربية.",
                        "held-date": "اختر تاريخ الاجتماع."}
    assert 'value="أمير المنطقة"' in response.text
    secretariat.get("/import")
    empty = secretariat.post("/import", files={"file": ("directives.xlsx", b"", "application/octet-stream")})
    assert empty.status_code == 422
    assert _field_messages(empty.text) == {"import-file": "الملف فارغ"}
    _assert_marked(empty.text, "import-file")


def test_a_new_season_with_bad_dates_names_each_one(world: World):
    from tests.ui_support import signed_in

    admin = signed_in(world, "admin", "ar")
    admin.get("/admin/seasons")
    response = admin.post("/admin/seasons", {"hijri_year": "عام", "starts_on": "2026-02-30", "ends_on": "",
                                             "calendar_mode": "season", "holidays": "2026-05-27"})
    assert response.status_code == 422
    assert _field_messages(response.text) == {"n-year": "السنة الهجرية للموسم رقم، مثل ١٤٤٧",
                                              "n-start": "أدخل تاريخًا.", "n-end": "أدخل تاريخًا."}
    _assert_marked(response.text, "n-start")


# --- refusals with their parameters: statuses as words, people by name, in the reader's language ------------

def _named(world: World, username: str, full_name: str) -> None:
    from engine.people import users

    with world.db.transaction() as session:
        users.update_user(session, username, "admin", full_name=full_name)


def _instance_of(world: World, directive_id: int) -> int:
    from engine.directives.directives import Directive

    with world.db.reading() as session:
        return session.scalar(select(Directive.instance_id).where(Directive.id == directive_id))


def test_a_step_done_already_names_who_did_it_and_its_status_in_the_readers_language(world: World):
    _named(world, "housing.user", "مستخدم الإسكان")
    directive = world.create_directive()
    step = world.open_step(directive["id"], "acknowledge")
    url = f"/api/v1/tasks/{step}/complete"
    assert world.call("housing.user", "POST", url, json={"data": {}}).status_code == 200
    english = assert_problem(world.call("housing.user", "POST", url, json={"data": {}}), 409, "conflict")
    arabic = assert_problem(world.call("housing.user", "POST", url, json={"data": {}}, headers=ARABIC), 409)
    assert english["detail"] == f"step {step} is already completed by مستخدم الإسكان"
    assert arabic["detail"] == f"المهمة {step} حالتها من قبل: مكتملة، على يد مستخدم الإسكان"
    assert "housing.user" not in arabic["detail"] + english["detail"]


def test_a_step_someone_else_took_names_them_on_the_page(world: World):
    from engine.people import users
    from tests.test_api_support import PASSWORD
    from tests.ui_support import signed_in

    with world.db.transaction() as session:
        users.create_user(session, "housing.other", PASSWORD, "entity_user", entity_code="housing",
                          full_name="سعد الحربي")
    step = world.open_step(world.create_directive()["id"], "acknowledge")
    assert signed_in(world, "housing.other", "ar").post(f"/steps/{step}/claim", {}).status_code == 303
    me = signed_in(world, "housing.user", "ar")
    me.get(f"/steps/{step}")
    page = me.post(f"/steps/{step}/complete", {})
    assert page.status_code == 409 and "هذه المهمة استلمها سعد الحربي" in page.text
    claimed = assert_problem(world.call("housing.user", "POST", f"/api/v1/tasks/{step}/complete", json={"data": {}},
                                        headers=ARABIC), 409)
    assert claimed["detail"] == f"المهمة {step} استلمها سعد الحربي"


def test_a_directive_or_an_instance_already_ended_says_so_in_arabic(world: World):
    directive = world.create_directive()
    url = f"/api/v1/directives/{directive['id']}/cancel"
    assert world.call("secretariat", "POST", url, json={"reason": "دُمج في توجيه آخر"}).status_code == 200
    english = assert_problem(world.call("secretariat", "POST", url, json={"reason": "مرة أخرى"}), 409)
    arabic = assert_problem(world.call("secretariat", "POST", url, json={"reason": "مرة أخرى"}, headers=ARABIC), 409)
    reference = directive["reference"]
    assert english["detail"] == f"directive {reference} is already cancelled"
    assert arabic["detail"] == f"التوجيه {reference} حالته من قبل: ملغاة"
    instance = _instance_of(world, directive["id"])
    again = assert_problem(world.call("admin", "POST", f"/api/v1/instances/{instance}/cancel", headers=ARABIC), 409)
    assert again["detail"] == f"العملية {instance} حالتها من قبل: ملغاة"
    retry = assert_problem(world.call("admin", "POST", f"/api/v1/instances/{instance}/retry"), 409)
    assert retry["detail"] == f"instance {instance} is cancelled, not in incident"


def test_the_operations_and_model_pages_refuse_in_arabic(world: World):
    from tests.ui_support import signed_in

    instance = _instance_of(world, world.create_directive()["id"])
    admin = signed_in(world, "admin", "ar")
    admin.get(f"/admin/instances/{instance}")
    retry = admin.post(f"/admin/instances/{instance}/retry", {"mode": "as_is"})
    assert retry.status_code == 409
    assert f"حالة العملية {instance}: جارية، وليست متوقفة بخلل" in retry.text
    assert "not in incident" not in retry.text
    admin.get("/admin/models/api_flow")
    unchosen = admin.post("/admin/models/api_flow/1/migrate", {"to_version": ""})
    assert unchosen.status_code == 422 and "اختر الإصدار المراد النقل إليه" in unchosen.text
    admin.get("/admin/models")
    empty = b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x"/>'
    rejected = admin.post("/admin/models", files={"file": ("empty.bpmn", empty, "application/xml")})
    assert rejected.status_code == 422 and "empty.bpmn: لا توجد عملية في النموذج" in rejected.text
    assert "no process in the model" not in rejected.text


def test_each_row_of_a_bulk_board_action_gives_its_reason_in_the_readers_language(world: World):
    from sqlalchemy import select as query

    from engine.work.escalations import Escalation
    from tests.ui_support import signed_in

    directive = world.escalated_standard_directive()
    with world.db.reading() as session:
        [escalation] = session.scalars(query(Escalation.id).where(Escalation.directive_id == directive["id"]))
    body = {"ids": [escalation, 424242], "action": "reassign", "entity": "housing"}
    english = world.call("supervisor", "POST", "/api/v1/escalations/resolve", json=body).json()
    arabic = world.call("supervisor", "POST", "/api/v1/escalations/resolve", json=body, headers=ARABIC).json()
    reference = directive["reference"]
    assert [r["detail"] for r in english["results"]] == [f"Housing is already responsible for {reference}",
                                                         "no escalation 424242"]
    assert [r["detail"] for r in arabic["results"]] == [f"الإسكان هي الجهة المسؤولة عن {reference} أصلًا",
                                                        "لا يوجد التصعيد 424242"]
    supervisor = signed_in(world, "supervisor", "ar")
    supervisor.get("/escalations")
    page = supervisor.post("/escalations/bulk", [("ids", str(escalation)), ("ids", "424242"), ("action", "reassign"),
                                                 ("entity", "housing")])
    assert page.status_code == 409
    assert f"الإسكان هي الجهة المسؤولة عن {reference} أصلًا" in page.text and "لا يوجد التصعيد 424242" in page.text
    assert "already responsible" not in page.text


def test_the_public_form_shows_every_field_error_with_a_refused_token(world: World):
    from engine.feedback import FeedbackItem
    from tests.ui_support import Browser

    pilgrim = Browser(world, "ar")
    token = re.search(r'name="token" value="([^"]+)"', pilgrim.get("/public/feedback").text).group(1)
    too_quick = pilgrim.post("/public/feedback", {"token": token, "service": "housing", "rating": "",
                                                  "text": "المصاعد متعطلة في المسكن", "website": ""})
    assert too_quick.status_code == 422
    assert translate("Choose a rating from 1 to 5.", None, "ar") in too_quick.text
    assert "انتظر بضع ثوانٍ" in too_quick.text, "the token's refusal is shown with the field's"
    assert _field_messages(too_quick.text) == {"pf-rating": translate("Choose a rating from 1 to 5.", None, "ar")}
    with world.db.reading() as session:
        assert session.scalar(select(FeedbackItem.id)) is None, "nothing stored"


def test_listed_reasons_statuses_and_names_are_said_in_the_readers_language():
    from api.error_text import said
    from engine.foundation.errors import Named, Sentence, Term

    reason = Sentence(N_("the instance is %(status)s"), status=Term(N_("cancelled")))
    assert reason == "the instance is cancelled" and said(reason, "en") == "the instance is cancelled"
    assert said(reason, "ar") == "حالة العملية: ملغاة"
    refused = InvalidInput(N_("the instance cannot move to this version: %(reasons)s"), params={"reasons": [
        reason, Sentence(N_("the sub-process %(name)s is not in the new version"), name="review")]})
    assert refused.message == ("the instance cannot move to this version: the instance is cancelled; "
                               "the sub-process review is not in the new version")
    assert translate(refused.message_id, refused.params, "ar") == (
        "لا يمكن نقل العملية إلى هذا الإصدار: حالة العملية: ملغاة؛ العملية الفرعية review ليست في الإصدار الجديد")
    entity = Named("Housing", "الإسكان")
    assert translate(N_("%(entity)s is already responsible for %(reference)s"), {"entity": entity, "reference": "1"},
                     "ar") == "الإسكان هي الجهة المسؤولة عن 1 أصلًا"
