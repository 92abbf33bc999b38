"""Sign-in for the web UI: the API's own access token, kept in a session cookie, plus CSRF tokens.

The cookie holds the same signed token `POST /api/v1/auth/token` gives (api/security.py): it is read
with the same code, refused when expired or revoked, and the user is read afresh from the database on
every request, so role changes and deactivation apply at once. The cookie is HttpOnly, SameSite=Lax,
and Secure when the request came over TLS: directly, through a proxy's `X-Forwarded-Proto: https`, or
when TANSIQ_PUBLIC_URL is https (TANSIQ_SECURE_COOKIES=1 forces it).

CSRF: a random value in its own HttpOnly cookie; every form carries HMAC(secret, that value) in the
`csrf_token` field (htmx sends it as the `X-CSRF-Token` header). Any POST without a matching token is
refused, and a cross-site `Origin` is refused too: with TANSIQ_PUBLIC_URL set, the Origin must be that
address's; without it, its host must be the one the request was sent to (`Host`, or a proxy's
`X-Forwarded-Host`), whatever the scheme, since a proxy that ends TLS turns https into http.
Both cookies are renewed at sign-in and sign-out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from api.deps import AppState, CurrentUser
from api.security import InvalidToken, load_secret, revoked
from engine.people.users import User

SESSION_COOKIE = "tansiq_session"
CSRF_COOKIE = "tansiq_csrf"
LANGUAGE_COOKIE = "tansiq_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class NotSignedIn(Exception):
    """The page needs a signed-in user; the browser is sent to the sign-in page."""


class CsrfRefused(Exception):
    """A form came without a valid CSRF token (or from another origin)."""


def _state(request: Request) -> AppState:
    return request.app.state.tansiq


def _key(request: Request) -> bytes:
    """The CSRF key: derived from the secret that signs the tokens (TANSIQ_SECRET_KEY or its key file)."""
    key = getattr(request.app.state, "web_csrf_key", None)
    if key is None:
        key = hmac.new(load_secret(_state(request).settings), b"tansiq-web-csrf", hashlib.sha256).digest()
        request.app.state.web_csrf_key = key
    return key


def secure_cookies(request: Request) -> bool:
    settings = _state(request).settings
    return (settings.secure_cookies or request.url.scheme == "https"
            or (settings.public_url or "").startswith("https:")
            or _first(request.headers.get("x-forwarded-proto")) == "https")


def _first(header: str | None) -> str:
    """The first value of a header a chain of proxies may have appended to."""
    return (header or "").split(",", 1)[0].strip().lower()


def set_cookie(response: Response, request: Request, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=secure_cookies(request))


def current_user(request: Request) -> CurrentUser | None:
    """The signed-in user, or None (no cookie, a bad or revoked token, an inactive account)."""
    if hasattr(request.state, "web_user"):  # looked up once per request (None too: no one is signed in)
        cached: CurrentUser | None = request.state.web_user
        return cached
    user = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        state = _state(request)
        try:
            claims = state.tokens.read(token)
        except InvalidToken:
            claims = None
        if claims is not None:
            with state.db.reading() as session:
                row = session.get(User, claims.user_id)
                if row is not None and row.active and not revoked(claims, row.tokens_valid_after):
                    user = CurrentUser.of(row)
    request.state.web_user = user
    return user


def require_user(request: Request) -> CurrentUser:
    user = current_user(request)
    if user is None:
        raise NotSignedIn()
    return user


def sign_in(response: Response, request: Request, user_id: int) -> None:
    state = _state(request)
    set_cookie(response, request, SESSION_COOKIE, state.tokens.issue(user_id), max_age=state.tokens.ttl_seconds)
    set_cookie(response, request, CSRF_COOKIE, secrets.token_urlsafe(32))


def sign_out(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookies(request))
    set_cookie(response, request, CSRF_COOKIE, secrets.token_urlsafe(32))


# --- CSRF -------------------------------------------------------------------------------------------

def csrf_seed(request: Request) -> str:
    """The request's CSRF cookie value; a new one (set on the response by the page) when there is none."""
    seed = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_seed", None)
    if not seed:
        seed = secrets.token_urlsafe(32)
        request.state.new_csrf_seed = seed
    return seed


def csrf_token(request: Request) -> str:
    return hmac.new(_key(request), csrf_seed(request).encode(), hashlib.sha256).hexdigest()


def remember_new_seed(request: Request, response: Response) -> None:
    """Set the CSRF cookie a page had to invent (its forms carry tokens derived from it)."""
    seed = getattr(request.state, "new_csrf_seed", None)
    if seed and not request.cookies.get(CSRF_COOKIE) and CSRF_COOKIE not in response.headers.get("set-cookie", ""):
        set_cookie(response, request, CSRF_COOKIE, seed)


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a state-changing request without a valid token, or sent from another origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and not same_origin(request, origin):
        raise CsrfRefused("the form was sent from another site")
    seed = request.cookies.get(CSRF_COOKIE)
    given = submitted or request.headers.get(CSRF_HEADER) or ""
    if not seed or not given:
        raise CsrfRefused("the form has no security token")
    expected_token = hmac.new(_key(request), seed.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected_token, given):
        raise CsrfRefused("the form's security token does not match")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _authority(scheme: str, netloc: str) -> tuple[str, int | None]:
    """(host, port) of an address, the scheme's default port made explicit; port None when unknown."""
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:
        return (netloc.lower(), None)
    return ((parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme))


def same_origin(request: Request, origin: str) -> bool:
    """Whether a form's `Origin` is Tansiq's own address (see the module docstring)."""
    sent = urlsplit(origin.rstrip("/"))
    public_url = _state(request).settings.public_url
    if public_url:
        public = urlsplit(public_url)
        return _authority(sent.scheme, sent.netloc) == _authority(public.scheme, public.netloc)
    sent_host, sent_port = _authority(sent.scheme, sent.netloc)
    for candidate in (request.headers.get("host"), _first(request.headers.get("x-forwarded-host"))):
        if not candidate:
            continue
        given = urlsplit(f"//{candidate}")
        try:
            port = given.port
        except ValueError:
            continue
        # A proxy that passes on the bare host name (nginx's $host) drops the port: the host must match.
        if (given.hostname or "").lower() == sent_host and port in (None, sent_port):
            return True
    return False


async def form_of(request: Request):
    """The submitted form, after its CSRF token was checked."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    check_csrf(request, token if isinstance(token, str) else None)
    return form
