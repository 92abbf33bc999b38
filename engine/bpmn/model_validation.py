"""Validation of an uploaded BPMN model, before anything is stored.

Order matters: size, then a parser that can neither fetch nor expand anything (no DTD, no
entities), element count, XSD, Tansiq's own rules (expressions, service operations, form
schemas), and last SpiffWorkflow's own parse. Every refusal says what and where (element id).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import jsonschema
from lxml import etree

from engine.bpmn import bpmn_runtime, expressions
from engine.foundation.errors import N_, ExpressionError, ModelRejected, Sentence
from engine.people.roles import ROLES

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
DTD_MARKERS = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)

# Properties of user tasks whose values are expressions, and those that are plain words.
EXPRESSION_PROPERTIES = frozenset({"assignee_entity", "due"})
LITERAL_PROPERTIES = frozenset({"role", "name_ar", "name_en", "reminder", "kind"})


@dataclass(frozen=True)
class ValidatedModel:
    key: str
    name: str
    name_ar: str | None
    name_en: str | None
    checksum: str
    xml: str
    element_count: int
    compiled: bpmn_runtime.CompiledModel
    decision_versions: dict[str, int]


DecisionLookup = Callable[[str], tuple[int, str] | None]
"""A decision's key to its newest deployed version and its DMN XML (None when it is not deployed)."""


def validate_model(
    content: bytes, filename: str, operations: Iterable[str], *, max_bytes: int, max_elements: int,
    find_decision: DecisionLookup | None = None,
) -> ValidatedModel:
    root, count = read_limited(content, filename, max_bytes=max_bytes, max_elements=max_elements)
    if root.tag != f"{{{BPMN_NS}}}definitions":
        raise ModelRejected(N_("%(file)s: the root element must be bpmn:definitions, not %(tag)s"),
                            params={"file": filename, "tag": root.tag})
    _validate_xsd(root, filename)
    process = _main_process(root, filename)
    _check_rules(root, filename, frozenset(operations))
    decisions = _referenced_decisions(root, filename, find_decision or (lambda key: None))
    compiled = bpmn_runtime.parse_model(root, filename, process.get("id"),
                                        [parse_xml(xml.encode("utf-8"), f"{key}.dmn")
                                         for key, (_version, xml) in decisions.items()])
    key = process.get("id")
    return ValidatedModel(
        key=key,
        name=process.get("name") or key,
        name_ar=_process_property(process, "name_ar"),
        name_en=_process_property(process, "name_en"),
        checksum=hashlib.sha256(content).hexdigest(),
        xml=content.decode("utf-8"),
        element_count=count,
        compiled=compiled,
        decision_versions={key: version for key, (version, _xml) in decisions.items()},
    )


def read_limited(content: bytes, filename: str, *, max_bytes: int, max_elements: int) -> tuple[etree._Element, int]:
    """An uploaded XML document (a model or a decision table) within its size and element limits, without a
    DTD; with its element count."""
    if len(content) > max_bytes:
        raise ModelRejected(N_("%(file)s: %(size)s bytes is more than the limit of %(limit)s"),
                            params={"file": filename, "size": len(content), "limit": max_bytes})
    if DTD_MARKERS.search(content):
        raise ModelRejected(N_("%(file)s: DTDs and entity declarations are not accepted"), params={"file": filename})
    root = parse_xml(content, filename)
    count = sum(1 for _ in root.iter())
    if count > max_elements:
        raise ModelRejected(N_("%(file)s: %(count)s elements is more than the limit of %(limit)s"),
                            params={"file": filename, "count": count, "limit": max_elements})
    return root, count


