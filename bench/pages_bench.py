"""Page latency and API memory at season scale, over HTTP against a real `tansiq serve` process.

    .venv/bin/python bench/pages_bench.py [--backend sqlite|postgresql|both] [--directives N] [--rounds R]
                                          [--requests K] [--url URL] [--json PATH]

Each backend gets a fresh database filled by bench/generate.py (PostgreSQL: 1,000,000 directives by
default; SQLite: 100,000), or the database at `--url` as it is (migrated to head first). One API
process (`tansiq serve --no-reports`: uvicorn, one worker, its timer loop on, as by default) serves
127.0.0.1; one client (httpx, keep-alive) signs in as an entity user of the busiest entity, a supervisor
and an administrator, and requests each page K times per round, after one warm-up pass. A page figure is
the median over rounds of the round's p50 (min – max of the rounds' p50s); its p99 pools every request.
The API's RSS is read from /proc after each round. The same run measures the in-memory SpiffWorkflow
ceiling and the bare commit rate of the same database (bench/engine_bench.py's functions).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import func, select

from bench.common import (
    ApiProcess,
    Record,
    Unreachable,
    ceiling_records,
    check_postgresql,
    fresh_backend,
    percentile,
    record,
    scratch_home,
    write_json,
)
from bench.engine_bench import Backend
from bench.generate import generate
from engine.directives.directives import ACTIVE, Directive
from engine.people import users
from engine.people.entities import Entity
from engine.storage.db import Database
from engine.system import migrate
from engine.work.work_items import OPEN, WorkItem

PASSWORD = "bench password, not a secret"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
DEFAULT_DIRECTIVES = {"postgresql": 1_000_000, "sqlite": 100_000}
HEATMAP = "/api/v1/insight/heatmap?model=directive_standard"
# page -> (who asks, path, target p50 in ms on PostgreSQL at 1,000,000 directives)
PAGES: dict[str, tuple[str, str, float | None]] = {
    "entity inbox page, GET /api/v1/tasks": ("entity", "/api/v1/tasks", 20),
    "escalation board page, GET /api/v1/escalations": ("supervisor", "/api/v1/escalations", 50),
    "directive page, GET /api/v1/directives/{id}": ("entity", "/api/v1/directives/{id}", 30),
    "inbox HTML, GET /inbox": ("entity:html", "/inbox", None),
    "escalation board HTML, GET /escalations": ("supervisor:html", "/escalations", None),
    "directive HTML, GET /directives/{id}": ("entity:html", "/directives/{id}", None),
    "register, GET /api/v1/directives (administrator)": ("admin", "/api/v1/directives", None),
    "register, GET /api/v1/directives (entity user)": ("entity", "/api/v1/directives", None),
    "dashboard HTML, GET /dashboard (administrator)": ("admin:html", "/dashboard", None),
    "heatmap, GET /api/v1/insight/heatmap (supervisor)": ("supervisor", HEATMAP, 200),
    "heatmap HTML, GET /insight/bottlenecks (supervisor)": ("supervisor:html", "/insight/bottlenecks?"
                                                           "model=directive_standard", None),
    "forecast, GET /api/v1/insight/forecast (supervisor)": ("supervisor", "/api/v1/insight/forecast", 200),
    "forecast, GET /api/v1/insight/forecast (entity user)": ("entity", "/api/v1/insight/forecast", 200),
    "forecast HTML, GET /insight/forecast (supervisor)": ("supervisor:html", "/insight/forecast", None),
}


@dataclass
class People:
    entity_code: str
    directive_ids: list[int]
    open_items: int
    directives: int
    clients: dict[str, httpx.Client] = field(default_factory=dict)


def prepare(url: str) -> People:
    """Bench users (known password) for the entity with the most open steps; its active directives."""
    migrate.upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            code, count = session.execute(
                select(WorkItem.assignee_entity, func.count()).where(WorkItem.status == OPEN,
                                                                     WorkItem.assignee_entity.is_not(None))
                .group_by(WorkItem.assignee_entity).order_by(func.count().desc()).limit(1)).one()
            entity_id = session.scalar(select(Entity.id).where(Entity.code == code))
            ids = list(session.scalars(select(Directive.id).where(Directive.responsible_entity_id == entity_id,
                                                                  Directive.status == ACTIVE)
                                       .order_by(Directive.id.desc()).limit(2000)))
            people = (("bench.entity", "entity_user", code), ("bench.supervisor", "supervisor", None),
                      ("bench.admin", "admin", None))
            for username, role, entity in people:
                if session.scalar(select(users.User.id).where(users.User.username == username)) is None:
                    users.create_user(session, username, PASSWORD, role, entity_code=entity, actor="bench")
            directives = session.scalar(select(func.count()).select_from(Directive))
    finally:
        db.dispose()
    return People(code, ids, count, directives)


def sign_in(base: str, username: str, html: bool) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
    if html:
        token = CSRF.search(client.get("/login").text).group(1)
        response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 303, response.text[:300]
        return client
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    response.raise_for_status()
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return client


def _client(people: People, base: str, who: str) -> httpx.Client:
    if who not in people.clients:
        role, _, kind = who.partition(":")
        people.clients[who] = sign_in(base, f"bench.{role}", kind == "html")
    return people.clients[who]


def _request(client: httpx.Client, path: str) -> float:
    began = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return elapsed


def measure(api: ApiProcess, people: People, rounds: int, requests: int) -> tuple[dict[str, list[float]],
                                                                                   dict[str, list[float]], list[float]]:
    rng = random.Random(5)
    p50s: dict[str, list[float]] = {name: [] for name in PAGES}
    pooled: dict[str, list[float]] = {name: [] for name in PAGES}
    rss = []

    def path_of(template: str) -> str:
        return template.replace("{id}", str(rng.choice(people.directive_ids)))

    for who, template, _ in PAGES.values():  # warm-up: connections, caches, compiled statements
        _request(_client(people, api.base, who), path_of(template))
    for index in range(rounds):
        for name, (who, template, _) in PAGES.items():
            client = _client(people, api.base, who)
            samples = [_request(client, path_of(template)) for _ in range(requests)]
            p50s[name].append(1000 * statistics.median(samples))
            pooled[name].extend(1000 * s for s in samples)
        rss.append(api.rss_mb())
        print(f"  round {index + 1}/{rounds}: " + ", ".join(f"{v[-1]:.1f}" for v in p50s.values()) + " ms p50; "
              f"RSS {rss[-1]:.0f} MB", file=sys.stderr, flush=True)
    return p50s, pooled, rss


def run_backend(backend: Backend, directives: int, rounds: int, requests: int, generated: bool) -> list[Record]:
    name = backend.name
    began = time.perf_counter()
    if generated:
        result = generate(backend.url, directives)
        print(f"[{name}] generated {directives:,} directives ({result.rows:,} rows) in {result.seconds:.0f} s",
              file=sys.stderr)
    records = [record(f"generate {directives:,} directives (COPY / executemany; templates not counted)",
                      name, [result.seconds], "s")] if generated else []
    people = prepare(backend.url)
    ceilings, memory_ceiling, commit_ceiling = ceiling_records(backend)
    home = scratch_home("tansiq-pages-")
    api = ApiProcess(backend.url, home)
    try:
        p50s, pooled, rss = measure(api, people, rounds, requests)
    finally:
        for client in people.clients.values():
            client.close()
        api.stop()
    scale = f"{people.directives:,} directives"
    for page, (_, _, target) in PAGES.items():
        goal = f"<= {target}" if target is not None and name == "postgresql" else None
        records.append(record(f"{page} p50 ({scale})", name, p50s[page], "ms", goal))
        p99 = percentile(pooled[page], 0.99)
        records.append(record(f"{page} p99, pooled ({scale})", name, [p99], "ms"))
        records.append(record(f"{page}: p50 in bare-commit times", name,
                              [v / (1000 / commit_ceiling) for v in p50s[page]], "commits"))
    records.append(record(f"API process RSS after the pages ({scale})", name, rss, "MB",
                          "<= 250" if name == "postgresql" else None))
    records.append(record("pages: entity inbox open steps of the busiest entity", name, [people.open_items], "steps"))
    print(f"[{name}] pages done in {time.perf_counter() - began:.0f} s; ceilings {memory_ceiling:.0f} "
          f"lifecycles/s in memory, {commit_ceiling:.0f} commits/s", file=sys.stderr)
    return records + ceilings


@contextmanager
def given(url: str) -> Any:
    yield Backend("postgresql" if url.startswith("postgresql") else "sqlite", url, "given database")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--directives", type=int, default=None, help="default: 1,000,000 on PostgreSQL, "
                                                                      "100,000 on SQLite")
    parser.add_argument("--url", help="measure this database as it is (no generation)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40, help="requests per page per round")
    parser.add_argument("--only", nargs="*", help="measure only the pages whose name contains one of these")
    parser.add_argument("--json", help="write the records here")
    args = parser.parse_args(argv)
    if args.only:
        for name in [n for n in PAGES if not any(word in n for word in args.only)]:
            del PAGES[name]
    records: list[Record] = []
    try:
        if args.url:
            with given(args.url) as backend:
                records += run_backend(backend, 0, args.rounds, args.requests, generated=False)
        else:
            names = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
            if "postgresql" in names:
                check_postgresql()
            for name in names:
                opener: Callable[[str], Any] = fresh_backend
                with opener(name) as backend:
                    count = args.directives or DEFAULT_DIRECTIVES[name]
                    records += run_backend(backend, count, args.rounds, args.requests, generated=True)
    except Unreachable as exc:
        print(f"pages_bench: {exc}", file=sys.stderr)
        return 2
    write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
