"""Hostile process models: every one is refused at deploy with a clear message, and nothing is stored.

The corpus lives in tests/bpmn/hostile (one attack per file, said in its first comment). Models too
big to commit (5 MB, 10,000 elements) and re-encodings of the DTD attacks are generated here.

Each refusal must name the element that holds the problem, where there is one.
"""

from __future__ import annotations

import re
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func
from sqlalchemy import select as sql_select

from engine.bpmn import bpmn_runtime, model_validation, process_models, service_tasks
from engine.bpmn.process_models import ProcessModel
from engine.foundation.errors import ModelRejected, TansiqError
from engine.foundation.settings import get_settings
from engine.storage.db import Database
from tests.conftest import BPMN_DIR, read_model

HOSTILE_DIR = BPMN_DIR / "hostile"
PWNED = Path("/tmp/pwned")  # what the command-running attacks try to create

DTD_FILES = ("xxe.bpmn", "xxe-parameter-entity.bpmn", "billion-laughs.bpmn", "dtd-only.bpmn", "external-dtd.bpmn")

@dataclass(frozen=True)
class Refusal:
    message: str  # a regular expression the refusal message must match
    element_id: str | None = None  # the element the problem is inside; None when it is not inside one


NOT_ALLOWED = r"'({})' is not allowed"
EXPECTED: dict[str, Refusal] = {
    "script-rce.bpmn": Refusal(NOT_ALLOWED.format("__import__|system"), "run_shell"),
    "script-attribute-escape.bpmn": Refusal(NOT_ALLOWED.format("__class__|__bases__|__subclasses__"), "escape"),
    "script-import-statement.bpmn": Refusal(r"Import is not allowed|'system' is not allowed", "import_os"),
    "script-infinite-loop.bpmn": Refusal(r"While is not allowed", "spin"),
    "huge-power.bpmn": Refusal(
        r"too (big|large|high)|power|\*\*", "power",
    ),
    "prescript-rce.bpmn": Refusal(NOT_ALLOWED.format("__import__|getlogin"), "review"),
    "condition-rce.bpmn": Refusal(NOT_ALLOWED.format("__import__|system"), "f_yes"),
    "timer-rce.bpmn": Refusal(r"'read' is not allowed|unknown function 'open'", "wait_timer"),
    "due-property-rce.bpmn": Refusal(r"'read' is not allowed|unknown function 'open'", "acknowledge"),
    "service-param-rce.bpmn": Refusal(
        NOT_ALLOWED.format(r"__\w+__|system"), "notify_entity"
    ),
    "service-param-unwrapped.bpmn": Refusal(
        NOT_ALLOWED.format("__import__|system"), "notify_entity",
    ),
    "unknown-service-operation.bpmn": Refusal(
        r"unknown service operation 'shell'", "run_command"
    ),
    "message-payload-rce.bpmn": Refusal(NOT_ALLOWED.format("__import__|environ|copy"), "send_report_def"),
    "correlation-rce.bpmn": Refusal(NOT_ALLOWED.format("__import__|system"), "case_ref"),
    "correlation-eval-key.bpmn": Refusal(r"not allowed|unknown", "case_ref"),
    "correlation-documentation.bpmn": Refusal(
        r"not allowed|unknown|correlation", "case_ref"
    ),
    "correlation-comment.bpmn": Refusal(
        r"not allowed|unknown|correlation", "case_ref"
    ),
    "adhoc-completion-eval-key.bpmn": Refusal(
        r"not allowed|unknown|ad hoc", "checks",
    ),
    "conditional-event-rce.bpmn": Refusal(
        NOT_ALLOWED.format("__import__|system"), "wait_until_def",
    ),
    "signal-payload-rce.bpmn": Refusal(
        NOT_ALLOWED.format("__import__|system"), "sig"
    ),
    "data-object-loop.bpmn": Refusal(r"'start' is not a data object", "ref"),
    "bad-form-schema.bpmn": Refusal(r"form schema is not valid JSON Schema", "acknowledge"),
    "unknown-role.bpmn": Refusal(r"unknown role 'hacker'", "acknowledge"),
    "xxe.bpmn": Refusal(r"DTD"),
    "xxe-parameter-entity.bpmn": Refusal(r"DTD"),
    "billion-laughs.bpmn": Refusal(r"DTD"),
    "dtd-only.bpmn": Refusal(r"DTD"),
    "external-dtd.bpmn": Refusal(r"DTD"),
    "malformed.bpmn": Refusal(r"malformed XML at line \d+"),
    "not-bpmn.xml": Refusal(r"root element must be bpmn:definitions"),
    "xsd-invalid.bpmn": Refusal(r"not valid BPMN 2\.0 at line \d+: .*'assignee'", "approve"),
    "xsd-wrong-order.bpmn": Refusal(
        r"not valid BPMN 2\.0 at line \d+: .*outgoing", "compute",
    ),
}


