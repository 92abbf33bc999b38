"""The BPMN runtime and the process models it runs.

Owns SpiffWorkflow (imported by `bpmn_runtime` alone, checked by import-linter), the compact stored
state (`state_codec`), the expression language of models (`expressions`), model validation, DMN-like
decision tables, deployed process models with their versions, and the registry of the operations a
model's service tasks may call (`service_tasks`; the operations themselves live with what they change).

May import: `engine.people`, `engine.calendar`, `engine.storage`, `engine.foundation`.
"""
