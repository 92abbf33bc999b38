"""People as pages show them: a user by their full name, the user name on hover; Tansiq's own actors
(the timer worker, the demo season, the system) by a word in the page's language.

A page asks for names only while it renders; the first name it asks for loads every user's name in one
query (a committee's users number in the hundreds), so a timeline of many actors costs one query."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup, escape

from api.web.labels import label
from engine.people import users
from engine.storage.db import Database

SYSTEM_ACTORS = ("timer", "system", "demo", "public")


class People:
    def __init__(self, db: Database, gettext: Callable[[str], str]) -> None:
        self._db = db
        self._gettext = gettext
        self._names: dict[str, str] | None = None

    def name(self, username: str | None) -> str:
        """The plain name (for attributes and text without markup)."""
        if not username:
            return ""
        if username in SYSTEM_ACTORS:
            return self._gettext(label("actor", username))
        return self._loaded().get(username) or username

    def __call__(self, username: str | None) -> Markup:
        if not username:
            return Markup("")
        shown = self.name(username)
        if shown == username or username in SYSTEM_ACTORS:
            return Markup('<bdi class="person">{}</bdi>').format(shown)
        return Markup('<bdi class="person" title="{}">{}</bdi>').format(escape(username), shown)

    def _loaded(self) -> dict[str, str]:
        if self._names is None:
            with self._db.reading() as session:
                self._names = users.full_names(session)
        return self._names