def _hostile_files() -> list[str]:
    return sorted(path.name for path in HOSTILE_DIR.iterdir() if path.is_file())


def _cases() -> Iterator[object]:
    for name in _hostile_files():
        yield pytest.param(name, id=name)


def _stored(db: Database) -> int:
    with db.reading() as session:
        return session.scalar(sql_select(func.count()).select_from(ProcessModel))


def _refuse(db: Database, content: bytes, filename: str) -> ModelRejected:
    """Deploy `content`, which must be refused, and check that nothing was stored or run."""
    with pytest.raises(ModelRejected) as info, db.transaction() as session:
        process_models.deploy(session, content, filename, "attacker")
    assert _stored(db) == 0
    assert not PWNED.exists()
    message = str(info.value)
    assert filename in message  # every refusal names the file
    assert "root:" not in message  # and never quotes /etc/passwd
    return info.value


# The corpus ------------------------------------------------------------------------------------


def test_every_hostile_file_has_an_expectation() -> None:
    files = _hostile_files()
    assert len(files) >= 25
    assert set(files) == set(EXPECTED), "add new hostile files to EXPECTED, and remove deleted ones"


def test_every_hostile_file_says_what_it_attacks() -> None:
    for name in _hostile_files():
        head = (HOSTILE_DIR / name).read_text(encoding="utf-8").splitlines()[:2]
        assert any(line.startswith("<!-- Attacks: ") and line.endswith("-->") for line in head), name
        assert (HOSTILE_DIR / name).stat().st_size < 4_000, f"{name}: keep hostile files small"


@pytest.mark.parametrize("name", list(_cases()))
def test_hostile_model_is_refused_and_nothing_is_stored(db: Database, name: str) -> None:
    refusal = EXPECTED[name]
    error = _refuse(db, (HOSTILE_DIR / name).read_bytes(), name)
    assert re.search(refusal.message, error.message), error.message
    if refusal.element_id is not None:
        assert error.element_id == refusal.element_id, error


# Generated models ------------------------------------------------------------------------------


def _padded_model(total_bytes: int) -> bytes:
    """two-steps.bpmn with a documentation element that brings it to `total_bytes`."""
    model = read_model("two-steps.bpmn")
    marker = b'<bpmn:startEvent id="start">'
    padding = total_bytes - len(model) - len(b"<bpmn:documentation></bpmn:documentation>")
    documentation = b"<bpmn:documentation>" + b"Lorem ipsum dolor sit amet. " * (padding // 28 + 1)
    documentation = documentation[: len(b"<bpmn:documentation>") + padding] + b"</bpmn:documentation>"
    return model.replace(marker, documentation + marker, 1)


def _many_tasks_model(tasks: int) -> bytes:
    """A valid-looking chain start -> t1 -> ... -> tN -> end; four elements per task."""
    nodes = ['<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>']
    flows = []
    for i in range(1, tasks + 1):
        nodes.append(f'<bpmn:task id="t{i}"><bpmn:incoming>f{i - 1}</bpmn:incoming>'
                     f'<bpmn:outgoing>f{i}</bpmn:outgoing></bpmn:task>')
        flows.append(f'<bpmn:sequenceFlow id="f{i - 1}" sourceRef="{"start" if i == 1 else f"t{i - 1}"}" '
                     f'targetRef="t{i}" />')
    nodes.append(f'<bpmn:endEvent id="end"><bpmn:incoming>f{tasks}</bpmn:incoming></bpmn:endEvent>')
    flows.append(f'<bpmn:sequenceFlow id="f{tasks}" sourceRef="t{tasks}" targetRef="end" />')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" '
        'targetNamespace="http://tansiq.example/bpmn">\n'
        '<bpmn:process id="many_tasks" isExecutable="true">\n'
        + "\n".join(nodes + flows)
        + "\n</bpmn:process>\n</bpmn:definitions>\n"
    ).encode()


def _deeply_nested_condition_model(depth: int) -> bytes:
    condition = "not " * depth + "approved"
    return read_model("two-steps.bpmn").replace(
        b'<bpmn:sequenceFlow id="f2" sourceRef="first" targetRef="second" />',
        b'<bpmn:sequenceFlow id="f2" sourceRef="first" targetRef="second">'
        b"<bpmn:conditionExpression>" + condition.encode() + b"</bpmn:conditionExpression></bpmn:sequenceFlow>",
    )


def _utf16(name: str) -> bytes:
    text = (HOSTILE_DIR / name).read_text(encoding="utf-8")
    return text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")


