"""HTTP benchmark: directive lifecycles through a real API process on loopback, one client and many.

    .venv/bin/python bench/http_bench.py [--backend sqlite|postgresql|both] [--n N] [--repeat R]
                                         [--clients C] [--processes P] [--json PATH]
    .venv/bin/python bench/http_bench.py --workers-compare [--clients 16] [--n N] [--repeat R]

A lifecycle is what the secretariat and two users do for one directive on the two-step model
(`tests/bpmn/two-steps.bpmn`): POST /directives with `launch: true`; the entity user GETs its inbox
for that directive and completes the first step; the follow-up officer does the same for the second.
Five requests, three of them writes, each over a kept-alive HTTP/1.1 connection to uvicorn. The API
runs in its own process(es) (`uvicorn --factory api.app:create_app`), the clients in this one.

`--workers-compare`: PostgreSQL, C clients, against `tansiq serve --workers 1` and then `--workers 2` (the
command a deployment runs, with its workers off: `--no-timers --no-notifications --no-reports`), in one run.

Each backend gets a fresh database (see `engine_bench.fresh_backend`). Figures are medians of R rounds
with their min–max; in the same run the script measures the in-memory SpiffWorkflow ceiling for the
same model and the bare one-row-commit rate of the same database, and prints ratios to them.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from bench import engine_bench  # noqa: E402  (sets TANSIQ_HOME for this process before engine imports)
from engine.bpmn import process_models  # noqa: E402
from engine.calendar import seasons  # noqa: E402
from engine.people import entities, users  # noqa: E402
from engine.storage.db import Database  # noqa: E402
from engine.system import migrate  # noqa: E402

PASSWORD = "bench password, not a secret"
PEOPLE = {"secretariat": ("secretariat", None), "housing.user": ("entity_user", "housing"),
          "officer": ("follow_up_officer", None)}
DIRECTIVE = {"title": "تجهيز مراكز الاستقبال قبل وصول الحجاج", "title_en": "Prepare the reception centres",
             "kind": "decision", "responsible_entity": "housing", "deadline": "P20D",
             "process_model_key": engine_bench.MODEL_KEY, "launch": True}
# Targets as bench/common.py's records write them ("<= 20", ">= 2000"), which bench/suite.py reads.
TARGETS = {("lifecycles_per_s", "sqlite", 1): ">= 180", ("lifecycles_per_s", "postgresql", 1): ">= 125",
           ("lifecycles_per_s", "postgresql", 16): ">= 250"}
LATENCY_TARGETS = {("launch_p50_ms", "sqlite"): "<= 5", ("complete_p50_ms", "sqlite"): "<= 4"}


class RequestFailed(Exception):
    pass


# The API process --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _prepare(url: str) -> None:
    """Schema, the model, a season around today, one entity and the three users."""
    migrate.upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            process_models.deploy(session, engine_bench.MODEL_FILE.read_bytes(), engine_bench.MODEL_FILE.name, "bench")
            today = date.today()
            seasons.create_season(session, 1448, date(today.year - 1, 1, 1), date(today.year + 1, 12, 31))
            entities.create_entity(session, "housing", "الإسكان", "Housing")
            for username, (role, entity) in PEOPLE.items():
                users.create_user(session, username, PASSWORD, role, entity_code=entity)
    finally:
        db.dispose()


@contextmanager
def api_process(url: str, processes: int, serve: bool = False) -> Iterator[tuple[int, int]]:
    port = _free_port()
    home = tempfile.mkdtemp(prefix="tansiq-bench-api-")
    env = {**os.environ, "TANSIQ_DATABASE_URL": url, "TANSIQ_HOME": home, "TANSIQ_SECRET_KEY": "b" * 48}
    if serve:
        command = [str(Path(sys.executable).parent / "tansiq"), "serve", "--port", str(port), "--workers",
                   str(processes), "--no-timers", "--no-notifications", "--no-reports"]
    else:
        command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", str(processes), "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        _wait_until_up(port, server)
        yield port, server.pid
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_until_up(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the API process exited with {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the API process did not answer within 60 s")


# A client ---------------------------------------------------------------------------------------


class Client:
    """One kept-alive connection; tokens for the three users."""

    def __init__(self, port: int, tokens: dict[str, str]) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.tokens = tokens

    def call(self, username: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[username]}"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        content = response.read()
        if response.status >= 300:
            raise RequestFailed(f"{method} {path}: {response.status} {content[:300]!r}")
        return json.loads(content)

    def lifecycle(self, timings: dict[str, list[float]], requests: int = 3) -> None:
        """Three requests (the launch and each completion answer with the next open steps) or, as before
        issue 23, five (the inbox read before each completion)."""
        if requests == 5:
            self._five_request_lifecycle(timings)
            return
        t0 = time.perf_counter()
        directive = self.call("secretariat", "POST", "/api/v1/directives", DIRECTIVE)
        timings["launch"].append(time.perf_counter() - t0)
        (step,) = directive["open_steps"]
        for username, form in (("housing.user", {"note": "checked"}), ("officer", {})):
            t1 = time.perf_counter()
            completed = self.call(username, "POST", f"/api/v1/tasks/{step['id']}/complete", {"data": form})
            timings["complete"].append(time.perf_counter() - t1)
            if completed["status"] != "completed":
                raise RequestFailed(f"step {step['id']} is {completed['status']}")
            step = completed["next_steps"][0] if completed["next_steps"] else None
        if step is not None:
            raise RequestFailed(f"the lifecycle left step {step['id']} open")

    def _five_request_lifecycle(self, timings: dict[str, list[float]]) -> None:
        t0 = time.perf_counter()
        directive = self.call("secretariat", "POST", "/api/v1/directives", DIRECTIVE)
        timings["launch"].append(time.perf_counter() - t0)
        for username, form in (("housing.user", {"note": "checked"}), ("officer", {})):
            t0 = time.perf_counter()
            (step,) = self.call(username, "GET", f"/api/v1/tasks?directive={directive['id']}")["items"]
            t1 = time.perf_counter()
            completed = self.call(username, "POST", f"/api/v1/tasks/{step['id']}/complete", {"data": form})
            timings["inbox"].append(t1 - t0)
            timings["complete"].append(time.perf_counter() - t1)
            if completed["status"] != "completed":
                raise RequestFailed(f"step {step['id']} is {completed['status']}")

    def close(self) -> None:
        self.connection.close()


def sign_in(port: int) -> dict[str, str]:
    tokens = {}
    for username in PEOPLE:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = f"username={username}&password={PASSWORD.replace(' ', '+').replace(',', '%2C')}"
        connection.request("POST", "/api/v1/auth/token", body=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        content = response.read()
        if response.status != 200:
            raise RequestFailed(f"sign-in of {username}: {response.status} {content[:200]!r}")
        tokens[username] = json.loads(content)["access_token"]
        connection.close()
    return tokens


# Rounds -----------------------------------------------------------------------------------------


@dataclass
class Round:
    lifecycles: int
    seconds: float
    errors: int
    timings: dict[str, list[float]] = field(default_factory=lambda: {"launch": [], "inbox": [], "complete": []})
    requests: int = 3
    api_cpu_seconds: float = 0.0

    @property
    def api_cpu_ms_per_lifecycle(self) -> float:
        return 1000 * self.api_cpu_seconds / max(1, self.lifecycles)

    @property
    def rate(self) -> float:
        return self.lifecycles / self.seconds


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and of its children still running (uvicorn's workers), from /proc."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid] + [int(child) for child in _children(pid)]
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _children(pid: int) -> list[str]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += (task / "children").read_text().split()
    return found


def run_round(port: int, tokens: dict[str, str], clients: int, per_client: int, requests: int = 3,
              api_pid: int | None = None) -> Round:
    outcome = Round(lifecycles=0, seconds=0.0, errors=0, requests=requests)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def work() -> None:
        client = Client(port, tokens)
        timings: dict[str, list[float]] = {"launch": [], "inbox": [], "complete": []}
        done = errors = 0
        start.wait()
        for _ in range(per_client):
            try:
                client.lifecycle(timings, requests)
                done += 1
            except (RequestFailed, OSError, ValueError) as exc:
                errors += 1
                print(f"  error: {exc}", file=sys.stderr)
                client.close()
                client = Client(port, tokens)
        client.close()
        with lock:
            outcome.lifecycles += done
            outcome.errors += errors
            for name, values in timings.items():
                outcome.timings[name].extend(values)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    cpu_before = cpu_seconds(api_pid) if api_pid else 0.0
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    outcome.seconds = time.perf_counter() - began
    if api_pid:
        outcome.api_cpu_seconds = cpu_seconds(api_pid) - cpu_before
    return outcome


@dataclass
class Scenario:
    backend: str
    clients: int
    processes: int
    rounds: list[Round]
    ceiling_per_s: float
    commits_per_s: float
    lock_waits: LockWaits | None = None
    requests: int = 3

    def cpu_ms(self) -> list[float]:
        return [r.api_cpu_ms_per_lifecycle for r in self.rounds]

    def rates(self) -> list[float]:
        return [r.rate for r in self.rounds]

    def latencies_ms(self, name: str) -> list[float]:
        """Per-round p50 of one request kind, in ms."""
        return [1000 * statistics.median(r.timings[name]) for r in self.rounds]

    def pooled_ms(self, name: str, q: float) -> float:
        pooled = [value for r in self.rounds for value in r.timings[name]]
        return 1000 * engine_bench.percentile(pooled, q)


def measure(backend: engine_bench.Backend, n: int, repeat: int, clients: int, processes: int,
            serve: bool = False, requests: tuple[int, ...] = (3,)) -> list[Scenario]:
    """One scenario per way of doing a lifecycle (`requests`), their rounds alternating on one API process
    and one database, so that both meet the same machine."""
    _prepare(backend.url)
    sampler = LockWaits(backend.url) if backend.name == "postgresql" and clients > 1 else None
    rounds: dict[int, list[Round]] = {way: [] for way in requests}
    with api_process(backend.url, processes, serve) as (port, pid):
        tokens = sign_in(port)
        for way in requests:  # warm-up: imports, caches, connections
            run_round(port, tokens, clients, max(3, 20 // clients), way)
        with sampler or contextlib.nullcontext():
            for _ in range(repeat):
                for way in requests:
                    rounds[way].append(run_round(port, tokens, clients, max(1, n // clients), way, pid))
    ceiling = engine_bench.in_memory_rate(n)
    commits = engine_bench.bare_commit_rate(backend.url, 3 * n)
    return [Scenario(backend.name, clients, processes, rounds[way], ceiling, commits, sampler, way)
            for way in requests]


class LockWaits:
    """What the API's connections wait for while the rounds run: pg_stat_activity sampled every 10 ms from a
    connection of its own; `waiting()` gives, by statement, the mean number of connections waiting on a lock."""

    INTERVAL = 0.01

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples = 0
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> LockWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        engine = create_engine(self.url, poolclass=NullPool)
        query = text("SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 60) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'")
        try:
            with engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT")
                while not self._stop.wait(self.INTERVAL):
                    self.samples += 1
                    for (statement,) in connection.execute(query):
                        self.counts[statement] = self.counts.get(statement, 0) + 1
        finally:
            engine.dispose()

    def waiting(self) -> list[tuple[str, float]]:
        """(statement, mean connections waiting on a lock in it), most waited first."""
        return sorted(((s, c / max(1, self.samples)) for s, c in self.counts.items()), key=lambda p: -p[1])


# Report -----------------------------------------------------------------------------------------


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def render(scenario: Scenario) -> str:
    rates = scenario.rates()
    errors = sum(r.errors for r in scenario.rounds)
    lines = [f"### {scenario.backend}: {scenario.clients} client(s), {scenario.processes} API process(es), "
             f"{scenario.requests} requests a lifecycle", "",
             "| figure | median (min–max) | p99 over all rounds |", "| --- | --- | --- |",
             f"| lifecycles per s | {_spread(rates)} | |",
             f"| API CPU ms a lifecycle | {_spread(scenario.cpu_ms())} | |"]
    for name in ("launch", "inbox", "complete"):
        if not any(r.timings[name] for r in scenario.rounds):
            continue
        p99 = scenario.pooled_ms(name, 0.99)
        lines.append(f"| {name} ms p50 | {_spread(scenario.latencies_ms(name))} | {p99:.1f} |")
    median = statistics.median(rates)
    lines += [f"| errors | {errors} | |",
              f"| in-memory SpiffWorkflow ceiling, lifecycles per s | {scenario.ceiling_per_s:,.0f} | |",
              f"| bare one-row commits per s | {scenario.commits_per_s:,.0f} | |",
              f"| Tansiq ÷ ceiling | {median / scenario.ceiling_per_s:.3f} | |",
              f"| a lifecycle costs this many bare commits | {scenario.commits_per_s / median:.1f} | |", ""]
    if scenario.lock_waits is not None:
        lines += [f"Connections waiting on a lock, mean over {scenario.lock_waits.samples} samples of pg_stat_activity "
                  f"(of {scenario.clients} clients):", ""]
        waits = scenario.lock_waits.waiting()[:3]
        lines += [f"- {mean:.2f} in `{statement}…`" for statement, mean in waits] or ["- none"]
        lines.append("")
    return "\n".join(lines)


def records(scenario: Scenario) -> list[dict[str, Any]]:
    label = f"{scenario.clients} client(s), {scenario.processes} process(es), {scenario.requests} requests"
    rates = scenario.rates()
    cpu = scenario.cpu_ms()
    out = [{"figure": f"HTTP lifecycles per s, {label}", "backend": scenario.backend,
            "median": statistics.median(rates), "min": min(rates), "max": max(rates), "unit": "per s",
            "target": TARGETS.get(("lifecycles_per_s", scenario.backend, scenario.clients)),
            "errors": sum(r.errors for r in scenario.rounds),
            "ratio_to_ceiling": statistics.median(rates) / scenario.ceiling_per_s,
            "ratio_to_bare_commits": statistics.median(rates) / scenario.commits_per_s}]
    out.append({"figure": f"API CPU per lifecycle, {label}", "backend": scenario.backend,
                "median": statistics.median(cpu), "min": min(cpu), "max": max(cpu), "unit": "ms",
                "target": "<= 4" if scenario.clients == 1 and scenario.requests == 3 else None})
    for name in ("launch", "complete", "inbox"):
        if not any(r.timings[name] for r in scenario.rounds):
            continue
        values = scenario.latencies_ms(name)
        out.append({"figure": f"HTTP {name} p50, {label}", "backend": scenario.backend,
                    "median": statistics.median(values), "min": min(values), "max": max(values), "unit": "ms",
                    "target": LATENCY_TARGETS.get((f"{name}_p50_ms", scenario.backend)) if scenario.clients == 1
                    else None})
    if scenario.lock_waits is not None:
        waited = sum(mean for _, mean in scenario.lock_waits.waiting())
        out.append({"figure": f"connections waiting on a lock (mean), {label}", "backend": scenario.backend,
                    "median": waited, "min": waited, "max": waited, "unit": "connections", "target": None})
    for figure, value, unit in (("in-memory SpiffWorkflow lifecycles (two-steps)", scenario.ceiling_per_s,
                                 "lifecycles/s"), ("bare one-row commits", scenario.commits_per_s, "commits/s")):
        out.append({"figure": f"ceiling: {figure}, {label}", "backend": scenario.backend, "median": value,
                    "min": value, "max": value, "unit": unit, "target": None})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--n", type=int, default=300, help="lifecycles per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients of the many-client run")
    parser.add_argument("--processes", type=int, default=2, help="API processes of the many-client run")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON records here")
    parser.add_argument("--requests", type=int, nargs="+", choices=[3, 5], default=[5, 3],
                        help="how a lifecycle is done: 3 requests (the launch and completions answer with the next "
                        "open steps) or 5 (the inbox read before each completion, as before issue 23); several "
                        "alternate their rounds")
    parser.add_argument("--workers-compare", action="store_true",
                        help="PostgreSQL, --clients clients, `tansiq serve --workers 1` then `--workers 2`")
    args = parser.parse_args(argv)
    if args.workers_compare:
        return _compare_workers(args)
    names = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    try:
        if "postgresql" in names:
            engine_bench.check_postgresql()
    except engine_bench.Unreachable as exc:
        print(exc, file=sys.stderr)
        return 2
    plans = [(name, 1, 1) for name in names]
    if "postgresql" in names and args.clients > 1:
        plans.append(("postgresql", args.clients, args.processes))
    print(f"HTTP benchmark, {datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} CPUs, n={args.n}, rounds={args.repeat}")
    collected: list[dict[str, Any]] = []
    for name, clients, processes in plans:
        with engine_bench.fresh_backend(name) as backend:
            scenarios = measure(backend, args.n, args.repeat, clients, processes, requests=tuple(args.requests))
        for scenario in scenarios:
            print(render(scenario), flush=True)
            collected.extend(records(scenario))
    if args.json:
        args.json.write_text(json.dumps(collected, ensure_ascii=False, indent=2))
    return 0


def _compare_workers(args: argparse.Namespace) -> int:
    engine_bench.check_postgresql()
    print(f"HTTP benchmark, `tansiq serve --workers 1` vs `--workers 2`, {datetime.now():%Y-%m-%d %H:%M}, "
          f"{os.cpu_count()} CPUs, PostgreSQL, {args.clients} clients, n={args.n}, rounds={args.repeat}")
    collected: list[dict[str, Any]] = []
    for workers in (1, 2):
        with engine_bench.fresh_backend("postgresql") as backend:
            [scenario] = measure(backend, args.n, args.repeat, args.clients, workers, serve=True)
        print(render(scenario), flush=True)
        collected.extend(records(scenario))
    if args.json:
        args.json.write_text(json.dumps(collected, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
