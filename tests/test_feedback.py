"""Pilgrim feedback: intake (signed-in and public), the public form's defences (rate limit per address,
signed token with a minimum age and single use, honeypot, length limits, links and direction-override
tricks), the unit's list and figures, triage, raising a directive, and the reports' feedback section."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import feedback
from engine.calendar.seasons import get_season
from engine.directives import directives
from engine.directives.directives import NewDirective
from engine.feedback import FeedbackFilters, FeedbackItem, NewFeedback, PublicLimits, PublicSubmission
from engine.foundation import clock
from engine.foundation.errors import Conflict, InvalidInput, NotFound
from engine.reports import daily, seasonal
from engine.storage import audit
from engine.storage.audit import AuditEvent
from engine.storage.db import Database
from tests.test_meetings import NOW, Who, build_world, entity_id

SECRET = b"s" * 32
ADMIN = Who("admin", "admin")
SECRETARIAT = Who("secretariat", "secretariat")


@pytest.fixture
def world(db):
    return build_world(db)


def record(db: Database, actor: str = "officer", **values) -> FeedbackItem:
    base = {"service": "transport", "rating": 2, "text": "تأخرت الحافلة من المطار أكثر من ثلاث ساعات",
            "entity": "transport", "tags": ["bus_delay"]}
    base.update(values)
    with db.transaction() as session:
        return feedback.record(session, NewFeedback(**base), actor)


def test_feedback_is_recorded_with_its_language_season_tags_and_audit(world):
    arabic = record(world)
    english = record(world, text="The lifts are out of order", service="housing", entity=None, rating=3,
                     tags=["Lifts", "maintenance", "lifts"])
    both = record(world, text=None, text_ar="استقبال ممتاز", text_en="Excellent reception", language="ar",
                  service="reception", entity=None, rating=5, tags=[])
    assert (arabic.language, arabic.text_ar, arabic.text_en) == ("ar", arabic.text, None)
    assert (english.language, english.text_en, english.text_ar) == ("en", "The lifts are out of order", None)
    assert [t.tag for t in english.tags] == ["lifts", "maintenance"]
    assert both.text == "استقبال ممتاز" and both.text_en == "Excellent reception"
    with world.reading() as session:
        item = session.get(FeedbackItem, arabic.id)
        assert item.season_id == get_season(session, 1447).id and item.status == "new" and item.channel == "api"
        [event] = audit.timeline(session, feedback.subject(arabic.id))
    assert event.action == "feedback.received" and event.actor == "officer"
    assert event.payload["entity"] == "transport" and event.payload["tags"] == ["bus_delay"]


@pytest.mark.parametrize(("values", "message"), [
    ({"service": "catering"}, "service"),
    ({"rating": 6}, "rating"),
    ({"rating": True}, "rating"),
    ({"text": None}, "needs its text"),
    ({"text": "   "}, "at least"),
    ({"text": "x" * 4001}, "at most"),
    ({"text": "نص\u202eمعكوس"}, "direction-override"),
    ({"text": "hidden\u2066text\u2069"}, "direction-override"),
    ({"text": "zero\u200bwidth"}, r"U\+200B"),
    ({"text": "bell\x07"}, r"U\+0007"),
    ({"text": "12345 !!!"}, "write a few words"),
    ({"entity": "atlantis"}, "unknown entity"),
    ({"tags": ["two words!"]}, "a tag is one word"),
    ({"language": "fr"}, "language"),
    ({"received_at": NOW + timedelta(days=1)}, "future"),
])
def test_bad_feedback_is_refused_and_nothing_stored(world, values, message):
    with pytest.raises(InvalidInput, match=message):
        record(world, **values)
    with world.reading() as session:
        assert session.scalar(select(func.count()).select_from(FeedbackItem)) == 0


def test_a_sending_systems_reference_is_used_once(world):
    record(world, source_ref="call-centre/991")
    with pytest.raises(Conflict, match="recorded already"):
        record(world, source_ref="call-centre/991")


# --- the public form ---------------------------------------------------------------------------------------

LIMITS = PublicLimits(min_seconds=3, max_age_seconds=3600, per_window=3, window_seconds=600, per_day=5)


def submit(db: Database, token: str | None = None, address: str = "10.0.0.1", age: float = 10,
           limits: PublicLimits = LIMITS, **values) -> feedback.IntakeResult:
    if token is None:
        token = feedback.issue_form_token(SECRET, clock.now() - timedelta(seconds=age))
    base = {"service": "housing", "rating": 1, "text": "التكييف لا يعمل في الغرفة منذ يومين", "entity": "housing"}
    base.update(values)
    return feedback.public_intake(db, SECRET, address, PublicSubmission(token=token, **base), limits)


def test_a_public_submission_is_stored_as_new_feedback(world):
    result = submit(world)
    assert result.accepted and result.feedback_id
    with world.reading() as session:
        item = session.get(FeedbackItem, result.feedback_id)
        assert (item.channel, item.submitted_by, item.entity.code, item.language) == ("public", "public", "housing",
                                                                                      "ar")
        assert item.form_nonce and len(item.form_nonce) == 24


@pytest.mark.parametrize(("values", "field", "message"), [
    ({"text": "زوروا موقعنا https://spam.example/offer"}, "text", "links"),
    ({"text": "best deals at www . cheap-visas . com"}, "text", "links"),
    ({"text": "راسلني على agent@mail.example للحجز"}, "text", "links"),
    ({"text": "ｃｈｅａｐ.ｃｏｍ visas"}, "text", "links"),  # full-width letters fold to a link
    ({"text": "<a href=x>click</a>"}, "text", "links"),
    ({"text": "رأي\u202eمعكوس"}, "text", "direction-override"),
    ({"text": "ok"}, "text", "at least 3"),
    ({"text": "ب" * 2001}, "text", "at most 2,000"),
    ({"service": "spa", "rating": 9}, "service", "one of"),
    ({"entity": "atlantis"}, "entity", "unknown entity"),
])
def test_public_spam_and_bad_input_are_refused_with_the_field_named(world, values, field, message):
    with pytest.raises(feedback.FeedbackRefused) as refused:
        submit(world, **values)
    assert any(d["field"] == field and message in d["message"] for d in refused.value.details), refused.value.details
    with world.reading() as session:
        assert session.scalar(select(func.count()).select_from(FeedbackItem)) == 0


def test_the_form_token_must_be_genuine_old_enough_fresh_and_used_once(world):
    wide = PublicLimits(min_seconds=3, max_age_seconds=3600)  # the rate limit is tested on its own
    with pytest.raises(feedback.FeedbackRefused, match="too quickly"):
        submit(world, age=1, limits=wide)
    with pytest.raises(feedback.FeedbackRefused, match="expired"):
        submit(world, age=3601, limits=wide)
    forged = feedback.issue_form_token(b"another secret key of 32 bytes!!", clock.now() - timedelta(seconds=10))
    with pytest.raises(feedback.FeedbackRefused, match="not valid"):
        submit(world, token=forged, limits=wide)
    good = feedback.issue_form_token(SECRET, clock.now() - timedelta(seconds=10))
    issued, nonce, signature = good.split(".")
    with pytest.raises(feedback.FeedbackRefused, match="not valid"):
        submit(world, token=f"{int(issued) - 60_000}.{nonce}.{signature}", limits=wide)  # older time, same signature
    for garbage in ("", "a.b", "x" * 250, "1.2.3.4"):
        with pytest.raises(feedback.FeedbackRefused, match="not valid"):
            submit(world, token=garbage, address=f"garbage-{len(garbage)}")
    assert submit(world, token=good, limits=wide).accepted
    with pytest.raises(feedback.FeedbackRefused, match="sent already"):
        submit(world, token=good, address="10.9.9.9")


def test_a_filled_honeypot_is_dropped_quietly(world):
    result = submit(world, website="http://spam.example")
    assert result == feedback.IntakeResult(False, dropped="honeypot")
    with world.reading() as session:
        assert session.scalar(select(func.count()).select_from(FeedbackItem)) == 0


def test_the_rate_limit_counts_every_attempt_per_address_in_the_database(world):
    for _ in range(2):
        assert submit(world).accepted
    with pytest.raises(feedback.FeedbackRefused):
        submit(world, text="x")  # refused, but counted
    with pytest.raises(feedback.RateLimited) as limited:
        submit(world)
    assert 0 < limited.value.retry_after <= 600
    assert submit(world, address="10.0.0.2").accepted  # another address has its own count
    clock.set_now(NOW + timedelta(minutes=11))  # a new window ...
    assert submit(world).accepted  # the 5th attempt of the day (refused and limited ones count too)
    with pytest.raises(feedback.RateLimited) as limited:  # ... but the day's limit (5 attempts) is reached
        submit(world)
    assert limited.value.retry_after > 600
    clock.set_now(NOW + timedelta(days=1, minutes=12))
    assert submit(world).accepted
    with world.reading() as session:
        keys = session.scalars(select(feedback.PublicRateLimit.client_key)).all()
    assert len(keys) == 2 and all(len(k) == 64 and "10.0.0" not in k for k in keys)  # no address is stored


def test_stale_rate_limit_rows_are_forgotten(world):
    submit(world, address="10.1.1.1")
    clock.set_now(NOW + timedelta(days=3))
    submit(world, address="10.1.1.2")
    with world.reading() as session:
        assert session.scalar(select(func.count()).select_from(feedback.PublicRateLimit)) == 1


# --- the unit's list, triage, raising a directive -----------------------------------------------------------------

def test_the_list_filters_pages_and_keeps_entity_users_to_their_entity(world):
    record(world, rating=1, service="housing", entity="housing", text="التكييف لا يعمل", tags=["maintenance"])
    record(world, rating=2)
    record(world, rating=5, service="reception", entity=None, text="Excellent reception", tags=[])
    clock.set_now(NOW + timedelta(hours=1))
    record(world, rating=4, service="transport", text="The buses are comfortable", tags=[])
    with world.reading() as session:
        def ids(filters=None, user=ADMIN, **kwargs):
            rows, total = feedback.search(session, user, filters, **kwargs)
            return [r.rating for r in rows], total

        assert ids() == ([4, 5, 2, 1], 4)  # newest first
        assert ids(sort="rating") == ([1, 2, 4, 5], 4)
        assert ids(limit=2, offset=1) == ([5, 2], 4)
        assert ids(FeedbackFilters(service="transport")) == ([4, 2], 2)
        assert ids(FeedbackFilters(entity="none")) == ([5], 1)
        assert ids(FeedbackFilters(rating_max=2)) == ([2, 1], 2)
        assert ids(FeedbackFilters(tag="Maintenance")) == ([1], 1)
        assert ids(FeedbackFilters(text="buses")) == ([4], 1)
        assert ids(FeedbackFilters(text="التكييف")) == ([1], 1)
        assert ids(FeedbackFilters(season=1447, received_to=NOW + timedelta(minutes=1))) == ([5, 2, 1], 3)
        assert ids(FeedbackFilters(raised=True)) == ([], 0)
        transport = Who("t", "entity_user", entity_id=entity_id(world, "transport"))
        assert ids(user=transport) == ([4, 2], 2)
        assert ids(user=Who("nobody", "entity_user")) == ([], 0)
        with pytest.raises(InvalidInput):
            feedback.search(session, ADMIN, FeedbackFilters(service="spa"))
        with pytest.raises(InvalidInput):
            feedback.search(session, ADMIN, sort="colour")
        figures = feedback.figures(session, ADMIN)
        assert (figures.responses, figures.mean_rating, figures.low_ratings) == (4, 3.0, 2)
        assert figures.by_rating == {1: 1, 2: 1, 3: 0, 4: 1, 5: 1}
        assert figures.by_service["transport"] == (2, 3.0) and figures.by_entity[None] == (1, 5.0)
        assert feedback.figures(session, transport).responses == 2


def test_triage_changes_status_tags_note_and_entity_and_records_them(world):
    item = record(world, entity=None, tags=[])
    with world.transaction() as session:
        feedback.update(session, Who("officer", "follow_up_officer"), item.id, status="reviewed",
                        tags=["bus_delay", "airport"], note="تم التواصل مع شركة النقل", entity="transport")
    with world.reading() as session:
        item = session.get(FeedbackItem, item.id)
        assert item.status == "reviewed" and sorted(t.tag for t in item.tags) == ["airport", "bus_delay"]
        assert item.entity.code == "transport" and item.updated_by == "officer"
        events = audit.timeline(session, feedback.subject(item.id))
    assert [e.action for e in events] == ["feedback.received", "feedback.updated"]
    assert events[1].payload["status"] == {"from": "new", "to": "reviewed"}
    from engine.directives import access

    with pytest.raises(access.Forbidden), world.transaction() as session:
        feedback.update(session, Who("v", "viewer"), item.id, status="dismissed")
    with pytest.raises(InvalidInput, match="by hand"), world.transaction() as session:
        feedback.update(session, ADMIN, item.id, status="raised")
    with pytest.raises(NotFound), world.transaction() as session:
        feedback.update(session, Who("h", "entity_user", entity_id=entity_id(world, "housing")), item.id, note="x")


def test_raising_a_directive_from_several_items_links_them_and_carries_their_tags(world):
    first = record(world, tags=["bus_delay", "airport"])
    second = record(world, rating=1, text="The bus never came", tags=["bus_delay", "waiting_time"])
    with world.reading() as session:
        suggestion = feedback.suggest_directive(session, [first.id, second.id], SECRETARIAT)
    assert suggestion.responsible_entity == "transport" and suggestion.tags == ["airport", "bus_delay", "waiting_time"]
    assert "The bus never came" in suggestion.body and suggestion.deadline == "P3D"
    new = NewDirective(title="معالجة تأخر الحافلات", kind="directive", responsible_entity="transport",
                       deadline="PT24H", tags=["transport"], process_model_key="deadline")
    with world.transaction() as session:
        directive = feedback.raise_directive(session, [first.id, second.id], SECRETARIAT, new)
    assert directive.status == directives.DRAFT
    assert sorted(t.tag for t in directive.tags) == ["airport", "bus_delay", "transport", "waiting_time"]
    with world.reading() as session:
        assert [i.id for i in feedback.feedback_of_directive(session, directive.id)] == [first.id, second.id]
        linked = feedback.linked_directives(session, [first.id, second.id])
        assert [d.id for d in linked[first.id]] == [directive.id]
        assert {session.get(FeedbackItem, i).status for i in (first.id, second.id)} == {"raised"}
        actions = [e.action for e in audit.timeline(session, directives.subject(directive.id))]
        assert actions == ["directive.created", "directive.raised_from_feedback"]
        assert [e.action for e in audit.timeline(session, feedback.subject(first.id))][-1] == "feedback.raised"
        assert feedback.search(session, ADMIN, FeedbackFilters(raised=True))[1] == 2
    with world.transaction() as session:  # without a directive given, the suggestion is used
        third = feedback.record(session, NewFeedback(service="housing", rating=2, text="No water", entity="housing"),
                                "officer")
        suggested = feedback.raise_directive(session, [third.id], SECRETARIAT,
                                             NewDirective(**{**feedback.suggest_directive(session, [third.id]).__dict__,
                                                             "process_model_key": "deadline"}))
        assert suggested.responsible_entity.code == "housing" and "No water" in suggested.body


def test_raising_needs_the_right_role_and_visible_items(world):
    item = record(world)
    from engine.directives import access

    with pytest.raises(access.Forbidden), world.transaction() as session:
        feedback.raise_directive(session, [item.id], Who("officer", "follow_up_officer"))
    with pytest.raises(NotFound, match="no feedback 999999"), world.transaction() as session:
        feedback.raise_directive(session, [item.id, 999_999], SECRETARIAT)
    with pytest.raises(InvalidInput, match="distinct"), world.transaction() as session:
        feedback.raise_directive(session, [item.id, item.id], SECRETARIAT)
    with pytest.raises(InvalidInput, match="unknown entity"), world.transaction() as session:
        feedback.raise_directive(session, [record(world, entity=None).id], SECRETARIAT)  # nobody to address
    with world.reading() as session:
        assert session.scalar(select(func.count()).select_from(directives.Directive)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "feedback.raised")) == 0


# --- the reports ---------------------------------------------------------------------------------------------------

def test_the_daily_and_seasonal_reports_show_feedback_figures(world):
    record(world, rating=1, service="housing", entity="housing", text="التكييف لا يعمل")
    record(world, rating=3, service="housing", entity="housing", text="المسكن نظيف", tags=[])
    record(world, rating=5, service="reception", entity=None, text=None, text_ar="استقبال ممتاز",
           text_en="Excellent reception", tags=[])
    with world.reading() as session:
        day = daily(session, NOW.date())
        season = seasonal(session, get_season(session, 1447))
        assert daily(session, NOW.date() - timedelta(days=3)).feedback is None  # no feedback that day
    summary = day.feedback
    assert summary is not None and summary.responses == 3 and summary.mean_rating == 3.0
    rows = {(r.entity.code, r.responses, r.mean_rating, r.low_ratings) for r in summary.by_entity}
    assert rows == {("housing", 2, 2.0, 1), ("-reception", 1, 5.0, 0)}
    assert [c.rating for c in summary.comments] == [1, 3, 5]
    assert summary.comments[-1].text_en == "Excellent reception"
    assert season.feedback is not None and season.feedback.responses == 3


def test_demo_feedback_comes_from_the_sample_file_with_tags(world):
    import random

    from engine.system.demo import season_data

    samples = season_data()["feedback"]
    with world.transaction() as session:
        made = feedback.seed_demo(session, samples, NOW - timedelta(days=5), NOW, random.Random(1), copies=2)
    assert len(made) == 2 * len(samples)
    tags = {t.tag for item in made for t in item.tags}
    assert {"bus_delay", "maintenance", "interpreters", "signage"} <= tags
    assert {item.entity.code for item in made if item.entity} <= {"housing", "transport"}
