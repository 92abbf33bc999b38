"""Notification delivery against a real SMTP server on loopback (aiosmtpd), on SQLite and PostgreSQL:
fan-out, Arabic and English messages with Hijri dates, retries with backoff, permanent failure,
exactly one send with concurrent workers, nothing lost after a crash, TLS, the daily digest and
the in-app inbox."""

from __future__ import annotations

import ipaddress
import itertools
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from argon2 import PasswordHasher
from pydantic import ValidationError
from sqlalchemy import select

import engine.people.users
from engine.calendar.seasons import create_season
from engine.delivery import notification_delivery as nd
from engine.directives.directives import Directive
from engine.foundation import clock
from engine.foundation.errors import NotFound
from engine.people.entities import Entity, create_entity
from engine.people.users import create_user
from engine.work import timers
from engine.work.notifications import Delivery, Notification
from tests.helpers import deploy, start

T0 = datetime(2026, 6, 1, 8, tzinfo=UTC)  # 11:00 in Riyadh, 15 Dhu al-Hijjah 1447
DEADLINE = T0 + timedelta(hours=3)  # 14:00 in Riyadh


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    """Real `create_user`, with Argon2 parameters that cost a millisecond instead of 100."""
    monkeypatch.setattr(engine.people.users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


# --------------------------------------------------------------------------------------------------
# Shortcuts
# --------------------------------------------------------------------------------------------------

def _people(db) -> dict[str, int]:
    """Two entities and users of several roles, languages and channels; returns user ids by username."""
    with db.transaction() as session:
        create_entity(session, "housing", "الإسكان", "Housing")
        create_entity(session, "transport", "النقل", "Transport")
        users = [
            create_user(session, "housing.ar", "password-123", "entity_user", full_name="سعد الحربي",
                        email="saad@housing.example", entity_code="housing", language="ar"),
            create_user(session, "housing.en", "password-123", "entity_user", full_name="Omar Khan",
                        email="omar@housing.example", entity_code="housing", language="en"),
            create_user(session, "housing.noemail", "password-123", "entity_user", entity_code="housing"),
            create_user(session, "housing.viewer", "password-123", "viewer", email="viewer@housing.example",
                        entity_code="housing"),
            create_user(session, "transport.ar", "password-123", "entity_user", email="t@transport.example",
                        entity_code="transport"),
            create_user(session, "officer", "password-123", "follow_up_officer", full_name="Follow-up officer",
                        email="officer@unit.example", language="en"),
            create_user(session, "supervisor", "password-123", "supervisor", email="sup@unit.example"),
        ]
        retired = create_user(session, "officer.retired", "password-123", "follow_up_officer",
                              email="old@unit.example")
        retired.active = False
        return {u.username: u.id for u in [*users, retired]}


_keys = itertools.count(1)


def _notify(db, template: str, *, role: str | None = None, entity: str | None = None,
            payload: dict[str, Any] | None = None, key: str | None = None) -> int:
    with db.transaction() as session:
        notification = Notification(
            source_key=key or f"test:{next(_keys)}",
            template=template, recipient_role=role, recipient_entity=entity, payload=payload or {},
            status="pending", created_at=clock.now())
        session.add(notification)
        session.flush()
        return notification.id


def _fan_out(db) -> nd.FanOutResult:
    with db.transaction() as session:
        return nd.fan_out(session)


def _deliveries(db, **where: Any) -> list[Delivery]:
    with db.reading() as session:
        query = select(Delivery).order_by(Delivery.id)
        for name, value in where.items():
            query = query.where(getattr(Delivery, name) == value)
        return list(session.scalars(query))


def _routes(db) -> set[tuple[str, str]]:
    with db.reading() as session:
        user = engine.people.users.User
        rows = session.execute(select(user.username, Delivery.channel).join(Delivery, Delivery.user_id == user.id))
        return {tuple(row) for row in rows}


# --------------------------------------------------------------------------------------------------
# Fan-out
# --------------------------------------------------------------------------------------------------

def test_fan_out_reaches_entity_users_or_role_users_on_the_right_channels(db):
    clock.set_now(T0)
    _people(db)
    _notify(db, "reminder", entity="housing", key="k1")
    result = _fan_out(db)
    assert (result.notifications, result.deliveries) == (1, 5)
    # An entity alone means its entity users (not its viewer); email only for those with an address.
    assert _routes(db) == {("housing.ar", "in_app"), ("housing.ar", "email"), ("housing.en", "in_app"),
                           ("housing.en", "email"), ("housing.noemail", "in_app")}

    _notify(db, "submitted", role="follow_up_officer", key="k2")  # a role alone: every active user of it
    _notify(db, "reminder", role="viewer", entity="housing", key="k3")  # both: that role in that entity
    _fan_out(db)
    routes = _routes(db)
    assert {("officer", "email"), ("officer", "in_app"), ("housing.viewer", "email")} <= routes
    assert not any(name in {"officer.retired", "supervisor", "transport.ar"} for name, _ in routes)
    with db.reading() as session:
        assert {n.status for n in session.scalars(select(Notification))} == {"fanned_out"}
    in_app = _deliveries(db, channel="in_app")
    email_ = _deliveries(db, channel="email")
    assert {d.status for d in in_app} == {"sent"} and {d.status for d in email_} == {"pending"}
    assert all(d.next_attempt_at == T0 and d.attempts == 0 for d in email_)
    assert {d.language for d in email_ if d.user_id} == {"ar", "en"}


def test_fan_out_is_idempotent_and_flags_a_notification_nobody_receives(db):
    clock.set_now(T0)
    _people(db)
    _notify(db, "assigned", entity="housing", key="a")
    nobody = _notify(db, "assigned", entity="reception", key="b")  # an entity without users
    first = _fan_out(db)
    assert first.without_recipients == [nobody]
    assert _fan_out(db).notifications == 0
    with db.transaction() as session:  # even re-opened by hand, no delivery is created twice
        session.execute(Notification.__table__.update().values(status="pending"))
    again = _fan_out(db)
    assert (again.notifications, again.deliveries) == (2, 0)
    assert len(_deliveries(db)) == first.deliveries == 5
    with db.reading() as session:
        assert session.get(Notification, nobody).status == "no_recipients"


# --------------------------------------------------------------------------------------------------
# Content: Arabic and English, Hijri and Gregorian dates, Riyadh time
# --------------------------------------------------------------------------------------------------

def _directive_for(db, instance_id: int) -> None:
    with db.transaction() as session:
        season = create_season(session, 1447, date(2026, 5, 1), date(2026, 7, 15))
        housing = session.scalar(select(Entity).where(Entity.code == "housing"))
        session.add(Directive(
            reference="1447/0042", season_id=season.id, kind="directive", title="تجهيز مساكن الحجاج قبل وصولهم",
            title_en="Prepare pilgrims' housing before arrival", issued_on=date(2026, 5, 20), track="business",
            programme_track="tansiq", priority="high", responsible_entity_id=housing.id, deadline_at=DEADLINE,
            status="active", instance_id=instance_id, created_by="secretariat", created_at=T0,
            current_steps=["acknowledge"], current_due_at=DEADLINE, escalation_level=0, extension_count=0,
        ))


def test_a_reminder_from_a_process_reaches_each_user_in_their_language(db, smtp):
    server = smtp()
    _people(db)
    deploy(db, "deadline.bpmn")
    clock.set_now(T0)
    instance_id = start(db, "deadline", {"responsible_entity": "housing", "deadline": DEADLINE.isoformat()})
    _directive_for(db, instance_id)
    clock.set_now(DEADLINE - timedelta(minutes=30))
    assert timers.run_until_idle(db).fired == 1  # the model's reminder timer calls `notify`

    report = nd.run_once(db, server.settings())
    assert (report.sent, report.retrying, report.failed) == (2, 0, 0)

    [arabic] = server.mailbox.to("saad@housing.example")
    assert arabic.mail_from == "tansiq@hajj.example"
    assert arabic.subject.startswith("تذكير: التوجيه 1447/0042")
    assert "١٥ ذو الحجة ١٤٤٧هـ (١ يونيو ٢٠٢٦م) ١٤:٠٠" in arabic.subject
    assert "السلام عليكم سعد الحربي" in arabic.text
    assert "للمهمة «Acknowledge» ضمن التوجيه «تجهيز مساكن الحجاج قبل وصولهم»" in arabic.text
    assert "الاثنين ١٥ ذو الحجة ١٤٤٧هـ الموافق ١ يونيو ٢٠٢٦م، الساعة ١٤:٠٠ بتوقيت الرياض" in arabic.text
    assert "• الجهة: الإسكان" in arabic.text
    assert '<html lang="ar" dir="rtl">' in arabic.html and "<li>الجهة: الإسكان</li>" in arabic.html
    assert arabic.message["Content-Language"] == "ar"
    assert str(arabic.message["To"]) == "سعد الحربي <saad@housing.example>"

    [english] = server.mailbox.to("omar@housing.example")
    assert english.subject == "Reminder: directive 1447/0042 — due 15 Dhu al-Hijjah 1447 AH (1 June 2026) 14:00"
    assert "Dear Omar Khan," in english.text
    assert "the step “Acknowledge” of the directive “Prepare pilgrims' housing before arrival”" in english.text
    assert "Monday 15 Dhu al-Hijjah 1447 AH (1 June 2026), 14:00 Riyadh time" in english.text
    assert 'dir="ltr"' in english.html
    # Each delivery has its own Message-ID, the same on any resend.
    assert arabic.message["Message-ID"] != english.message["Message-ID"]
    assert arabic.message["Message-ID"].startswith("<tansiq.delivery.")
    assert {d.status for d in _deliveries(db, channel="email")} == {"sent"}


@pytest.mark.parametrize("language", ["ar", "en"])
def test_every_template_renders_and_an_unknown_one_falls_back_to_a_generic_message(language):
    context = {"user_name": "x", "reference": "1447/0007", "title": "T", "step": "S", "entity_name": "E",
               "due": "2026-06-01T11:00:00+00:00", "level": 2, "reason": "unacknowledged", "comment": "C",
               "decision": "granted", "new_due": "2026-06-03T09:00:00Z", "day": "2026-06-01",
               "open_count": 1, "overdue_count": 0, "items": [{"name": "S", "due": None, "overdue": False}]}
    expected = {
        "ar": {"reminder": "تذكير", "escalation": "تصعيد من المستوى ٢", "submitted": "بانتظار التحقق",
               "returned_for_rework": "أُعيد للاستكمال", "extension_decided": "تمت الموافقة على طلب التمديد",
               "assigned": "مهمة جديدة", "daily_digest": "الملخص اليومي"},
        "en": {"reminder": "Reminder", "escalation": "Escalation, level 2", "submitted": "Awaiting verification",
               "returned_for_rework": "Returned for rework", "extension_decided": "Extension granted",
               "assigned": "New step", "daily_digest": "Daily digest"},
    }[language]
    for key, words in expected.items():
        message = nd.render(key, context, language)
        assert message.subject.startswith(words), (key, message.subject)
        assert (("١٤٤٧" in message.text and "٢٠٢٦" in message.text) if language == "ar"
                else ("1447" in message.text and "2026" in message.text))
    assert "عدم الإقرار بالاستلام في الموعد" in nd.render("escalation", context, "ar").text
    extended = nd.render("extension_decided", context, language).text
    assert ("١٧ ذو الحجة ١٤٤٧هـ" if language == "ar" else "17 Dhu al-Hijjah 1447 AH") in extended
    unknown = nd.render("pilgrim_feedback_received", {"payload": {"score": 4}}, language)
    assert "pilgrim_feedback_received" in unknown.subject
    assert ("• score: ٤" if language == "ar" else "• score: 4") in unknown.text
    broken = nd.render("daily_digest", {**context, "items": 5}, language)  # a payload the template cannot read
    assert "daily_digest" in broken.subject


@pytest.mark.parametrize("language", ["ar", "en"])
def test_messages_link_to_the_step_at_the_public_address(language, monkeypatch):
    from engine.foundation.settings import get_settings

    assert nd.link_for(7, 12) is None or get_settings().public_url  # no address known: no link
    monkeypatch.setenv("TANSIQ_PUBLIC_URL", "https://tansiq.example.org/")
    get_settings.cache_clear()
    try:
        assert nd.link_for(7, 12) == "https://tansiq.example.org/steps/12"
        assert nd.link_for(7, None) == "https://tansiq.example.org/directives/7"
        assert nd.link_for(None, None, digest=True) == "https://tansiq.example.org/inbox"
        message = nd.render("reminder", {"user_name": "x", "reference": "1447/0007",
                                         "link": nd.link_for(7, 12)}, language)
        assert "https://tansiq.example.org/steps/12" in message.text
        assert '<a href="https://tansiq.example.org/steps/12">' in message.html
        plain = nd.render("reminder", {"user_name": "x", "reference": "1447/0007", "link": None}, language)
        assert "http" not in plain.text and "<a " not in plain.html
    finally:
        get_settings.cache_clear()


# --------------------------------------------------------------------------------------------------
# Retries, permanent failure, concurrency, crashes
# --------------------------------------------------------------------------------------------------

def _one_email(db, address: str = "officer@unit.example") -> None:
    clock.set_now(T0)
    with db.transaction() as session:
        create_user(session, "someone", "password-123", "follow_up_officer", email=address, language="en")
    _notify(db, "submitted", role="follow_up_officer", payload={"step": "Verify evidence"})
    _fan_out(db)


def test_a_refusing_server_is_retried_with_exponential_backoff_until_it_accepts(db, smtp):
    server = smtp()
    server.mailbox.refuse_data = 3
    settings = server.settings()
    _one_email(db)
    waits = []
    for expected_attempts in (1, 2, 3):
        report = nd.deliver_due(db, settings)
        assert (report.claimed, report.retrying) == (1, 1)
        [delivery] = _deliveries(db, channel="email")
        assert delivery.attempts == expected_attempts and delivery.status == "pending"
        assert delivery.last_error == "451 4.3.0 try later"
        waits.append(delivery.next_attempt_at - clock.now())
        clock.set_now(delivery.next_attempt_at - timedelta(seconds=1))
        assert nd.deliver_due(db, settings).claimed == 0  # not before it is due
        clock.set_now(delivery.next_attempt_at)
    assert waits == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert nd.deliver_due(db, settings).sent == 1
    [delivery] = _deliveries(db, channel="email")
    assert (delivery.status, delivery.attempts, delivery.sent_at, delivery.last_error) == ("sent", 4, clock.now(), None)
    assert len(server.mailbox.received) == 1
    assert nd.deliver_due(db, settings).claimed == 0
    assert nd.backoff(12, settings) == timedelta(hours=1)  # capped


def test_a_stopped_server_is_retried_then_failed_after_the_last_attempt_and_can_be_requeued(db, smtp):
    server = smtp()
    server.stop()
    settings = server.settings(max_attempts=3)
    _one_email(db)
    for _ in range(3):
        report = nd.deliver_due(db, settings)
        [delivery] = _deliveries(db, channel="email")
        if delivery.next_attempt_at:
            clock.set_now(delivery.next_attempt_at)
    assert (report.retrying, report.failed) == (0, 1)
    [delivery] = _deliveries(db, channel="email")
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
    assert delivery.last_error.startswith(f"cannot connect to 127.0.0.1:{server.port}: ConnectionRefusedError")
    clock.set_now(clock.now() + timedelta(days=1))
    assert nd.deliver_due(db, settings).claimed == 0  # failed for good

    server.start()  # the relay is back: an operator requeues what failed
    with db.transaction() as session:
        assert nd.requeue_failed(session) == 1
        assert nd.delivery_counts(session) == {"email:pending": 1, "in_app:sent": 1}
    assert nd.deliver_due(db, settings).sent == 1
    assert len(server.mailbox.received) == 1


def test_a_refused_recipient_fails_at_once_and_the_others_are_still_sent(db, smtp):
    server = smtp()
    server.mailbox.refuse_recipients = {"gone@unit.example"}
    _one_email(db, "gone@unit.example")
    with db.transaction() as session:
        create_user(session, "another", "password-123", "follow_up_officer", email="another@unit.example")
        create_user(session, "typo", "password-123", "follow_up_officer", email="typo@@unit.example")
    _notify(db, "submitted", role="follow_up_officer", key="second")
    _fan_out(db)
    report = nd.deliver_due(db, server.settings())
    assert (report.sent, report.failed, report.retrying) == (1, 3, 0)  # "someone" had two messages
    errors = sorted((d.attempts, d.last_error) for d in _deliveries(db, channel="email", status="failed"))
    assert errors == [(1, "cannot build the message: not a valid email address: 'typo@@unit.example'"),
                      (1, "recipient refused: 550 5.1.1 no such mailbox"),
                      (1, "recipient refused: 550 5.1.1 no such mailbox")]
    assert [r.rcpt_tos for r in server.mailbox.received] == [["another@unit.example"]]


def test_two_concurrent_deliverers_send_every_message_exactly_once(db, smtp):
    server = smtp()
    server.mailbox.delay = 0.003
    settings = server.settings(batch_size=4)
    clock.set_now(T0)
    with db.transaction() as session:
        create_entity(session, "reception", "الاستقبال", "Reception")
        for n in range(12):
            create_user(session, f"r{n}", "password-123", "entity_user", email=f"r{n}@reception.example",
                        entity_code="reception")
    for n in range(3):
        _notify(db, "assigned", entity="reception", key=f"n{n}", payload={"step": f"Step {n}"})
    _fan_out(db)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    shares: list[int] = []

    def worker() -> None:
        try:
            barrier.wait()
            sent = 0
            while (report := nd.deliver_due(db, settings)).claimed:
                sent += report.sent
            shares.append(sent)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(shares) == 36, shares
    print(f"\nmessages sent by each of two workers: {shares}")
    ids = [r.message["Message-ID"] for r in server.mailbox.received]
    assert len(ids) == 36 and len(set(ids)) == 36
    assert {(d.status, d.attempts) for d in _deliveries(db, channel="email")} == {("sent", 1)}


def test_a_crash_between_claim_and_commit_loses_nothing(db, smtp, monkeypatch):
    server = smtp()
    settings = server.settings(lease_seconds=300)
    _one_email(db)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("worker killed")

    monkeypatch.setattr("smtplib.SMTP.send_message", crash)
    with pytest.raises(SystemExit):
        nd.deliver_due(db, settings)
    monkeypatch.undo()
    [delivery] = _deliveries(db, channel="email")
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert nd.deliver_due(db, settings).claimed == 0  # still reserved by the dead worker's lease
    clock.set_now(T0 + timedelta(seconds=300))
    assert nd.deliver_due(db, settings).sent == 1
    assert len(server.mailbox.received) == 1


# --------------------------------------------------------------------------------------------------
# TLS: STARTTLS with login, implicit TLS, certificate verification
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder


def _server_tls(folder: Path):
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"relay", b"s3cret-pass")
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


