"""Changed versions of shipped models, for the migration tests (this module holds no tests)."""

from __future__ import annotations

from lxml import etree

from engine.bpmn.model_validation import BPMN_NS

B = f"{{{BPMN_NS}}}"
BPMNDI = "{http://www.omg.org/spec/BPMN/20100524/DI}"
DC = "{http://www.omg.org/spec/DD/20100524/DC}"
DI = "{http://www.omg.org/spec/DD/20100524/DI}"


def with_step_before_every_end(content: bytes, tag: str = "v2") -> bytes:
    """A new version: a script task (`passed_<tag> = True`) before every end event, and every user task renamed;
    `tag` keeps the new ids unique when a version made this way is changed again."""
    root = etree.fromstring(content)
    for task in root.iter(f"{B}userTask"):
        task.set("name", (task.get("name") or task.get("id")) + f" ({tag})")
    for end in list(root.iter(f"{B}endEvent")):
        container = end.getparent()
        marker_id = f"{tag}_before_{end.get('id')}"
        marker = etree.Element(f"{B}scriptTask", id=marker_id, name=f"Through {tag}")
        flows = [f for f in container.findall(f"{B}sequenceFlow") if f.get("targetRef") == end.get("id")]
        for flow in flows:
            flow.set("targetRef", marker_id)
            etree.SubElement(marker, f"{B}incoming").text = flow.get("id")
        etree.SubElement(marker, f"{B}outgoing").text = f"{marker_id}_flow"
        etree.SubElement(marker, f"{B}script").text = f"passed_{tag} = True"
        for incoming in end.findall(f"{B}incoming"):
            end.remove(incoming)
        incoming = etree.Element(f"{B}incoming")
        incoming.text = f"{marker_id}_flow"
        # after the end event's documentation and extension elements, where BPMN's schema puts incoming flows
        leading = [child for child in end if child.tag in (f"{B}documentation", f"{B}extensionElements")]
        end.insert(len(leading), incoming)
        container.insert(container.index(end), marker)
        container.append(etree.Element(f"{B}sequenceFlow", id=f"{marker_id}_flow", sourceRef=marker_id,
                                       targetRef=end.get("id")))
        _draw_before(root, end.get("id"), marker_id)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _draw_before(root: etree._Element, end_id: str, marker_id: str) -> None:
    """The new script task drawn just above its end event, so that the diagram still draws every flow."""
    shape = next((s for s in root.iter(f"{BPMNDI}BPMNShape") if s.get("bpmnElement") == end_id), None)
    if shape is None:
        return
    bounds = shape.find(f"{DC}Bounds")
    x, y = float(bounds.get("x")), float(bounds.get("y"))
    plane = shape.getparent()
    marker = etree.SubElement(plane, f"{BPMNDI}BPMNShape", id=f"{marker_id}_di", bpmnElement=marker_id)
    etree.SubElement(marker, f"{DC}Bounds", x=str(x - 32), y=str(y - 100), width="100", height="60")
    edge = etree.SubElement(plane, f"{BPMNDI}BPMNEdge", id=f"{marker_id}_flow_di", bpmnElement=f"{marker_id}_flow")
    etree.SubElement(edge, f"{DI}waypoint", x=str(x + 18), y=str(y - 40))
    etree.SubElement(edge, f"{DI}waypoint", x=str(x + 18), y=str(y))


def with_user_task_as_manual_task(content: bytes, element_id: str) -> bytes:
    """A new version where the user task `element_id` became a manual task (the same id, another kind)."""
    root = etree.fromstring(content)
    [task] = [t for t in root.iter(f"{B}userTask") if t.get("id") == element_id]
    task.tag = f"{B}manualTask"
    for extensions in task.findall(f"{B}extensionElements"):
        task.remove(extensions)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def without_drawn_names(content: bytes) -> bytes:
    """A shipped model as it was before its diagram spoke both languages: `name_ar`/`name_en` on the process and
    its user tasks only."""
    root = etree.fromstring(content)
    spiff = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"
    for prop in list(root.iter(f"{spiff}property")):
        properties = prop.getparent()
        owner = properties.getparent().getparent()
        if prop.get("name") in ("name_ar", "name_en") and owner.tag not in (f"{B}process", f"{B}userTask"):
            properties.remove(prop)
    for properties in list(root.iter(f"{spiff}properties")):
        if len(properties) == 0:
            properties.getparent().remove(properties)
    for extensions in list(root.iter(f"{B}extensionElements")):
        if len(extensions) == 0:
            extensions.getparent().remove(extensions)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
