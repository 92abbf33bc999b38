"""Sign in, sign out, the language switch, each role's home page, and the Arabic fonts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.web import i18n
from api.web.core import WebRoute, home_of, redirect, render, safe_next
from api.web.session import LANGUAGE_COOKIE, current_user, form_of, set_cookie, sign_in, sign_out
from engine.foundation.errors import N_, NotFound
from engine.people import login_attempts, users

router = APIRouter(route_class=WebRoute)
FONTS = Path("/usr/share/fonts/truetype/noto")
FONT_FILES = {  # served from Debian's fonts-noto-core: no CDN, nothing copied into the repository
    "NotoNaskhArabic-Regular.ttf", "NotoNaskhArabic-Bold.ttf", "NotoKufiArabic-Regular.ttf",
    "NotoKufiArabic-Bold.ttf", "NotoSans-Regular.ttf", "NotoSans-Bold.ttf",
}


@router.get("/")
def home(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(home_of(user.role), status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    user = current_user(request)
    if user is not None:
        return RedirectResponse(safe_next(next) or home_of(user.role), status_code=303)
    return render(request, "login.html", {"next": safe_next(next) or ""})


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    username = str(form.get("username") or "").strip().lower()[:60]
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or ""))
    state = request.app.state.tansiq
    client = request.client.host if request.client else None
    error = None
    user_id = None
    if not username or not password or "\x00" in username + password or len(password) > 1000:
        error = "wrong"
    else:
        with state.db.transaction() as session:
            if login_attempts.throttled(session, username, client):
                error = "throttled"
            else:
                user = users.authenticate(session, username, password)
                login_attempts.record(session, username, client, user is not None)
                if user is None:
                    error = "wrong"
                else:
                    user_id, language, role = user.id, user.language, user.role
    if error is not None:
        return render(request, "login.html", {"next": target or "", "error": error, "username": username},
                      status=429 if error == "throttled" else 401)
    assert user_id is not None  # no error: the user was authenticated
    response = RedirectResponse(target or home_of(role), status_code=303)
    sign_in(response, request, user_id)
    if not request.cookies.get(LANGUAGE_COOKIE):
        set_cookie(response, request, LANGUAGE_COOKIE, language, max_age=365 * 86400)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await form_of(request)
    response = RedirectResponse("/login", status_code=303)
    sign_out(response, request)
    return response


@router.post("/language")
async def switch_language(request: Request) -> Response:
    form = await form_of(request)
    language = i18n.pick_language(str(form.get("language") or ""))
    response = redirect(safe_next(str(form.get("next") or "")) or "/")
    set_cookie(response, request, LANGUAGE_COOKIE, language, max_age=365 * 86400)
    return response


@router.get("/static/fonts/{name}")
def font(name: Annotated[str, PathParam(max_length=80)]) -> FileResponse:
    if name not in FONT_FILES or not (FONTS / name).is_file():
        raise NotFound(N_("no font %(name)s"), params={"name": name})
    return FileResponse(FONTS / name, media_type="font/ttf", headers={"Cache-Control": "public, max-age=86400"})
