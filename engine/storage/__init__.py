"""Storage: the database, stored files, the tamper-evident audit trail and counts kept at commit.

Owns `db` (engines, sessions, units of work, column types), `file_store` (files in the database or on
disk), `audit` (the hash-chained trail every change writes), `kept_counts` (tables of additive figures
written once per transaction) and `commit_writes` (which writes both at each commit).

May import: `engine.foundation`.
"""

from engine.storage import commit_writes as commit_writes  # its listener writes at every session's commit