def test_generated_models_are_what_they_claim() -> None:
    assert len(_padded_model(5_000_000)) == 5_000_000
    etree.fromstring(_padded_model(5_000_000))  # well-formed: refused for its size alone
    many = _many_tasks_model(2_500)
    assert sum(1 for _ in etree.fromstring(many).iter()) > 10_000
    assert len(many) < get_settings().model_max_bytes  # refused for its element count alone
    assert b"DOCTYPE" not in _utf16("xxe.bpmn")  # the byte-level DTD check cannot see it


def test_five_megabyte_model_is_refused(db: Database) -> None:
    error = _refuse(db, _padded_model(5_000_000), "huge-5mb.bpmn")
    assert re.search(r"5,000,000 bytes is more than the limit of 2,000,000", error.message), error.message


def test_ten_thousand_element_model_is_refused(db: Database) -> None:
    error = _refuse(db, _many_tasks_model(2_500), "many-elements.bpmn")
    assert re.search(r"10,0\d\d elements is more than the limit of 5,000", error.message), error.message


@pytest.mark.parametrize("name", DTD_FILES)
def test_utf16_dtd_attacks_are_refused(db: Database, name: str) -> None:
    error = _refuse(db, _utf16(name), name)
    assert re.search(r"DTD|malformed XML", error.message), error.message


def test_model_in_another_encoding_is_refused(db: Database) -> None:
    latin1 = (
        read_model("two-steps.bpmn").decode()
        .replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
        .replace('name="Two steps"', 'name="Deux étapes"')
        .encode("latin-1")
    )
    error = _refuse(db, latin1, "latin1.bpmn")
    assert "UTF-8" in error.message


def test_deeply_nested_expression_is_refused(db: Database) -> None:
    error = _refuse(db, _deeply_nested_condition_model(3_000), "deep.bpmn")
    assert error.element_id == "f2"


def test_dtds_are_never_fetched() -> None:
    """The external DTD and parameter entity point at a live loopback server, which must see nothing."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        port = server.getsockname()[1]
        for name in ("external-dtd.bpmn", "xxe-parameter-entity.bpmn"):
            text = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", (HOSTILE_DIR / name).read_text(encoding="utf-8"))
            for content in (text.encode(), text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")):
                with pytest.raises(ModelRejected):
                    model_validation.validate_model(
                        content, name, service_tasks.operation_names(), max_bytes=2_000_000, max_elements=5_000
                    )
        readable, _, _ = select.select([server], [], [], 0.2)
        assert readable == [], "the parser connected to the loopback server"


# Control cases ---------------------------------------------------------------------------------


def test_valid_model_still_deploys(db: Database) -> None:
    with db.transaction() as session:
        deployment = process_models.deploy(session, read_model("two-steps.bpmn"), "two-steps.bpmn", "admin")
    assert deployment.created
    assert _stored(db) == 1


@pytest.mark.parametrize("name", ["script-rce.bpmn", "xxe.bpmn"])
def test_refusal_in_the_same_transaction_stores_neither(db: Database, name: str) -> None:
    with pytest.raises(ModelRejected), db.transaction() as session:
        process_models.deploy(session, read_model("two-steps.bpmn"), "two-steps.bpmn", "admin")
        process_models.deploy(session, (HOSTILE_DIR / name).read_bytes(), name, "admin")
    assert _stored(db) == 0
    assert not PWNED.exists()


# Defence in depth: the runtime must refuse the same payloads if a model ever gets past deploy ----

def _runtime_cases() -> Iterator[object]:
    for name in _hostile_files():
        if b"/tmp/pwned" in (HOSTILE_DIR / name).read_bytes():
            yield pytest.param(name, id=name)


def _refuse_service_call(call: bpmn_runtime.ServiceCall) -> None:
    raise bpmn_runtime.WorkflowFailure(f"test refuses {call.operation!r}", element_id=call.element_id)


@pytest.mark.parametrize("name", list(_runtime_cases()))
def test_runtime_refuses_the_payload_even_without_deploy_checks(name: str, tmp_path: Path) -> None:
    """Compile with SpiffWorkflow alone (skipping Tansiq's rules) and run: the command must not run.

    The payload's target is moved from /tmp/pwned into this test's own directory.
    """
    marker = tmp_path / "pwned"
    content = (HOSTILE_DIR / name).read_bytes().replace(b"/tmp/pwned", str(marker).encode())
    assert b"/tmp/pwned" not in content
    root = etree.fromstring(content)
    process_id = root.find(f"{{{model_validation.BPMN_NS}}}process").get("id")
    compiled = bpmn_runtime.parse_model(root, name, process_id)
    with pytest.raises(TansiqError):
        runtime = bpmn_runtime.Runtime.start(compiled, {}, _refuse_service_call, max_visits=25, max_tasks=2_000)
        runtime.run_engine()
        runtime.fire_timers()
    assert not marker.exists(), f"{name}: the command in the model ran"
