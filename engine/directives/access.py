"""Who may see and do what: the access rules, as plain functions the API, the UI and the reports share.

| role | may |
| --- | --- |
| admin | everything, and alone the operations view (instances, incidents, messages, migrations) |
| secretariat | create, launch and cancel directives; read all |
| follow_up_officer | read all; work steps whose role is follow_up_officer (verify, return); comment on escalations |
| supervisor | read all; resolve escalations; work steps whose role is supervisor (extension decisions) |
| leadership | read all; work steps whose role is leadership; resolve escalations raised to leadership |
| entity_user | read directives where their entity is responsible or supporting; work their entity's steps |
| viewer | read directives, dashboards and reports |

A caller that may not *see* something is told it does not exist (`NotFound`); a caller that may see
it but not act on it is refused (`Forbidden`). Every list, count and search goes through
`visible_directives` (or the other `visible_*` filters) so none of them can leak another entity's
directive.
"""

from __future__ import annotations

from typing import Protocol, TypeVarTuple

from sqlalchemy import Select, false, or_, select
from sqlalchemy.orm import Session

from engine.directives import directives
from engine.directives.directives import Directive, addressed_to
from engine.foundation.errors import N_, NotFound
from engine.foundation.errors import Forbidden as Forbidden  # re-exported: callers raise access.Forbidden
from engine.people.roles import (
    ADMIN,
    ENTITY_USER,
    FOLLOW_UP_OFFICER,
    LEADERSHIP,
    SECRETARIAT,
    SUPERVISOR,
    VIEWER,
    role_word,
)
from engine.work.escalations import Escalation
from engine.work.work_items import WorkItem


