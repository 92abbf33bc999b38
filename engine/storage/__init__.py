"""Storage: the database, stored files, the tamper-evident audit trail and counts kept at commit.

Owns `db` (engines, sessions, units of work, column types), `file_store` (files in the database or on
disk), `audit` (the hash-chained trail every change writes) and `kept_counts` (tables of additive figures
written once per transaction).

May import: `engine.foundation`.
"""
