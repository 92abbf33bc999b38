"""Foundation: what every other package uses and that knows no domain word.

Owns the clock (`clock`, settable in tests), errors with translatable messages (`errors`, `schema_issues`),
settings, structured logs, the installed version, Arabic-aware text folding and search (`text_search`),
safe spreadsheet cells (`spreadsheets`) and the memory settings of long-running processes (`heap`).

May import: nothing of the engine.
"""
