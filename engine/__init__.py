"""Tansiq's engine: directives as BPMN processes with deadlines that act.

The engine imports no web or Prefect code; `api` and `workflows` are thin adapters over it. Its packages,
lowest first (each imports only those below it; `make lint` checks it with import-linter):

- `foundation`: the clock, errors, settings, logs, text search: no domain words.
- `storage`: the database, the file store, the tamper-evident audit trail, kept counts.
- `calendar`: durations, the business calendar, seasons.
- `people`: roles, entities, users.
- `bpmn`: the BPMN runtime (the one place SpiffWorkflow is imported), process models, decision tables,
  the registry of service-task operations.
- `work`: process instances and their steps, timers, escalations and the notifications they queue.
- `directives`: directives, who may see them, meetings, evidence, imports, the inbox and the board.
- `feedback`: pilgrim feedback.
- `insight`: bottlenecks, forecasts, recurring obstacles.
- `delivery`: notification delivery (email, in-app, digests).
- `reports`: the daily, periodic and seasonal reports.
- `system`: the schema, migrations, backup and restore, file moves, import jobs, the demo season.

Importing the package imports every table and every service-task operation (`engine.system.schema`),
so mappers and the operation registry are whole before the first unit of work, whatever was imported.
"""

from engine.system import schema as _schema  # noqa: F401
