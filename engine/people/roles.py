"""The roles people have in Tansiq (see DOMAIN.md: who uses Tansiq)."""

from __future__ import annotations

ADMIN = "admin"
SECRETARIAT = "secretariat"
FOLLOW_UP_OFFICER = "follow_up_officer"
SUPERVISOR = "supervisor"
ENTITY_USER = "entity_user"
LEADERSHIP = "leadership"
VIEWER = "viewer"

ROLES: tuple[str, ...] = (ADMIN, SECRETARIAT, FOLLOW_UP_OFFICER, SUPERVISOR, ENTITY_USER, LEADERSHIP, VIEWER)
