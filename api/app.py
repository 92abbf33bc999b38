"""The REST API: `create_app()` builds the FastAPI application (nothing happens at import time).

Run it with `tansiq serve`, or any ASGI server: `uvicorn --factory api.app:create_app`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from api import problems
from api.deps import AppState
from api.middleware import GuardMiddleware
from api.routes import (
    audit,
    auth,
    decisions,
    directives,
    entities,
    escalations,
    evidence,
    feedback,
    health,
    imports,
    insight,
    meetings,
    notifications,
    operations,
    process_models,
    reports,
    seasons,
    tasks,
    users,
)
from api.security import TokenService, load_secret
from api.settings import ApiSettings, get_api_settings
from engine.foundation import heap
from engine.foundation.version import installed_version
from engine.storage.db import Database, get_database

API_PREFIX = "/api/v1"
STATIC = Path(__file__).parent / "static"
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tansiq API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/static/docs-init.js"></script>
</body></html>
"""
DESCRIPTION = """Follow-up of Hajj committee directives.

Sign in with `POST /api/v1/auth/token` (OAuth2 password form) and send `Authorization: Bearer <token>`.
Errors are RFC 9457 problem details (`application/problem+json`) with a stable `type` URI per kind.
"""


GIL_SWITCH_SECONDS = 0.0005
# The order of the sections of the API docs (the routers are included busiest first, for matching).
DOCS_TAG_ORDER = ("auth", "entities", "users", "seasons", "process models", "directives", "tasks", "notifications",
                  "escalations", "audit", "evidence", "meetings", "imports", "feedback", "reports", "insight", "health")


def operation_id(route: APIRoute) -> str:
    """A stable OpenAPI operationId: the route's own `operation_id=` when it has one (most do: `listTasks`,
    `launchDirective`), else its function's name in camelCase (`claim_task` -> `claimTask`), never FastAPI's
    generated `claim_task_api_v1_tasks__task_id__claim_post`. tests/test_api_operation_ids.py keeps them unique."""
    if route.operation_id:
        return route.operation_id
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def create_app(settings: ApiSettings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the application: `settings` default to the `TANSIQ_*` environment; `database` to its URL."""
    settings = settings or get_api_settings()
    # A request hops between the event loop and the thread pool (sync dependencies and routes); a thread
    # that waits for the GIL waits up to the switch interval (5 ms by default). 0.5 ms measured 13 % more
    # HTTP lifecycles per second (bench/http_bench.py, SQLite, one client: 35.1 to 39.7).
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_SECONDS))
    db = database or get_database(settings.effective_database_url)
    tokens = TokenService(load_secret(settings), settings.token_ttl_seconds)

    app = FastAPI(
        title="Tansiq", version=installed_version(), description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json", docs_url=None, redoc_url=None,
        openapi_tags=[{"name": tag} for tag in DOCS_TAG_ORDER], generate_unique_id_function=operation_id,
    )
    app.state.tansiq = AppState(settings=settings, db=db, tokens=tokens)
    problems.install(app)
    app.add_middleware(GuardMiddleware, max_json_bytes=settings.max_json_bytes,
                       max_multipart_bytes=settings.max_request_bytes)

    # What any operation may answer (each route adds its own 403, 404, 409, 415, 429).
    # Each module's router straight onto the app, not through a /api/v1 router of routers: FastAPI walks
    # every level of inclusion again on each request. Busiest first: a request is matched in this order.
    # Measured in process (a refused completion: routing, dependencies, the problem): 0.44 to 0.31 ms.
    for module in (tasks, directives, auth, escalations, evidence, entities, users, seasons, process_models, audit,
                   meetings, imports, feedback, reports, operations, decisions, notifications, insight):
        app.include_router(module.router, prefix=API_PREFIX,
                           responses=problems.documented(400, 401, 413, 422, 500, 503))
    app.include_router(health.router, responses=problems.documented(400, 413, 422, 500, 503))
    # --- observability (issue 19): request timing as the outermost middleware, and /metrics (api/metrics.py) ---
    from api import metrics

    metrics.install(app)
    # --- end of observability ---
    # --- web UI hook (issue 5): page routes, /static and the fonts; everything else is in api/web/ ---
    from api.web import install as install_web_ui

    install_web_ui(app)
    # --- end of the web UI hook ---
    _docs(app)
    heap.settle()  # start-up is over: what exists now lives as long as the process (engine/foundation/heap.py)
    return app


def _docs(app: FastAPI) -> None:
    """Swagger UI from the swagger-ui-bundle package and our own init script: no CDN, no inline script."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # pragma: no cover - the docs page is optional
        return
    app.mount("/api/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    app.mount("/api/docs/static", StaticFiles(directory=str(STATIC)), name="docs-static")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)
