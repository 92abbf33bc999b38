"""Concurrent completion of one step over real HTTP (uvicorn on 127.0.0.1): exactly one succeeds."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from tests.test_api_support import World, open_world

WORKERS = 8


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


@pytest.fixture
def server(world: World) -> Iterator[str]:
    """The world's app behind a real uvicorn server on a free local port, in a thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(world.client.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            limit_concurrency=64)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


def _race(url: str, headers: list[dict[str, str]], body: dict) -> list[int]:
    barrier = threading.Barrier(len(headers))
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(auth: dict[str, str]) -> None:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            status = client.post(url, json=body, headers=auth).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt, args=(auth,)) for auth in headers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def test_concurrent_completions_of_one_step_exactly_one_wins(world: World, server: str):
    directive = world.create_directive()
    step = world.open_step(directive["id"], "acknowledge")
    who = ["housing.user", "admin"] * (WORKERS // 2)
    statuses = _race(f"{server}/api/v1/tasks/{step}/complete", [world.headers(u) for u in who], {"data": {}})
    assert sorted(statuses) == [200] + [409] * (WORKERS - 1), statuses
    detail = world.call("admin", "GET", f"/api/v1/directives/{directive['id']}").json()
    assert [s["element_id"] for s in detail["steps"]] == ["execute"]
    completions = [e for e in detail["timeline"] if e["action"] == "step.completed"]
    assert len(completions) == 1
    assert world.call("admin", "GET", "/api/v1/audit/verify").json()["ok"] is True


def test_concurrent_completions_with_evidence_exactly_one_wins(world: World, server: str):
    directive = world.create_directive()
    step = world.open_step(directive["id"], "acknowledge")
    world.call("housing.user", "POST", f"/api/v1/tasks/{step}/complete", json={"data": {}})
    execute = world.open_step(directive["id"], "execute")
    barrier = threading.Barrier(WORKERS)
    statuses: list[int] = []

    def attempt(index: int) -> None:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            response = client.post(f"{server}/api/v1/tasks/{execute}/complete/upload",
                                   headers=world.headers("housing.user"),
                                   data={"data": '{"summary": "done"}'},
                                   files=[("files", (f"proof-{index}.txt", f"proof {index}".encode(), "text/plain"))])
            statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200] + [409] * (WORKERS - 1), statuses
    detail = world.call("admin", "GET", f"/api/v1/directives/{directive['id']}").json()
    assert len(detail["evidence"]) == 1  # the losers' evidence rows were rolled back with them
