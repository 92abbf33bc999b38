"""Signing in, token expiry and revocation, throttling, inactive users, the secret key, health,
security headers and the request size limit."""

from __future__ import annotations

import stat
from datetime import timedelta

import jwt
import pytest

from api.app import create_app
from api.settings import ApiSettings
from engine.foundation import clock
from engine.people.login_attempts import MAX_FAILURES
from engine.storage.db import Database
from tests.test_api_support import NOW, PASSWORD, TestClient, World, assert_problem, make_settings, open_world
from tests.ui_support import Browser, signed_in


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch, token_ttl_seconds=3600) as built:
        yield built


def test_sign_in_and_read_who_i_am(world: World):
    response = world.client.post("/api/v1/auth/token", data={"username": "housing.user", "password": PASSWORD})
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 3600
    me = world.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert me["username"] == "housing.user" and me["role"] == "entity_user"
    assert me["entity"] == {"code": "housing", "name_ar": "الإسكان", "name_en": "Housing"}
    assert "task.work" in me["permissions"] and "directive.create" not in me["permissions"]
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["sub"] == str(world.user_ids["housing.user"]) and "role" not in claims


@pytest.mark.parametrize(("username", "password"), [("housing.user", "wrong password!"), ("nobody", PASSWORD),
                                                    ("", ""), ("housing.user", "x" * 5000)])
def test_wrong_credentials_are_one_401(world: World, username: str, password: str):
    response = world.client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code in (401, 422), response.text
    if response.status_code == 401:
        body = assert_problem(response, 401, "unauthorized")
        assert body["detail"] == "wrong username or password"
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-token", "Basic YWRtaW46YWRtaW4=",
                                    "Bearer " + jwt.encode({"sub": "1", "iat": 0, "exp": 9e9, "iss": "tansiq"},
                                                           "another secret key of enough length", "HS256"),
                                    "Bearer " + jwt.encode({"sub": "1", "iat": 0, "exp": 9e9, "iss": "tansiq"}, None,
                                                           "none")])
def test_missing_forged_and_unsigned_tokens_are_refused(world: World, header: str | None):
    headers = {"Authorization": header} if header else {}
    assert_problem(world.client.get("/api/v1/me", headers=headers), 401, "unauthorized")


def test_tokens_expire_with_the_engine_clock(world: World):
    headers = world.login("viewer")
    assert world.client.get("/api/v1/me", headers=headers).status_code == 200
    clock.set_now(NOW + timedelta(seconds=3599))
    assert world.client.get("/api/v1/me", headers=headers).status_code == 200
    clock.set_now(NOW + timedelta(seconds=3600))
    body = assert_problem(world.client.get("/api/v1/me", headers=headers), 401)
    assert "expired" in body["detail"]


def test_revocation_takes_effect_at_once_for_every_token(world: World):
    first, second = world.login("officer"), None
    clock.set_now(NOW + timedelta(seconds=5))
    second = world.login("officer")
    other = world.login("viewer")
    assert world.client.post("/api/v1/auth/revoke", headers=first).status_code == 204
    for headers in (first, second):
        body = assert_problem(world.client.get("/api/v1/me", headers=headers), 401)
        assert "revoked" in body["detail"]
    assert world.client.get("/api/v1/me", headers=other).status_code == 200  # only the caller's tokens
    clock.set_now(NOW + timedelta(seconds=6))
    assert world.client.get("/api/v1/me", headers=world.login("officer")).status_code == 200


def test_a_deactivated_user_is_refused_at_once(world: World):
    headers = world.login("transport.user")
    response = world.call("admin", "PATCH", "/api/v1/users/transport.user", json={"active": False})
    assert response.status_code == 200 and response.json()["active"] is False
    assert_problem(world.client.get("/api/v1/me", headers=headers), 401)
    response = world.client.post("/api/v1/auth/token", data={"username": "transport.user", "password": PASSWORD})
    assert_problem(response, 401)


def test_a_changed_role_applies_to_existing_tokens(world: World):
    headers = world.login("viewer")
    assert world.client.get("/api/v1/users", headers=headers).status_code == 403
    with world.db.transaction() as session:
        from engine.people.users import get_user

        get_user(session, "viewer").role = "admin"
    assert world.client.get("/api/v1/users", headers=headers).status_code == 200


def test_guessing_is_throttled_with_retry_after(world: World):
    for _ in range(MAX_FAILURES):
        response = world.client.post("/api/v1/auth/token", data={"username": "secretariat", "password": "guess!!!!!"})
        assert response.status_code == 401
    throttled = world.client.post("/api/v1/auth/token", data={"username": "secretariat", "password": PASSWORD})
    assert_problem(throttled, 429, "too-many-requests")
    assert 1 <= int(throttled.headers["retry-after"]) <= 15 * 60
    assert world.client.post("/api/v1/auth/token", data={"username": "viewer", "password": PASSWORD}).status_code == 200
    clock.set_now(NOW + timedelta(minutes=15, seconds=1))
    assert world.login("secretariat")