def test_starttls_with_login_and_implicit_tls_verify_the_server_certificate(db, smtp, certificate):
    _one_email(db)
    starttls = smtp(tls_context=_server_tls(certificate), require_starttls=True, auth_required=True,
                    authenticator=_authenticator)
    untrusted = starttls.settings(security="starttls", username="relay", password="s3cret-pass")
    assert nd.deliver_due(db, untrusted).retrying == 1  # a certificate we do not trust: not sent
    [delivery] = _deliveries(db, channel="email")
    assert "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
    clock.set_now(delivery.next_attempt_at)
    wrong = starttls.settings(security="starttls", ca_file=certificate / "cert.pem", username="relay",
                              password="wrong-pass")
    assert nd.deliver_due(db, wrong).retrying == 1
    [delivery] = _deliveries(db, channel="email")
    assert delivery.last_error.startswith("cannot connect") and "535" in delivery.last_error
    clock.set_now(delivery.next_attempt_at)
    trusted = starttls.settings(security="starttls", ca_file=certificate / "cert.pem", username="relay",
                                password="s3cret-pass")
    assert nd.deliver_due(db, trusted).sent == 1
    [received] = starttls.mailbox.received
    assert received.login == "relay"

    implicit = smtp(ssl_context=_server_tls(certificate))
    with db.transaction() as session:
        assert nd.requeue_failed(session) == 0
        session.execute(Delivery.__table__.update().where(Delivery.channel == "email")
                        .values(status="pending", next_attempt_at=clock.now()))
    assert nd.deliver_due(db, implicit.settings(security="tls", ca_file=certificate / "cert.pem")).sent == 1
    assert len(implicit.mailbox.received) == 1


