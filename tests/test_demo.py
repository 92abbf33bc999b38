"""The demo season: played through the engine, every state present, the audit chain intact, and any
single row altered with plain SQL caught by `tansiq audit verify`, which names it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

from sqlalchemy import func, select, text

from engine.calendar.seasons import Season
from engine.directives import directives
from engine.directives.directives import Directive
from engine.storage import audit
from engine.system import demo
from tests.conftest import SHIPPED_BPMN_DIR


def test_the_demo_season_has_every_state_and_an_audit_chain_that_names_tampering(db, database_url):
    credentials = demo.seed(db, SHIPPED_BPMN_DIR, days=7)
    roles = {c.role for c in credentials}
    assert {"admin", "secretariat", "follow_up_officer", "supervisor", "leadership", "viewer",
            "entity_user"} <= roles
    with db.reading() as session:
        current = session.scalar(select(Season.id).where(Season.hijri_year == 1448))
        rows = session.scalars(select(Directive).where(Directive.season_id == current)).all()
        assert session.scalar(select(func.count()).select_from(Directive).where(Directive.season_id != current))
        statuses = Counter(d.status for d in rows)
        assert 190 <= len(rows) <= 210
        assert all(statuses[s] > 0 for s in directives.STATUSES), statuses
        assert any(directives.overdue(d) for d in rows)
        assert any(d.escalation_level >= 2 for d in rows)
        assert any(d.extension_count > 0 for d in rows)
        assert any(d.completed_on_time for d in rows) and any(d.completed_on_time is False for d in rows)
        assert not any(d.incident for d in rows)
    _tamper_and_verify(db, database_url)


def _verify_cli(database_url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TANSIQ_DATABASE_URL=database_url)
    return subprocess.run([sys.executable, "-m", "api.cli", "audit", "verify"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def _tamper_and_verify(db, database_url: str) -> None:
    assert _verify_cli(database_url).returncode == 0
    with db.reading() as session:
        total = session.get(audit.AuditHead, 1).last_id
    victim = total // 2
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET actor = 'someone else' WHERE id = :id"), {"id": victim})
    broken = _verify_cli(database_url)
    assert broken.returncode == 1
    assert f"broken at event {victim}:" in broken.stderr