class Actor(Protocol):
    """What the rules need to know about a user (an `engine.people.users.User` fits, and so does the
    API's frozen `CurrentUser`: the members are read-only, so either satisfies the protocol)."""

    @property
    def username(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def entity_id(self) -> int | None: ...
    @property
    def active(self) -> bool: ...


_Ts = TypeVarTuple("_Ts")
"""The columns of a query the `visible_*` and `inbox` filters narrow (they keep its shape)."""

READ_ALL = frozenset({ADMIN, SECRETARIAT, FOLLOW_UP_OFFICER, SUPERVISOR, LEADERSHIP, VIEWER})
"""Roles that read every directive."""

# Plain actions, checked by role alone. Actions on a particular directive, step or escalation add
# the checks of `can_see_directive`, `can_act_on_item` and `can_resolve_escalation`.
ACTIONS: dict[str, frozenset[str]] = {
    "directive.read": READ_ALL | {ENTITY_USER},
    "directive.create": frozenset({ADMIN, SECRETARIAT}),
    "directive.launch": frozenset({ADMIN, SECRETARIAT}),
    "directive.cancel": frozenset({ADMIN, SECRETARIAT}),
    "directive.request_extension": frozenset({ADMIN, ENTITY_USER}),
    "task.work": frozenset({ADMIN, SECRETARIAT, FOLLOW_UP_OFFICER, SUPERVISOR, LEADERSHIP, ENTITY_USER}),
    "escalation.read": READ_ALL | {ENTITY_USER},
    "escalation.resolve": frozenset({ADMIN, SUPERVISOR, LEADERSHIP}),
    "escalation.comment": frozenset({ADMIN, SUPERVISOR, LEADERSHIP, FOLLOW_UP_OFFICER}),
    "audit.read": READ_ALL | {ENTITY_USER},
    "audit.read_any": frozenset({ADMIN}),
    "audit.verify": frozenset({ADMIN}),
    "report.read": READ_ALL,
    "report.run": frozenset({ADMIN, SECRETARIAT, FOLLOW_UP_OFFICER}),
    "entity.read": READ_ALL | {ENTITY_USER},
    "entity.manage": frozenset({ADMIN}),
    "user.manage": frozenset({ADMIN}),
    "season.read": READ_ALL | {ENTITY_USER},
    "season.manage": frozenset({ADMIN}),
    "model.read": READ_ALL | {ENTITY_USER},
    "model.deploy": frozenset({ADMIN}),
    "instance.operate": frozenset({ADMIN}),  # the operations view: instances, incidents, messages, migrations
    "insight.bottlenecks": READ_ALL,  # the heatmap: every entity's figures
    "insight.forecast": READ_ALL | {ENTITY_USER},  # an entity user sees their own entity's forecast
}


def allowed(user: Actor, action: str) -> bool:
    if not user.active:
        return False
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    return user.role in ACTIONS[action]


def require(user: Actor, action: str) -> None:
    """Refuse (`Forbidden`) unless the user's role may do `action`."""
    if not allowed(user, action):
        raise Forbidden(N_("%(role)s may not do this"), params={"role": role_word(user.role)})


def permissions(user: Actor) -> list[str]:
    """Every plain action the user may do, for a UI to show or hide buttons."""
    return sorted(action for action in ACTIONS if allowed(user, action))


def reads_all(user: Actor) -> bool:
    return user.active and user.role in READ_ALL


# --- directives -------------------------------------------------------------------------------------

def visible_directives(query: Select[*_Ts], user: Actor) -> Select[*_Ts]:
    """Narrow a query over `Directive` to the directives the user may see."""
    if reads_all(user):
        return query
    entity_id = directive_scope(user)
    return query.where(addressed_to(entity_id) if entity_id is not None else false())


def directive_scope(user: Actor) -> int | None:
    """The entity whose directives are all an entity user may see; None for everyone else (who reads all
    directives or none)."""
    if not reads_all(user) and user.active and user.role == ENTITY_USER and user.entity_id is not None:
        return user.entity_id
    return None


def can_see_directive(session: Session, user: Actor, directive: Directive) -> bool:
    if reads_all(user):
        return True
    if not user.active or user.role != ENTITY_USER or user.entity_id is None:
        return False
    if directive.responsible_entity_id == user.entity_id:
        return True
    return user.entity_id in {entity.id for entity in directive.supporting_entities}


def visible_directive(session: Session, user: Actor, directive_id: int) -> Directive:
    """The directive if the user may see it; otherwise `NotFound`, as if it did not exist."""
    directive = session.get(Directive, directive_id)
    if directive is None or not can_see_directive(session, user, directive):
        raise NotFound(N_("no directive %(directive)s"), params={"directive": str(directive_id)})
    return directive


def can_request_extension(session: Session, user: Actor, directive: Directive) -> bool:
    """Only the responsible entity (or an administrator) asks for more time."""
    if not allowed(user, "directive.request_extension"):
        return False
    return user.role == ADMIN or directive.responsible_entity_id == user.entity_id


# --- steps (work items) -----------------------------------------------------------------------------

def entity_code(session: Session, user: Actor) -> str | None:
    if user.entity_id is None:
        return None
    known = _own_entity_code(user)
    if known is not None:
        return known
    from engine.people.entities import Entity

    entity = session.get(Entity, user.entity_id)
    return entity.code if entity else None


def can_act_on_item(user: Actor, item: WorkItem, user_entity_code: str | None = None) -> bool:
    """May the user claim, report progress on, complete or ask more time for this step?

    Entity users act only on their entity's steps (`assignee_entity`); other roles on steps
    addressed to their role; viewers on none; administrators on all. `user_entity_code` is the
    code of the user's entity (an `engine.people.users.User` with its entity loaded knows it itself).
    """
    if not user.active:
        return False
    if user.role == ADMIN:
        return True
    if user.role == VIEWER:
        return False
    if user.role == ENTITY_USER:
        code = user_entity_code or _own_entity_code(user)
        return (code is not None and item.assignee_entity == code
                and item.assignee_role in (None, ENTITY_USER))
    return item.assignee_role == user.role


def _own_entity_code(user: Actor) -> str | None:
    code = getattr(user, "entity_code", None)
    if isinstance(code, str):
        return code
    entity = getattr(user, "entity", None)
    return getattr(entity, "code", None)


def directive_of_item(session: Session, item: WorkItem, *, with_lists: bool = True) -> Directive | None:
    """The directive a step belongs to (`directives.of_instance`)."""
    return directives.of_instance(session, item.instance_id, with_lists=with_lists)


def can_see_item(session: Session, user: Actor, item: WorkItem) -> bool:
    if can_act_on_item(user, item, entity_code(session, user)):
        return True
    directive = directive_of_item(session, item)
    if directive is None:
        return reads_all(user)
    return can_see_directive(session, user, directive)


def inbox_steps(user: Actor, user_entity_code: str | None) -> Select[WorkItem, Directive]:
    """The steps in the user's inbox, each with its directive (None for a process without one)."""
    return inbox(select(WorkItem, Directive).outerjoin(Directive, Directive.instance_id == WorkItem.instance_id),
                 user, user_entity_code)


def inbox(query: Select[*_Ts], user: Actor, user_entity_code: str | None) -> Select[*_Ts]:
    """Narrow a query over `WorkItem` to the steps in the user's inbox (what they may work)."""
    if not user.active or user.role == VIEWER:
        return query.where(false())
    if user.role == ADMIN:
        return query
    if user.role == ENTITY_USER:
        if user_entity_code is None:
            return query.where(false())
        return query.where(WorkItem.assignee_entity == user_entity_code,
                           or_(WorkItem.assignee_role.is_(None), WorkItem.assignee_role == ENTITY_USER))
    return query.where(WorkItem.assignee_role == user.role)


# --- escalations -------------------------------------------------------------------------------------

def visible_escalations(query: Select[*_Ts], user: Actor) -> Select[*_Ts]:
    """Narrow a query over `Escalation` to those whose directive the user may see."""
    if reads_all(user):
        return query
    if not user.active or user.role != ENTITY_USER or user.entity_id is None:
        return query.where(false())
    seen = visible_directives(select(Directive.id), user)
    return query.where(Escalation.directive_id.in_(seen))


def can_see_escalation(session: Session, user: Actor, escalation: Escalation) -> bool:
    if reads_all(user):
        return True
    if escalation.directive_id is None:
        return False
    directive = session.get(Directive, escalation.directive_id)
    return directive is not None and can_see_directive(session, user, directive)


def can_resolve_escalation(user: Actor, escalation: Escalation, action: str) -> bool:
    """Supervisors resolve; leadership resolves what was raised to it; officers only comment."""
    if action == "comment":
        return allowed(user, "escalation.comment")
    if not allowed(user, "escalation.resolve"):
        return False
    if user.role == LEADERSHIP:
        return escalation.target_role == LEADERSHIP
    return True


def forecast_entity(session: Session, user: Actor, asked: str | None) -> str | None:
    """The entity whose forecast `user` sees when asking for `asked` (None: every entity): an entity user
    sees their own entity's, and is told another entity's does not exist."""
    require(user, "insight.forecast")
    if user.role != ENTITY_USER:
        return asked
    own = entity_code(session, user)
    if own is None or (asked is not None and asked != own):
        raise NotFound(N_("no forecast for entity %(entity)s"), params={"entity": asked or "(none)"})
    return own