def test_smtp_settings_come_from_the_environment_and_refuse_clear_text_passwords(monkeypatch):
    monkeypatch.setenv("TANSIQ_SMTP_HOST", "relay.hajj.example")
    monkeypatch.setenv("TANSIQ_SMTP_PORT", "587")
    monkeypatch.setenv("TANSIQ_SMTP_SECURITY", "starttls")
    monkeypatch.setenv("TANSIQ_SMTP_USERNAME", "tansiq")
    monkeypatch.setenv("TANSIQ_SMTP_PASSWORD", "secret")
    monkeypatch.setenv("TANSIQ_SMTP_SENDER", "noreply@hajj.example")
    settings = nd.SmtpSettings()
    assert (settings.host, settings.port, settings.security, settings.sender) == (
        "relay.hajj.example", 587, "starttls", "noreply@hajj.example")
    assert settings.password.get_secret_value() == "secret" and "secret" not in repr(settings)
    monkeypatch.setenv("TANSIQ_SMTP_SECURITY", "none")
    with pytest.raises(ValidationError, match="only over TLS"):
        nd.SmtpSettings()
    monkeypatch.setenv("TANSIQ_SMTP_HOST", "127.0.0.1")  # a local relay may take them in the clear
    assert nd.SmtpSettings().security == "none"
    assert nd.SmtpSettings(_env_file=None, host="::1", username="u", security="none").host == "::1"
    monkeypatch.delenv("TANSIQ_SMTP_USERNAME")
    monkeypatch.delenv("TANSIQ_SMTP_HOST")
    defaults = nd.SmtpSettings(security="none", port=25)
    assert (defaults.host, defaults.max_attempts) == ("127.0.0.1", 8)


