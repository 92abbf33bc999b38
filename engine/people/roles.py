"""The roles people have in Tansiq (see DOMAIN.md: who uses Tansiq)."""

from __future__ import annotations

from engine.foundation.errors import N_, Term

ADMIN = "admin"
SECRETARIAT = "secretariat"
FOLLOW_UP_OFFICER = "follow_up_officer"
SUPERVISOR = "supervisor"
ENTITY_USER = "entity_user"
LEADERSHIP = "leadership"
VIEWER = "viewer"

ROLES: tuple[str, ...] = (ADMIN, SECRETARIAT, FOLLOW_UP_OFFICER, SUPERVISOR, ENTITY_USER, LEADERSHIP, VIEWER)
ROLE_WORDS = {ADMIN: N_("an administrator"), SECRETARIAT: N_("a member of the secretariat"),
              FOLLOW_UP_OFFICER: N_("a follow-up officer"), SUPERVISOR: N_("a supervisor"),
              ENTITY_USER: N_("an entity's user"), LEADERSHIP: N_("a member of the leadership"),
              VIEWER: N_("a viewer")}


def role_word(role: str) -> Term:
    """Who someone is, as a refusal names them ("a viewer may not ..."), in the reader's language."""
    return Term.of(ROLE_WORDS, role)
