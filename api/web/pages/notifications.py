"""The notification centre: the bell in every signed-in page's header (the unread count) and the page that
lists the user's in-app notifications, newest first, with "mark read" per item and "mark all read".

A user only ever sees and marks their own deliveries (engine.delivery.notification_delivery scopes every query);
another user's notification id answers 404 like any unseen thing."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.web.core import WebRoute, language_of, redirect, render, safe_next, unread_count
from api.web.labels import N_
from api.web.session import form_of, require_user
from engine.delivery import notification_delivery as inbox
from engine.delivery.notification_delivery import InboxEntry

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 20
SHOWS = ("all", "unread")
NOTICES = {  # ?msg= keys of this page (fixed texts, nothing reflected)
    "notification_read": N_("The notification was marked read."),
    "notifications_read": N_("All notifications were marked read."),
}


# --- the page ---------------------------------------------------------------------------------------

def target_of(entry: InboxEntry) -> str:
    """Where opening a notification leads: the reader's open step, else its directive, else their inbox."""
    if entry.work_item_id is not None:
        return f"/steps/{entry.work_item_id}"
    if entry.directive_id is not None:
        return f"/directives/{entry.directive_id}"
    return "/inbox" if entry.template == "daily_digest" else "/notifications"


def message_text(body: str) -> str:
    """The message without its email signature (after the "--" line): the page is its own context."""
    return body.split("\n--\n", 1)[0].strip()


@router.get("/notifications")
def notifications_page(request: Request, show: str = "all", page: int = 1) -> Response:
    user = require_user(request)
    show = show if show in SHOWS else "all"
    unread_only = show == "unread"
    with request.app.state.tansiq.db.reading() as session:
        total = inbox.inbox_total(session, user.id, unread_only)
        pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
        page = max(1, min(page, pages))  # marking the last item of the last page read shortens the list
        entries = inbox.inbox(session, user.id, unread_only, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
                              language=language_of(request, user))
    context = {"entries": entries, "show": show, "page": page, "pages": pages, "total": total,
               "unread": unread_count(request, user), "message_text": message_text}
    notice = NOTICES.get(request.query_params.get("msg") or "")
    if notice:
        context["message"] = notice
    return render(request, "notifications.html", context)


@router.get("/notifications/{delivery_id}/open")
def open_notification(request: Request, delivery_id: int) -> Response:
    """Follow a notification's link: it counts as read once its reader opened what it is about."""
    user = require_user(request)
    with request.app.state.tansiq.db.transaction() as session:
        inbox.mark_read(session, delivery_id, user.id)
        entry = inbox.inbox_entry(session, delivery_id, user.id)
    return redirect(target_of(entry))


@router.post("/notifications/{delivery_id}/read")
async def mark_read(request: Request, delivery_id: int) -> Response:
    user = require_user(request)
    form = await form_of(request)
    with request.app.state.tansiq.db.transaction() as session:
        inbox.mark_read(session, delivery_id, user.id)
    return redirect(_back(form.get("next"), "notification_read"))


@router.post("/notifications/read-all")
async def mark_all_read(request: Request) -> Response:
    user = require_user(request)
    form = await form_of(request)
    with request.app.state.tansiq.db.transaction() as session:
        inbox.mark_all_read(session, user.id)
    return redirect(_back(form.get("next"), "notifications_read"))


def _back(next_url: object, notice: str) -> str:
    """The page the form was on (a local path only), with the notice to show there."""
    target = safe_next(next_url if isinstance(next_url, str) else None) or "/notifications"
    parts = urlsplit(target)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "msg"] + [("msg", notice)]
    return f"{parts.path}?{urlencode(query)}"