# --------------------------------------------------------------------------------------------------
# Daily digest and the in-app inbox
# --------------------------------------------------------------------------------------------------

def test_the_daily_digest_lists_each_entitys_open_steps_once_per_day(db, smtp):
    server = smtp()
    _people(db)
    deploy(db, "deadline.bpmn")
    clock.set_now(T0 - timedelta(hours=2))
    start(db, "deadline", {"responsible_entity": "housing", "deadline": (T0 - timedelta(hours=1)).isoformat()})
    clock.set_now(T0)  # no timer runs: that first step is open and overdue
    for entity in ("housing", "transport"):
        start(db, "deadline", {"responsible_entity": entity, "deadline": DEADLINE.isoformat()})
    day = nd.riyadh_today()
    assert day == date(2026, 6, 1)
    with db.transaction() as session:
        created = nd.daily_digest(session, day)
    assert sorted(n.source_key for n in created) == ["digest:housing:2026-06-01", "digest:transport:2026-06-01"]
    housing = next(n for n in created if n.recipient_entity == "housing")
    assert (housing.payload["open_count"], housing.payload["overdue_count"]) == (2, 1)
    assert housing.payload["items"][0]["overdue"] is True and housing.payload["items"][1]["overdue"] is False

    start(db, "deadline", {"responsible_entity": "housing", "deadline": DEADLINE.isoformat()})
    with db.transaction() as session:
        assert nd.daily_digest(session, day) == []  # once per entity and day
    nd.run_once(db, server.settings())
    [english] = server.mailbox.to("omar@housing.example")
    assert english.subject == "Daily digest — Housing — 15 Dhu al-Hijjah 1447 AH (1 June 2026): 2 open, 1 overdue"
    assert english.text.count("• Acknowledge — deadline: ") == 2 and english.text.count("— OVERDUE") == 1
    [arabic] = server.mailbox.to("saad@housing.example")
    assert "الملخص اليومي — الإسكان — ١٥ ذو الحجة ١٤٤٧هـ (١ يونيو ٢٠٢٦م)" in arabic.subject
    assert "المهام المفتوحة: ٢ — المتأخرة منها: ١" in arabic.text and "— متأخرة" in arabic.text
    assert len(server.mailbox.to("t@transport.example")) == 1

    with db.transaction() as session:
        tomorrow = nd.daily_digest(session, day + timedelta(days=1))
    assert {n.recipient_entity: n.payload["open_count"] for n in tomorrow} == {"housing": 3, "transport": 1}


