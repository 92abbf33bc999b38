"""Directives (التوجيهات) and the follow-up work around them.

Owns directives and their register (`directives`), who may see and do what (`access`), tags,
committee meetings and their documents (`meetings`), evidence of execution (`evidence`,
`evidence_store`), import from Excel (`directive_import`), the dashboard's tallies, completing steps
(`steps`), the entity inbox (`inbox`) and the supervisors' escalation board (`supervision`).

May import: `engine.work` and everything below it.
"""