def parse_xml(content: bytes, filename: str) -> etree._Element:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_blank_text=False,
    )
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise ModelRejected(N_("%(file)s: malformed XML at line %(line)s: %(reason)s"),
                            params={"file": filename, "line": str(exc.lineno), "reason": exc.msg}) from None
    if root.getroottree().docinfo.doctype:
        raise ModelRejected(N_("%(file)s: DTDs are not accepted"), params={"file": filename})
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelRejected(N_("%(file)s: models must be UTF-8"), params={"file": filename}) from None
    return root


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(bpmn_runtime.BPMN_XSD_PATH))


def _validate_xsd(root: etree._Element, filename: str) -> None:
    schema = _schema()
    if schema.validate(root):
        return
    error = schema.error_log[0]
    element_id = _id_at_line(root, error.line)
    raise ModelRejected(N_("%(file)s: not valid BPMN 2.0 at line %(line)s: %(reason)s"), element_id=element_id,
                        params={"file": filename, "line": str(error.line), "reason": error.message})


def _id_at_line(root: etree._Element, line: int) -> str | None:
    for element in root.iter():
        if getattr(element, "sourceline", None) == line:
            return _owner_id(element)
    return None


def _main_process(root: etree._Element, filename: str) -> etree._Element:
    processes = root.findall("bpmn:process", NS)
    executable = [p for p in processes if p.get("isExecutable") == "true"] or processes
    if not executable:
        raise ModelRejected(N_("%(file)s: no process in the model"), params={"file": filename})
    if len(executable) > 1:
        ids = ", ".join(p.get("id") for p in executable)
        raise ModelRejected(N_("%(file)s: more than one executable process (%(ids)s); mark one isExecutable"),
                            params={"file": filename, "ids": ids})
    return executable[0]


def _process_property(process: etree._Element, name: str) -> str | None:
    found = process.xpath(
        "./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property[@name=$name]/@value",
        namespaces=NS, name=name,
    )
    return found[0] if found else None


def _owner_id(element: etree._Element) -> str | None:
    """The id of the BPMN element a piece of XML belongs to (extension elements have no ids of their own)."""
    node: etree._Element | None = element
    while node is not None:
        owner: str | None = node.get("id")
        if isinstance(node.tag, str) and etree.QName(node).namespace == BPMN_NS and owner:
            return owner
        node = node.getparent()
    return None


def _check_rules(root: etree._Element, filename: str, operations: frozenset[str]) -> None:
    for element, source, is_script in _expressions(root):
        try:
            expressions.check(source, script=is_script)
        except ExpressionError as exc:
            raise ModelRejected(N_("%(file)s: %(reason)s"), params={"file": filename, "reason": Sentence.of(exc)},
                                element_id=_owner_id(element)) from None
    for operator in root.iterfind(".//spiffworkflow:serviceTaskOperator", NS):
        if operator.get("id") not in operations:
            known = ", ".join(sorted(operations))
            raise ModelRejected(N_("%(file)s: unknown service operation %(value)s (known: %(known)s)"),
                                params={"file": filename, "value": repr(operator.get("id")), "known": known},
                                element_id=_owner_id(operator))
    for task in root.iterfind(".//bpmn:serviceTask", NS):
        if task.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS) is None:
            raise ModelRejected(N_("%(file)s: a service task must name its operation"), params={"file": filename},
                                element_id=task.get("id"))
    for task in root.iterfind(".//bpmn:scriptTask", NS):
        script = task.find("bpmn:script", NS)
        if script is None or not (script.text or "").strip():
            raise ModelRejected(N_("%(file)s: a script task needs a script"), params={"file": filename},
                                element_id=task.get("id"))
    for prop in root.iterfind(".//spiffworkflow:property", NS):
        if prop.get("name") == "role" and prop.get("value") not in ROLES:
            raise ModelRejected(N_("%(file)s: unknown role %(value)s (known: %(known)s)"),
                                params={"file": filename, "value": repr(prop.get("value")), "known": ", ".join(ROLES)},
                                element_id=_owner_id(prop))
    for form in root.iterfind(".//spiffworkflow:formSchema", NS):
        _check_form_schema(form, filename)
    _check_data_object_references(root, filename)