def test_the_inbox_lists_in_app_notifications_and_only_their_owner_marks_them_read(db):
    clock.set_now(T0)
    ids = _people(db)
    _notify(db, "returned_for_rework", entity="housing", payload={"step": "خطة العمل", "comment": "أرفقوا الشواهد"},
            key="rework")
    clock.set_now(T0 + timedelta(minutes=5))
    _notify(db, "extension_decided", entity="housing", payload={"decision": "refused"}, key="ext")
    _fan_out(db)
    with db.reading() as session:
        saad = nd.inbox(session, ids["housing.ar"])
        omar = nd.inbox(session, ids["housing.en"])
    assert [e.template for e in saad] == ["extension_decided", "returned_for_rework"]  # newest first
    assert saad[1].subject == "أُعيد للاستكمال: خطة العمل"
    assert "ملاحظات مسؤول المتابعة: أرفقوا الشواهد" in saad[1].body
    assert omar[0].subject == "Extension refused" and not omar[0].read

    with db.transaction() as session, pytest.raises(NotFound):
        nd.mark_read(session, omar[0].delivery_id, ids["housing.ar"])  # someone else's
    email_delivery = _deliveries(db, channel="email", user_id=ids["housing.ar"])[0]
    with db.transaction() as session, pytest.raises(NotFound):
        nd.mark_read(session, email_delivery.id, ids["housing.ar"])  # not an in-app one
    clock.set_now(T0 + timedelta(hours=1))
    with db.transaction() as session:
        read = nd.mark_read(session, saad[0].delivery_id, ids["housing.ar"])
        assert (read.status, read.read_at) == ("read", T0 + timedelta(hours=1))
        nd.mark_read(session, saad[0].delivery_id, ids["housing.ar"])  # idempotent
    with db.reading() as session:
        assert [e.template for e in nd.inbox(session, ids["housing.ar"], unread_only=True)] == ["returned_for_rework"]
        assert nd.unread_count(session, ids["housing.ar"]) == 1
        assert nd.unread_count(session, ids["housing.en"]) == 2  # untouched
        assert nd.inbox(session, ids["housing.ar"])[0].read is True
    with db.transaction() as session:
        assert nd.mark_all_read(session, ids["housing.ar"]) == 1
    with db.reading() as session:
        assert nd.inbox(session, ids["housing.ar"], unread_only=True) == []
        with pytest.raises(NotFound):
            nd.inbox(session, 987654)