def test_a_guesser_elsewhere_cannot_lock_the_user_out_of_the_api_or_the_page(world: World):
    guesser = Browser(world, address="127.0.0.9")
    for _ in range(MAX_FAILURES):
        assert guesser.client.post("/api/v1/auth/token", data={"username": "secretariat", "password": "guess!!!!!"}
                                   ).status_code == 401
    assert_problem(guesser.client.post("/api/v1/auth/token", data={"username": "secretariat", "password": PASSWORD}),
                   429, "too-many-requests")
    guesser.get("/login")
    page = guesser.post("/login", {"username": "secretariat", "password": PASSWORD})
    assert page.status_code == 429 and "محاولات دخول فاشلة كثيرة." in page.text
    assert world.login("secretariat")  # from the user's own address, over the API and the page
    assert signed_in(world, "secretariat")


def test_the_secret_key_is_generated_once_with_mode_600(db: Database, tmp_path):
    settings = ApiSettings(home=tmp_path, database_url=db.url.render_as_string(hide_password=False))
    first = create_app(settings, database=db)
    key = tmp_path / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text()) >= 48
    second = create_app(settings, database=db)
    token = first.state.tansiq.tokens.issue(1)
    assert second.state.tansiq.tokens.read(token).user_id == 1
    key.chmod(0o644)
    create_app(settings, database=db)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_health_reports_the_database_and_timer_lag(world: World):
    world.create_directive(deadline="PT2H", process_model_key="deadline")  # a reminder due in 1 h
    response = world.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "timer_lag_seconds": 0.0}
    clock.set_now(NOW + timedelta(hours=3))
    assert world.client.get("/healthz").json()["timer_lag_seconds"] == 2 * 3600.0


def test_a_database_that_is_down_is_503_not_500(tmp_path):
    down = Database("postgresql+psycopg://nobody@127.0.0.1:1/tansiq?connect_timeout=2")
    app = create_app(make_settings(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/tansiq"), database=down)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert_problem(client.get("/healthz"), 503, "service-unavailable")
        token = app.state.tansiq.tokens.issue(1)
        response = client.get("/api/v1/directives", headers={"Authorization": f"Bearer {token}"})
        body = assert_problem(response, 503, "service-unavailable")
        assert "psycopg" not in response.text and "Traceback" not in response.text, body
        assert response.headers["retry-after"] == "5"
        signin = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
        assert_problem(signin, 503)
    down.dispose()


def _assert_security_headers(response) -> None:
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_every_response_carries_the_security_headers(world: World):
    def fail() -> None:  # a route that fails unexpectedly, to see the catch-all's answer
        raise RuntimeError("secret internals: password=hunter2")

    world.client.app.add_api_route("/api/v1/test-only-failure", fail)
    responses = [
        world.client.get("/healthz"),
        world.client.get("/api/v1/me"),
        world.call("viewer", "GET", "/api/v1/me"),
        world.call("viewer", "GET", "/api/v1/directives/999"),
        world.call("viewer", "GET", "/api/v1/nothing-here"),
        world.client.get("/api/docs"),
        world.client.get("/api/v1/openapi.json"),
        world.client.get("/api/v1/test-only-failure"),
    ]
    for response in responses:
        _assert_security_headers(response)
    failure = responses[-1]
    body = assert_problem(failure, 500, "internal-error")
    assert "hunter2" not in failure.text and "RuntimeError" not in failure.text, body


def test_the_docs_page_runs_no_inline_script(world: World):
    page = world.client.get("/api/docs")
    assert page.status_code == 200
    assert "<script>" not in page.text and 'src="/api/docs/static/docs-init.js"' in page.text
    assert world.client.get("/api/docs/static/docs-init.js").status_code == 200
    assert world.client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200
    spec = world.client.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/v1/directives" in spec["paths"]
    assert "Problem" in spec["components"]["schemas"]


def test_oversized_requests_are_413(world: World):
    big = b'{"title": "' + b"x" * 1_100_000 + b'"}'
    response = world.call("secretariat", "POST", "/api/v1/directives", content=big,
                          headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "payload-too-large")
    _assert_security_headers(response)

    def chunks():
        for _ in range(200):
            yield b"x" * 10_000

    response = world.call("secretariat", "POST", "/api/v1/directives", content=chunks(),
                          headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "payload-too-large")
