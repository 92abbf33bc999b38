"""Running processes and their work: instances, steps, timers, escalations and notifications queued.

Owns process instances (`instances`: start, advance, retry, cancel), their user tasks as work items
(`work_items`) and the figures kept per step (`step_figures`), due timers (`timers`,
`escalation_timers`), escalations raised by models, the notification outbox (`notifications`), BPMN
messages, incidents and the migration of instances between model versions.

May import: `engine.bpmn` and everything below it.
"""
