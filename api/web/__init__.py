"""The web UI (issue 5): server-rendered Jinja2 pages with htmx, Arabic first, on the API's own sign-in.

`install(app)` adds the page routes, the static files (/static: CSS, scripts, vendored htmx and bpmn-js)
and the Arabic fonts of Debian's fonts-noto-core (/static/fonts). See docs/ui.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"


def install(app: FastAPI) -> None:
    from api.web.pages import router

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="web-static")
