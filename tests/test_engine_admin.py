"""Engine operations the API and the UI share: a person's actions on a step, users, seasons, entities
and model deployments with their audit events, the login throttle's wait, bulk outcomes with their
codes, the directive search, and the depth limit on process variables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

import engine.people.users
from engine.bpmn import process_models
from engine.calendar import seasons
from engine.directives import access, directives, steps, supervision
from engine.directives.directives import DirectiveFilters, NewDirective
from engine.foundation import clock
from engine.foundation.errors import Conflict, Forbidden, InvalidInput, NotFound, TansiqError
from engine.people import entities, login_attempts, users
from engine.storage import audit
from engine.storage.audit import AuditEvent
from engine.work import instances, timers, work_items
from engine.work.work_items import MAX_DEPTH
from tests.conftest import read_model
from tests.helpers import complete, deploy, escalations, the_open_item

NOW = datetime(2026, 5, 20, 6, tzinfo=UTC)  # 1447-12-03, in the season


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    monkeypatch.setattr(engine.people.users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def world(db):
    clock.set_now(NOW)
    deploy(db, "deadline.bpmn")
    with db.transaction() as session:
        seasons.create_season(session, 1447, date(2026, 4, 18), date(2026, 7, 16), actor="admin")
        for code, ar, en in (("housing", "الإسكان", "Housing"), ("transport", "النقل", "Transport")):
            entities.create_entity(session, code, ar, en, actor="admin")
    return db


def _directive(db, launch: bool = True, **overrides) -> directives.Directive:
    values = {"title": "التأكد من جاهزية المساكن", "kind": "decision", "responsible_entity": "housing",
              "deadline": "PT6H", "process_model_key": "deadline"}
    values.update(overrides)
    with db.transaction() as session:
        return directives.create(session, NewDirective(**values), "secretariat", launch_now=launch)


def _events(db, action: str) -> list[AuditEvent]:
    with db.reading() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# --- errors ------------------------------------------------------------------------------------------

def test_forbidden_is_an_engine_error_also_known_to_access():
    assert access.Forbidden is Forbidden and issubclass(Forbidden, TansiqError) and Forbidden.code == "forbidden"


# --- process variables -------------------------------------------------------------------------------

def _nested(levels: int) -> dict:
    """An object whose lists and objects nest `levels` deep (the object itself is the first level)."""
    value: object = 1
    for level in range(levels - 1):
        value = [value] if level % 2 else {"a": value}
    return {"n": value}


def test_variables_may_nest_32_levels_and_no_deeper():
    assert work_items.nesting_depth(_nested(MAX_DEPTH)) == MAX_DEPTH == 32
    assert work_items.check_variables(_nested(MAX_DEPTH))
    with pytest.raises(InvalidInput, match="form data may nest at most 32 levels"):
        work_items.check_variables(_nested(MAX_DEPTH + 1))
    assert work_items.nesting_depth({"flat": 1, "list": [1, 2]}) == 2


def test_hostile_depth_is_refused_cleanly_not_with_a_recursion_error():
    with pytest.raises(InvalidInput, match="process data may nest"):
        work_items.check_variables(_nested(100_000), "process data")


def test_a_process_is_not_started_with_data_nested_too_deep(world):
    with world.transaction() as session, pytest.raises(InvalidInput, match="nest at most"):
        instances.start(session, "deadline", {"responsible_entity": "housing", **_nested(40)}, "secretariat")


# --- a person's actions on a step ----------------------------------------------------------------

def _step(world) -> work_items.WorkItem:
    directive = _directive(world)
    return the_open_item(world, directive.instance_id, "acknowledge")


def test_claim_is_recorded_once_and_refused_to_others(world):
    item = _step(world)
    with world.transaction() as session:
        assert steps.claim(session, item.id, "housing.user").claimed_by == "housing.user"
    with world.transaction() as session:
        steps.claim(session, item.id, "housing.user")  # again: harmless, not recorded again
    with world.transaction() as session, pytest.raises(Conflict, match=r"claimed by housing\.user"):
        steps.claim(session, item.id, "someone.else")
    [event] = _events(world, "step.claimed")
    assert (event.actor, event.subject, event.payload) == (
        "housing.user", instances.subject(item.instance_id), {"work_item": item.id, "element": "acknowledge"})


def test_release_by_the_claimant_or_by_force(world):
    item = _step(world)
    with world.transaction() as session:
        steps.claim(session, item.id, "housing.user")
    with world.transaction() as session, pytest.raises(Conflict, match=r"claimed by housing\.user"):
        steps.release(session, item.id, "someone.else")
    with world.transaction() as session:
        assert steps.release(session, item.id, "admin", force=True).claimed_by is None
    with world.transaction() as session:
        steps.release(session, item.id, "admin")  # nothing claimed: nothing recorded
    [event] = _events(world, "step.released")
    assert event.actor == "admin" and event.payload["was_claimed_by"] == "housing.user"


def test_progress_is_kept_on_the_step_and_recorded(world):
    item = _step(world)
    with world.transaction() as session:
        updated = steps.record_progress(session, item.id, "housing.user", 40, "  نصف المساكن  ", evidence_ids=[7])
        assert (updated.progress_percent, updated.progress_note, updated.progress_at) == (40, "نصف المساكن", NOW)
    [event] = _events(world, "step.progress")
    assert event.payload == {"work_item": item.id, "element": "acknowledge", "percent": 40, "note": "نصف المساكن",
                             "evidence": [7]}


@pytest.mark.parametrize(("percent", "note", "message"), [
    (101, None, "0 to 100"), (-1, None, "0 to 100"), (True, None, "0 to 100"), (50.5, None, "0 to 100"),
    (50, "x" * 2001, "2,000 characters"),
])
def test_bad_progress_is_refused(world, percent, note, message):
    item = _step(world)
    with world.transaction() as session, pytest.raises(InvalidInput, match=message):
        steps.record_progress(session, item.id, "housing.user", percent, note)
    assert _events(world, "step.progress") == []


def test_a_step_no_longer_open_is_refused_for_every_action(world):
    item = _step(world)
    complete(world, item.id, {}, "housing.user")
    for action in (lambda s: steps.claim(s, item.id, "x"), lambda s: steps.release(s, item.id, "x"),
                   lambda s: steps.record_progress(s, item.id, "x", 10, None)):
        with world.transaction() as session, pytest.raises(Conflict, match=r"already completed by housing\.user"):
            action(session)
    with world.transaction() as session, pytest.raises(NotFound, match="no step"):
        steps.claim(session, 999_999, "x")


def test_require_not_claimed_by_other():
    item = work_items.WorkItem(id=3, claimed_by="a")
    steps.require_not_claimed_by_other(item, "a")
    with pytest.raises(Conflict, match="claimed by a"):
        steps.require_not_claimed_by_other(item, "b")


# --- users -------------------------------------------------------------------------------------------

def test_creating_a_user_is_recorded_with_its_actor(world):
    with world.transaction() as session:
        users.create_user(session, "housing.user", "a long password", "entity_user", entity_code="housing",
                          actor="admin")
    [event] = _events(world, "user.created")
    assert (event.actor, event.subject, event.payload) == (
        "admin", "user:housing.user", {"role": "entity_user", "entity": "housing"})


def test_updating_a_user_records_what_changed_never_the_password(world):
    with world.transaction() as session:
        before = users.create_user(session, "officer", "a long password", "follow_up_officer", actor="admin")
        old_hash = before.password_hash
    clock.set_now(NOW + timedelta(minutes=5))
    with world.transaction() as session:
        user = users.update_user(session, "officer", "admin", password="another long secret", language="en",
                                 full_name=" Officer ", email=None, active=None)
        assert user.password_hash != old_hash and user.tokens_valid_after == NOW + timedelta(minutes=5)
        new_hash = user.password_hash
    [event] = _events(world, "user.updated")
    assert event.actor == "admin" and event.payload == {"language": "en", "full_name": "Officer",
                                                        "password": "changed"}
    for secret in ("another long secret", old_hash, new_hash):
        assert secret not in str(event.payload)
    with world.transaction() as session:
        users.update_user(session, "officer", "admin", active=True)  # no change: nothing recorded
    assert len(_events(world, "user.updated")) == 1


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"password": "short"}, InvalidInput, "at least 10"),
    ({"language": "fr"}, InvalidInput, "ar or en"),
])
def test_bad_user_updates_are_refused(world, changes, error, message):
    with world.transaction() as session:
        users.create_user(session, "officer", "a long password", "follow_up_officer", actor="admin")
    with world.transaction() as session, pytest.raises(error, match=message):
        users.update_user(session, "officer", "admin", **changes)
    with world.transaction() as session, pytest.raises(NotFound, match="no user 'nobody'"):
        users.update_user(session, "nobody", "admin", active=False)


def test_deactivating_and_revoking_stop_the_tokens(world):
    with world.transaction() as session:
        user_id = users.create_user(session, "officer", "a long password", "follow_up_officer", actor="admin").id
    clock.set_now(NOW + timedelta(minutes=1))
    with world.transaction() as session:
        users.revoke_tokens(session, users.get_user_by_id(session, user_id), "officer")
    clock.set_now(NOW + timedelta(minutes=2))
    with world.transaction() as session:
        user = users.update_user(session, "officer", "admin", active=False)
        assert not user.active and user.tokens_valid_after == NOW + timedelta(minutes=2)
    [revoked] = _events(world, "user.tokens_revoked")
    assert (revoked.actor, revoked.subject) == ("officer", "user:officer")
    assert _events(world, "user.updated")[0].payload == {"active": False}
    with world.reading() as session, pytest.raises(NotFound, match="no user 999999"):
        users.get_user_by_id(session, 999_999)


def test_listing_users_filters_and_pages(world):
    with world.transaction() as session:
        for name, role, entity in (("a.viewer", "viewer", None), ("b.housing", "entity_user", "housing"),
                                   ("c.housing", "entity_user", "housing"), ("d.transport", "entity_user",
                                                                            "transport")):
            users.create_user(session, name, "a long password", role, entity_code=entity, actor="admin")
    with world.reading() as session:
        rows, total = users.list_users(session, limit=2, offset=1)
        assert ([u.username for u in rows], total) == (["b.housing", "c.housing"], 4)
        rows, total = users.list_users(session, role="entity_user", entity_code="housing")
        assert ([u.username for u in rows], total) == (["b.housing", "c.housing"], 2)


# --- seasons, entities, models -------------------------------------------------------------------------

def test_seasons_and_entities_record_their_creation(world):
    [season_event] = _events(world, "season.created")
    assert (season_event.actor, season_event.subject, season_event.payload) == (
        "admin", "season:1447", {"starts_on": "2026-04-18", "ends_on": "2026-07-16", "mode": "season"})
    created = _events(world, "entity.created")
    assert [(e.actor, e.subject) for e in created] == [("admin", "entity:housing"), ("admin", "entity:transport")]
    assert created[0].payload == {"name_ar": "الإسكان", "name_en": "Housing", "kind": "service"}


def test_updating_a_season_records_only_what_was_asked(world):
    with world.transaction() as session:
        season = seasons.update_season(session, seasons.get_season(session, 1447), actor="admin",
                                       ends_on=date(2026, 7, 17), holidays=["2026-05-27"])
        assert season.ends_on == date(2026, 7, 17) and season.starts_on == date(2026, 4, 18)
    with world.transaction() as session:
        seasons.update_season(session, seasons.get_season(session, 1447), actor="admin")  # nothing asked
    with world.transaction() as session, pytest.raises(InvalidInput, match="ends after it starts"):
        seasons.update_season(session, seasons.get_season(session, 1447), actor="admin", ends_on=date(2026, 1, 1))
    [event] = _events(world, "season.updated")
    assert (event.actor, event.subject, event.payload) == (
        "admin", "season:1447", {"ends_on": "2026-07-17", "holidays": ["2026-05-27"]})


def test_seasons_are_listed_newest_first(world):
    with world.transaction() as session:
        seasons.create_season(session, 1446, date(2025, 4, 28), date(2025, 7, 27), actor="admin")
        seasons.create_season(session, 1448, date(2027, 4, 8), date(2027, 7, 6), actor="admin")
    with world.reading() as session:
        assert [s.hijri_year for s in seasons.list_seasons(session)] == [1448, 1447, 1446]


def test_a_new_model_version_is_recorded_once_identical_content_not_at_all(db):
    with db.transaction() as session:
        first = process_models.deploy(session, read_model("two-steps.bpmn"), "two-steps.bpmn", "admin")
    with db.transaction() as session:
        again = process_models.deploy(session, read_model("two-steps.bpmn"), "two-steps.bpmn", "admin")
    assert first.created and not again.created
    [event] = _events(db, "model.deployed")
    model = first.model
    assert (event.actor, event.subject) == ("admin", f"model:{model.key}")
    assert event.payload == {"key": model.key, "version": 1, "checksum": model.checksum,
                             "filename": "two-steps.bpmn"}


# --- the login throttle ------------------------------------------------------------------------------

HOME, ELSEWHERE = "127.0.0.1", "127.0.0.9"


def test_retry_after_says_when_the_throttle_lifts(db):
    with db.transaction() as session:
        assert login_attempts.retry_after(session, "someone", HOME) == timedelta(0)
        for minute in range(login_attempts.MAX_FAILURES + 1):
            clock.set_now(NOW + timedelta(minutes=minute))
            login_attempts.record(session, "someone", HOME, False)
        clock.set_now(NOW + timedelta(minutes=12))
        assert login_attempts.throttled(session, "someone", HOME)
        # 11 failures at minutes 0-10: the throttle lifts when the one at minute 1 leaves the window
        assert login_attempts.retry_after(session, "someone", HOME) == timedelta(minutes=1) + login_attempts.WINDOW \
            - timedelta(minutes=12)
        clock.set_now(NOW + timedelta(minutes=16, seconds=1))
        assert not login_attempts.throttled(session, "someone", HOME)
        assert login_attempts.retry_after(session, "someone", HOME) == timedelta(0)


def test_failures_from_one_address_do_not_lock_the_user_out_of_another(db):
    with db.transaction() as session:
        for _ in range(login_attempts.MAX_FAILURES):
            login_attempts.record(session, "someone", ELSEWHERE, False)
        assert login_attempts.throttled(session, "someone", ELSEWHERE)
        assert not login_attempts.throttled(session, "someone", HOME)
        assert not login_attempts.throttled(session, "someone", None)


def test_one_address_trying_many_usernames_is_throttled_for_every_username(db):
    with db.transaction() as session:
        for number in range(login_attempts.MAX_CLIENT_FAILURES - 1):
            login_attempts.record(session, f"user{number % 7}", ELSEWHERE, False)
        assert not login_attempts.throttled(session, "fresh", ELSEWHERE)
        login_attempts.record(session, "user0", ELSEWHERE, True)  # a success does not count
        assert not login_attempts.throttled(session, "fresh", ELSEWHERE)
        login_attempts.record(session, "user0", ELSEWHERE, False)
        assert login_attempts.throttled(session, "fresh", ELSEWHERE)
        assert not login_attempts.throttled(session, "fresh", HOME)


def test_many_addresses_trying_one_username_meet_its_cap(db):
    clock.set_now(NOW)
    with db.transaction() as session:
        for number in range(login_attempts.MAX_USERNAME_FAILURES):
            login_attempts.record(session, "someone", f"127.0.{number // 200}.{number % 200 + 2}", False)
        assert login_attempts.throttled(session, "someone", HOME)
        assert not login_attempts.throttled(session, "someone else", HOME)
        assert login_attempts.retry_after(session, "someone", HOME) == login_attempts.WINDOW


# --- bulk escalation outcomes ------------------------------------------------------------------------

def test_bulk_outcomes_carry_the_refusals_code(world):
    deploy(world, "directive-standard.bpmn")
    deadline = NOW + timedelta(days=2)
    directive = _directive(world, deadline=deadline.isoformat(), process_model_key="directive_standard")
    clock.set_now(deadline + timedelta(minutes=1))
    timers.run_until_idle(world)
    [escalation] = escalations(world, directive.instance_id)
    with world.transaction() as session:
        outcomes = supervision.resolve_many(session, [escalation.id, 999_999, escalation.id], "comment",
                                            "supervisor", "")
    assert [(o.ok, o.code) for o in outcomes] == [(False, "invalid-input"), (False, "not-found"),
                                                   (False, "invalid-input")]
    with world.transaction() as session:
        outcomes = supervision.resolve_many(session, [escalation.id, escalation.id], "escalate", "supervisor", "up")
    assert [(o.ok, o.code, o.message) for o in outcomes] == [
        (True, "ok", "done"), (False, "conflict", f"escalation {escalation.id} was already resolved by supervisor")]


# --- searching the register --------------------------------------------------------------------------

@dataclass(frozen=True)
class Someone:
    username: str
    role: str
    entity_id: int | None = None
    active: bool = True


def _search(db, user, sort: str = "-created", limit: int = 50, offset: int = 0, **filters):
    with db.reading() as session:
        rows, total = directives.search(session, user, DirectiveFilters(**filters), sort, limit, offset)
        return [d.title for d in rows], total


@pytest.fixture
def register(world):
    _directive(world, launch=False, title="مساكن الحجاج", title_en="Pilgrim housing", priority="high")
    clock.set_now(NOW + timedelta(minutes=1))
    _directive(world, launch=True, title="حافلات النقل", title_en="Transport buses", responsible_entity="transport",
               supporting_entities=["housing"], deadline="PT2H", kind="directive")
    clock.set_now(NOW + timedelta(minutes=2))
    _directive(world, launch=True, title="100%_done", responsible_entity="transport", priority="urgent",
               deadline="PT9H")
    with world.reading() as session:
        ids = {e.code: e.id for e in entities.list_entities(session)}
    return world, ids


def test_search_filters_sorts_and_pages(register):
    db, _ = register
    viewer = Someone("viewer", "viewer")
    assert _search(db, viewer) == (["100%_done", "حافلات النقل", "مساكن الحجاج"], 3)
    assert _search(db, viewer, sort="created") == (["مساكن الحجاج", "حافلات النقل", "100%_done"], 3)
    assert _search(db, viewer, sort="-priority") == (["100%_done", "مساكن الحجاج", "حافلات النقل"], 3)
    assert _search(db, viewer, sort="deadline", limit=1, offset=1) == (["مساكن الحجاج"], 3)
    assert _search(db, viewer, status="draft") == (["مساكن الحجاج"], 1)
    assert _search(db, viewer, entity="housing") == (["حافلات النقل", "مساكن الحجاج"], 2)
    assert _search(db, viewer, kind="directive", track="business") == (["حافلات النقل"], 1)
    assert _search(db, viewer, season=1447, priority="urgent") == (["100%_done"], 1)
    assert _search(db, viewer, season=1446) == ([], 0)
    assert _search(db, viewer, text=" housing ") == (["مساكن الحجاج"], 1)
    assert _search(db, viewer, text="الحجاج") == (["مساكن الحجاج"], 1)
    assert _search(db, viewer, text="%") == (["100%_done"], 1)  # matched literally, not as a wildcard
    assert _search(db, viewer, text="0_d") == ([], 0)
    assert _search(db, viewer, escalated=True) == ([], 0)
    clock.set_now(NOW + timedelta(hours=3))
    assert _search(db, viewer, overdue=True) == (["حافلات النقل"], 1)
    assert _search(db, viewer, overdue=False, escalated=False)[1] == 2


def test_search_shows_an_entity_user_only_their_entitys_directives(register):
    db, ids = register
    assert _search(db, Someone("h", "entity_user", ids["housing"])) == (["حافلات النقل", "مساكن الحجاج"], 2)
    assert _search(db, Someone("t", "entity_user", ids["transport"]), sort="reference") == (
        ["حافلات النقل", "100%_done"], 2)
    assert _search(db, Someone("h", "entity_user", ids["housing"], active=False)) == ([], 0)
    assert _search(db, Someone("nobody", "entity_user")) == ([], 0)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"sort": "title"}, "unknown sort"),
    ({"status": "lost"}, "unknown status"),
    ({"priority": "critical"}, "unknown priority"),
    ({"text": "a\x00b"}, "NUL"),
    ({"limit": 0}, "limit"),
    ({"offset": -1}, "offset"),
])
def test_bad_searches_are_refused(register, arguments, message):
    db, _ = register
    with pytest.raises(InvalidInput, match=message):
        _search(db, Someone("viewer", "viewer"), **arguments)


def test_the_audit_trail_still_verifies_after_everything(register):
    db, _ = register
    with db.reading() as session:
        assert audit.verify(session).ok
