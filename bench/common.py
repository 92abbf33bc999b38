"""What every bench script shares: figures as records, fresh databases, and the two ceilings of the
same run (the in-memory SpiffWorkflow rate and the bare one-row-commit rate), both measured by
bench/engine_bench.py's own functions.

A record is {"figure", "backend", "median", "min", "max", "unit", "target"}; `target` is a string such as
"<= 20" or ">= 2000" (or null). Each script takes `--json PATH` and writes its list of records there.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import engine_bench  # noqa: E402  (sets TANSIQ_HOME to a temporary folder before engine imports)
from bench.engine_bench import SCRATCH, Backend, Bench, Unreachable, check_postgresql, fresh_backend  # noqa: E402

__all__ = [
    "ROOT",
    "Record",
    "Unreachable",
    "ceilings",
    "check_postgresql",
    "fresh_backend",
    "percentile",
    "record",
    "summary",
    "write_json",
]

percentile = engine_bench.percentile


@dataclass
class Record:
    figure: str
    backend: str
    median: float
    min: float
    max: float
    unit: str
    target: str | None = None

    def met(self) -> bool | None:
        """Whether the median meets the target (None without one)."""
        if not self.target:
            return None
        op, value = self.target.split()
        return self.median <= float(value) if op == "<=" else self.median >= float(value)


def record(figure: str, backend: str, values: Iterable[float], unit: str, target: str | None = None) -> Record:
    """The median of the rounds with their min – max."""
    data = list(values)
    return Record(figure, backend, statistics.median(data), min(data), max(data), unit, target)


def summary(rec: Record) -> str:
    verdict = {None: "", True: " (target met)", False: " (TARGET MISSED)"}[rec.met()]
    target = f", target {rec.target}" if rec.target else ""
    return (f"[{rec.backend}] {rec.figure}: {rec.median:.4g} {rec.unit} "
            f"(min {rec.min:.4g} – max {rec.max:.4g}{target}){verdict}")


def write_json(path: str | None, records: list[Record]) -> None:
    for rec in records:
        print(summary(rec), flush=True)
    if path:
        Path(path).write_text(json.dumps([asdict(r) for r in records], indent=1), encoding="utf-8")


def ceilings(backend: Backend, rounds: int = 3, n: int = 100) -> tuple[list[float], list[float]]:
    """Per round: in-memory lifecycles/s of tests/bpmn/two-steps.bpmn and bare commits/s on this database.

    engine_bench's Bench measures them; only the state it needs for those two methods is set up here.
    """
    from engine.bpmn.model_validation import validate_model
    from engine.bpmn.service_tasks import operation_names
    from engine.foundation.settings import get_settings
    from engine.storage.db import Database

    bench = Bench(backend, n, rounds)
    settings = get_settings()
    bench.compiled = validate_model(engine_bench.MODEL_FILE.read_bytes(), engine_bench.MODEL_FILE.name,
                                    operation_names(), max_bytes=settings.model_max_bytes,
                                    max_elements=settings.model_max_elements).compiled
    bench.runtimes = []
    bench.db = Database(backend.url)
    bench.write_engine = bench.db.engine.execution_options(tansiq_write=True)
    SCRATCH.create(bench.db.engine, checkfirst=True)
    memory, commits = [], []
    try:
        bench._bare_commits(20)  # warm-up
        for _ in range(rounds):
            memory.append(n / bench._in_memory()[0])
            commits.append(3 * n / bench._bare_commits(3 * n)[0])
    finally:
        SCRATCH.drop(bench.db.engine, checkfirst=True)
        bench.db.dispose()
    return memory, commits


def ceiling_records(backend: Backend, rounds: int = 3) -> tuple[list[Record], float, float]:
    """The two ceilings as records, and their medians (to divide other figures by)."""
    memory, commits = ceilings(backend, rounds)
    records = [record("ceiling: in-memory SpiffWorkflow lifecycles (two-steps)", backend.name, memory, "lifecycles/s"),
               record("ceiling: bare one-row commits", backend.name, commits, "commits/s")]
    return records, statistics.median(memory), statistics.median(commits)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    import time

    began = time.perf_counter()
    result = function()
    return time.perf_counter() - began, result


# The API as a real process ------------------------------------------------------------------------


def scratch_home(prefix: str) -> str:
    """A TANSIQ_HOME for a process the bench starts, removed when the bench exits."""
    import atexit
    import shutil
    import tempfile

    home = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ApiProcess:
    """`tansiq serve` on a free loopback port, in its own process group; `stop()` ends it."""

    def __init__(self, url: str, home: str, *, timers: bool = True, env: dict[str, str] | None = None) -> None:
        import os
        import secrets
        import subprocess

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environment = dict(os.environ, TANSIQ_DATABASE_URL=url, TANSIQ_HOME=home, TANSIQ_LOG_LEVEL="WARNING",
                           TANSIQ_SECRET_KEY=secrets.token_hex(32), **(env or {}))
        command = [str(Path(sys.executable).parent / "tansiq"), "serve", "--port", str(self.port), "--no-reports"]
        if not timers:
            command.append("--no-timers")
        self.log = Path(home) / "api.log"
        self.process = subprocess.Popen(command, env=environment, cwd=ROOT, stdout=self.log.open("w"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the API did not answer within a minute")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        import os
        import signal
        import subprocess

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
