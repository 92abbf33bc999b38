"""A lifecycle's cost before and after, in one run (issue 23): HTTP lifecycles, statements, state, escalations.

    .venv/bin/python bench/lifecycle_cost.py [--before REV] [--rounds R] [--n N] [--directive-due D] [--json PATH]

The code of REV (default f2ce5ec, the commit before issue 23's first change) is checked out in a temporary
worktree; this tree is "after". Rounds alternate, before then after, so both meet the same machine:

- **HTTP lifecycles** on both databases: `bench/http_bench.py`'s two-step directive, one keep-alive client
  against one uvicorn process, N lifecycles a round after five of warm-up. Before: five requests (launch,
  inbox, complete, inbox, complete); after: the same five, and the three-request form (the launch answers
  with its open steps, each completion with the next). Per round: lifecycles a second; the API process's
  CPU a lifecycle (/proc); and the statements the API process sent a lifecycle, counted inside it by a
  `sitecustomize` that listens on every SQLAlchemy engine (cursor executions and COMMITs; on SQLite the
  BEGINs are among the executions).
- **Escalations**: each tree's own `bench/timers_bench.py` on PostgreSQL (its shipped-model round: D launched
  directives due at once, 2 `tansiq timers run` workers), with its other rounds cut small.
- **State**: not run twice: the code before stored SpiffWorkflow's conversion as JSON, so this tree measures,
  per shipped model, that conversion and the packed form it stores now (engine/bpmn/state_codec.py), on
  the same instances.

Each tree runs with its own code (PYTHONPATH and working directory) and the shared virtualenv. Medians of the
rounds with their min – max; the records go to --json and a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BACKENDS = ("sqlite", "postgresql")

# Loaded into the API process through PYTHONPATH: counts what it sends to the database, and writes the
# counts to $TANSIQ_PROBE_COUNTS on SIGUSR1 (the probe asks before and after its measured lifecycles).
SITECUSTOMIZE = textwrap.dedent('''
    import json, os, signal
    if os.environ.get("TANSIQ_PROBE_COUNTS"):
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        _counts = {"executions": 0, "commits": 0}

        @event.listens_for(Engine, "before_cursor_execute")
        def _execution(*_args):
            _counts["executions"] += 1

        @event.listens_for(Engine, "commit")
        def _commit(*_args):
            _counts["commits"] += 1

        def _dump(*_args):
            with open(os.environ["TANSIQ_PROBE_COUNTS"], "w") as out:
                json.dump(_counts, out)

        signal.signal(signal.SIGUSR1, _dump)
''')


# The probe: one tree's HTTP lifecycles, run with that tree's code -------------------------------------


def probe(backend: str, n: int, shapes: list[int]) -> list[dict[str, Any]]:
    """Runs inside a subprocess whose PYTHONPATH starts with the tree measured: `bench.http_bench` is its own."""
    from bench import engine_bench
    from bench import http_bench as hb

    with engine_bench.fresh_backend(backend) as fresh:
        hb._prepare(fresh.url)
        with _api_process(fresh.url) as (port, pid, counts_file):
            tokens = hb.sign_in(port)
            client = hb.Client(port, tokens)
            try:
                return [_measure(client, pid, counts_file, n, requests) for requests in shapes]
            finally:
                client.close()


def _measure(client: Any, pid: int, counts_file: Path, n: int, requests: int) -> dict[str, Any]:
    timings: dict[str, list[float]] = {"launch": [], "inbox": [], "complete": []}
    lifecycle = _lifecycle(client, requests)
    for _ in range(5):
        lifecycle(timings)
    counts_before, cpu_before, began = _counts(pid, counts_file), _cpu_seconds(pid), time.perf_counter()
    for _ in range(n):
        lifecycle(timings)
    seconds = time.perf_counter() - began
    cpu, counts_after = _cpu_seconds(pid) - cpu_before, _counts(pid, counts_file)
    executions = counts_after["executions"] - counts_before["executions"]
    commits = counts_after["commits"] - counts_before["commits"]
    return {"requests": requests, "rate": n / seconds, "cpu_ms": 1000 * cpu / n,
            "statements": (executions + commits) / n, "commits": commits / n}


def _lifecycle(client: Any, requests: int) -> Callable[[dict[str, list[float]]], None]:
    """The tree's own lifecycle of `requests` requests: the code before issue 23 has only the five-request
    one, as `lifecycle`; after, `lifecycle` takes the number and `_five_request_lifecycle` is the old form."""
    if requests == 3:
        return lambda timings: client.lifecycle(timings, 3)
    five: Callable[[dict[str, list[float]]], None] = getattr(client, "_five_request_lifecycle", client.lifecycle)
    return five


@contextmanager
def _api_process(url: str):  # type: ignore[no-untyped-def]
    from bench import http_bench as hb

    folder = Path(tempfile.mkdtemp(prefix="tansiq-lifecycle-cost-"))
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    counts_file = folder / "counts.json"
    port = hb._free_port()
    env = {**os.environ, "TANSIQ_DATABASE_URL": url, "TANSIQ_HOME": str(folder / "home"),
           "TANSIQ_SECRET_KEY": "b" * 48, "TANSIQ_PROBE_COUNTS": str(counts_file),
           "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, cwd=os.getcwd(), env=env, start_new_session=True)
    try:
        hb._wait_until_up(port, server)
        yield port, server.pid, counts_file
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def _counts(pid: int, counts_file: Path) -> dict[str, int]:
    counts_file.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            return json.loads(counts_file.read_text())
        except (OSError, ValueError):
            time.sleep(0.02)
    raise RuntimeError("the API process did not write its statement counts")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The run: alternate the trees ---------------------------------------------------------------------


@contextmanager
def before_tree(revision: str):  # type: ignore[no-untyped-def]
    folder = Path(tempfile.mkdtemp(prefix="tansiq-before-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(folder), revision],
                   check=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], check=False)


def _run_in(tree: Path, arguments: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run([sys.executable, *arguments], cwd=tree, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments[:2])} in {tree} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def http_round(tree: Path, backend: str, n: int, shapes: list[int]) -> list[dict[str, Any]]:
    output = _run_in(tree, [str(Path(__file__).resolve()), "--probe", backend, "--n", str(n),
                            "--shapes", *map(str, shapes)])
    return json.loads(output.strip().splitlines()[-1])


def escalation_round(tree: Path, due: int) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(prefix="tansiq-timers-")) / "timers.json"
    _run_in(tree, ["bench/timers_bench.py", "--backend", "postgresql", "--rounds", "1", "--spread", "20",
                   "--burst", "20", "--due", "300", "--directive-due", str(due), "--json", str(out)])
    records = json.loads(out.read_text())

    def figure(start: str) -> float:
        return next(r["median"] for r in records if r["figure"].startswith(start))

    return {"rate": figure("escalations of directives (shipped model), 2 worker"),
            "worker_cpu_ms": figure("worker CPU per directive escalation"),
            "server_cpu_ms": figure("PostgreSQL backend CPU per directive escalation"),
            "ceiling": figure("ceiling: SpiffWorkflow alone")}


def state_sizes() -> list[dict[str, Any]]:
    """Per shipped model, launched and after each of its first three steps: SpiffWorkflow's conversion (what
    the code before stored) and the packed form stored now, in bytes of UTF-8 JSON."""
    os.environ.setdefault("TANSIQ_HOME", tempfile.mkdtemp(prefix="tansiq-state-"))
    sys.path.insert(0, str(ROOT))
    from lxml import etree

    from engine.bpmn import bpmn_runtime
    from tests.test_runtime_state import DATA, FORM  # the state tests' directive and answers

    def answer(call: bpmn_runtime.ServiceCall) -> dict[str, Any]:
        return {"called": call.operation}

    def text(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    rows = []
    for path in sorted((ROOT / "bpmn").glob("*.bpmn")):
        document = etree.fromstring(path.read_bytes())
        process = document.find("{http://www.omg.org/spec/BPMN/20100524/MODEL}process[@isExecutable='true']")
        tables = [etree.fromstring(table.read_bytes()) for table in sorted(path.parent.glob("*.dmn"))]
        model = bpmn_runtime.parse_model(document, path.name, process.get("id"), tables)
        runtime = bpmn_runtime.Runtime.start(model, dict(DATA), answer, 50, 2000)
        runtime.run_engine()
        for moment in ("launched", "after step 1", "after step 2", "after step 3"):
            converted, packed = text(runtime.dump()), text(runtime.stored())
            rows.append({"model": path.stem, "moment": moment, "converted": len(converted.encode()),
                         "converted_chars": len(converted), "packed": len(packed.encode()),
                         "packed_chars": len(packed)})
            views = runtime.ready_user_tasks()
            if not views:
                break
            # As a completion does it: loaded from the stored state, the step completed, the engine run.
            runtime = bpmn_runtime.Runtime.load(model, json.loads(packed), answer, 50, 2000)
            runtime.complete_user_task(views[0].task_id, dict(FORM))
            runtime.run_engine()
    return rows


def run(revision: str, rounds: int, n: int, due: int) -> dict[str, Any]:
    results: dict[str, Any] = {"http": {}, "escalations": {"before": [], "after": []}, "load": [os.getloadavg()]}
    with before_tree(revision) as before:
        trees = {"before": (before, [5]), "after": (ROOT, [5, 3])}
        for round_number in range(1, rounds + 1):
            for label, (tree, shapes) in trees.items():
                for backend in BACKENDS:
                    print(f"round {round_number}: {label}, HTTP, {backend}", file=sys.stderr, flush=True)
                    for figures in http_round(tree, backend, n, shapes):
                        key = f"{label}, {figures['requests']} requests, {backend}"
                        results["http"].setdefault(key, []).append(figures)
                if due:
                    print(f"round {round_number}: {label}, escalations", file=sys.stderr, flush=True)
                    results["escalations"][label].append(escalation_round(tree, due))
            results["load"].append(os.getloadavg())
    results["state"] = state_sizes()
    return results


def _spread(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def render(results: dict[str, Any], revision: str) -> str:
    lines = [f"Before: {revision}; after: this tree. Load average before, and after each round: "
             + ", ".join(f"{load[0]:.2f}" for load in results["load"]) + ".", "",
             "| HTTP lifecycle, one client | lifecycles/s | API CPU a lifecycle (ms) | statements a lifecycle "
             "(of them COMMITs) |", "| --- | ---: | ---: | ---: |"]
    for key, rounds in results["http"].items():
        commits = statistics.median(r["commits"] for r in rounds)
        lines.append(f"| {key} | {_spread([r['rate'] for r in rounds])} | {_spread([r['cpu_ms'] for r in rounds])} "
                     f"| {_spread([r['statements'] for r in rounds])} ({commits:.0f}) |")
    if results["escalations"]["after"]:
        lines += ["", "| escalations, shipped model, 2 workers, PostgreSQL | escalations/s | worker CPU (ms) "
                  "| PostgreSQL CPU (ms) | SpiffWorkflow alone, one core (/s) |", "| --- | ---: | ---: | ---: | ---: |"]
        for label in ("before", "after"):
            rounds = results["escalations"][label]
            lines.append(f"| {label} | {_spread([r['rate'] for r in rounds])} "
                         f"| {_spread([r['worker_cpu_ms'] for r in rounds], 2)} "
                         f"| {_spread([r['server_cpu_ms'] for r in rounds], 2)} "
                         f"| {_spread([r['ceiling'] for r in rounds], 0)} |")
    lines += ["", "| stored state per directive, bytes of UTF-8 JSON (characters) | SpiffWorkflow's conversion "
              "(before) | packed (after) |", "| --- | ---: | ---: |"]
    lines += [f"| {row['model']}, {row['moment']} | {row['converted']:,} ({row['converted_chars']:,}) "
              f"| {row['packed']:,} ({row['packed_chars']:,}) |" for row in results["state"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="f2ce5ec", help="the revision measured as before")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=150, help="lifecycles per HTTP round")
    parser.add_argument("--directive-due", type=int, default=2000, help="directives due per escalation round (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--probe", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--shapes", type=int, nargs="+", default=[5], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.probe, args.n, args.shapes)))
        return 0
    results = run(args.before, args.rounds, args.n, args.directive_due)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(render(results, args.before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