def _referenced_decisions(root: etree._Element, filename: str,
                          find_decision: DecisionLookup) -> dict[str, tuple[int, str]]:
    """Each decision a business rule task names, as deployed now; a name that is not deployed refuses the model."""
    found = {}
    for task in root.iterfind(".//bpmn:businessRuleTask", NS):
        reference = task.find("bpmn:extensionElements/spiffworkflow:calledDecisionId", NS)
        name = (reference.text or "").strip() if reference is not None else ""
        if not name:
            raise ModelRejected(N_("%(file)s: a business rule task must name its decision"), params={"file": filename},
                                element_id=task.get("id"))
        if name not in found:
            deployed = find_decision(name)
            if deployed is None:
                raise ModelRejected(N_("%(file)s: the business rule task names the decision %(name)s, which is not "
                                       "deployed (deploy its .dmn file first)"),
                                    params={"file": filename, "name": repr(name)}, element_id=task.get("id"))
            found[name] = deployed
    return found


def _check_data_object_references(root: etree._Element, filename: str) -> None:
    """SpiffWorkflow loops forever on a reference to something that is not a data object in scope."""
    for reference in root.iterfind(".//bpmn:dataObjectReference", NS):
        target, scope = reference.get("dataObjectRef"), reference.getparent()
        while scope is not None:
            if any(obj.get("id") == target for obj in scope.findall("bpmn:dataObject", NS)):
                break
            scope = scope.getparent()
        else:
            raise ModelRejected(N_("%(file)s: %(name)s is not a data object of this process"),
                                params={"file": filename, "name": repr(target)}, element_id=reference.get("id"))


def _expressions(root: etree._Element) -> Iterator[tuple[etree._Element, str, bool]]:
    for tag in ("conditionExpression", "timeDate", "timeDuration", "timeCycle", "loopCardinality",
                "completionCondition", "loopCondition"):
        for element in root.iterfind(f".//bpmn:{tag}", NS):
            yield element, (element.text or "").strip(), False
    for element in root.iterfind(".//bpmn:scriptTask/bpmn:script", NS):
        if (element.text or "").strip():
            yield element, element.text, True
    for tag in ("preScript", "postScript"):
        for element in root.iterfind(f".//spiffworkflow:{tag}", NS):
            if (element.text or "").strip():
                yield element, element.text, True
    for tag in ("spiffworkflow:messagePayload", "spiffworkflow:payloadExpression",
                "spiffworkflow:processVariableCorrelation/spiffworkflow:expression",
                "bpmn:conditionalEventDefinition/bpmn:condition"):
        for element in root.iterfind(f".//{tag}", NS):
            yield element, (element.text or "").strip(), False
    # SpiffWorkflow evaluates the first child of a retrieval expression, whatever it is: check them all.
    for retrieval in root.iterfind(".//bpmn:correlationPropertyRetrievalExpression", NS):
        for child in retrieval:
            yield child, (child.text or "").strip(), False
    for element in root.iterfind(".//spiffworkflow:serviceTaskOperator//spiffworkflow:parameter", NS):
        yield element, element.get("value") or "", False
    for element in root.iterfind(".//spiffworkflow:property", NS):
        if element.get("name") in EXPRESSION_PROPERTIES:
            yield element, element.get("value") or "", False


def _check_form_schema(form: etree._Element, filename: str) -> None:
    try:
        schema = json.loads(form.text or "")
        jsonschema.Draft202012Validator.check_schema(schema)
    except (json.JSONDecodeError, jsonschema.SchemaError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise ModelRejected(N_("%(file)s: the form schema is not valid JSON Schema: %(reason)s"),
                            params={"file": filename, "reason": message}, element_id=_owner_id(form)) from None
    if schema.get("type") != "object":
        raise ModelRejected(N_("%(file)s: a form schema must describe an object"), params={"file": filename},
                            element_id=_owner_id(form))
