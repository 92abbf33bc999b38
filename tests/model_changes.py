"""Changed versions of shipped models, for the migration tests (this module holds no tests)."""

from __future__ import annotations

from lxml import etree

from engine.model_validation import BPMN_NS

B = f"{{{BPMN_NS}}}"


def with_step_before_every_end(content: bytes) -> bytes:
    """A new version: a script task (`passed_v2 = True`) before every end event, and every user task renamed."""
    root = etree.fromstring(content)
    for task in root.iter(f"{B}userTask"):
        task.set("name", (task.get("name") or task.get("id")) + " (v2)")
    for end in list(root.iter(f"{B}endEvent")):
        container = end.getparent()
        marker_id = f"v2_before_{end.get('id')}"
        marker = etree.Element(f"{B}scriptTask", id=marker_id, name="Through version 2")
        flows = [f for f in container.findall(f"{B}sequenceFlow") if f.get("targetRef") == end.get("id")]
        for flow in flows:
            flow.set("targetRef", marker_id)
            etree.SubElement(marker, f"{B}incoming").text = flow.get("id")
        etree.SubElement(marker, f"{B}outgoing").text = f"{marker_id}_flow"
        etree.SubElement(marker, f"{B}script").text = "passed_v2 = True"
        for incoming in end.findall(f"{B}incoming"):
            end.remove(incoming)
        incoming = etree.Element(f"{B}incoming")
        incoming.text = f"{marker_id}_flow"
        end.insert(0, incoming)
        container.insert(container.index(end), marker)
        container.append(etree.Element(f"{B}sequenceFlow", id=f"{marker_id}_flow", sourceRef=marker_id,
                                       targetRef=end.get("id")))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def with_user_task_as_manual_task(content: bytes, element_id: str) -> bytes:
    """A new version where the user task `element_id` became a manual task (the same id, another kind)."""
    root = etree.fromstring(content)
    [task] = [t for t in root.iter(f"{B}userTask") if t.get("id") == element_id]
    task.tag = f"{B}manualTask"
    for extensions in task.findall(f"{B}extensionElements"):
        task.remove(extensions)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
