"""Every page of the UI, one module per area, gathered into one router."""

from __future__ import annotations

from fastapi import APIRouter

from api.web.core import WebRoute
from api.web.pages import (
    admin,
    auth,
    board,
    dashboard,
    directives,
    feedback,
    imports,
    insight,
    meetings,
    notifications,
    obstacles,
    operations,
    reports,
    work,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)
for module in (auth, directives, work, board, dashboard, operations, admin, reports, meetings, imports, feedback,
               obstacles, notifications, insight):
    router.include_router(module.router)
