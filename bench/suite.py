"""Run every benchmark and write bench/RESULTS.md.

    .venv/bin/python bench/suite.py [--only NAME ...] [--quick] [--from-json DIR]

Each script in `SCRIPTS` runs as its own process with `--json PATH` (plus its arguments) and writes a
list of records {"figure", "backend", "median", "min", "max", "unit", "target"}; a script that is not
there is skipped, one that fails is reported and the others still run. The records are kept in
bench/out/<name>.json; RESULTS.md shows each script's latest records (`--only` reruns some, the others'
earlier records stay: from bench/out, or where a clone has none, the tables RESULTS.md shows, with their
date); `--from-json DIR` renders RESULTS.md from such files without running anything. RESULTS.md's
figures go between the `suite:begin` / `suite:end` markers; text outside them is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
RESULTS = BENCH / "RESULTS.md"
BEGIN, END = "<!-- suite:begin -->", "<!-- suite:end -->"
# name -> (script, arguments, arguments with --quick)
SCRIPTS: dict[str, tuple[str, list[str], list[str]]] = {
    "storage": ("storage_bench.py", [], ["--n", "100", "--repeat", "3"]),
    "timers": ("timers_bench.py", [], ["--rounds", "1", "--due", "1000", "--spread", "50", "--burst", "100"]),
    "reports": ("reports_bench.py", [], ["--directives", "10000", "--rounds", "2"]),
    "pages": ("pages_bench.py", [], ["--directives", "20000", "--rounds", "2", "--requests", "10"]),
    "http": ("http_bench.py", [], ["--n", "50", "--repeat", "2"]),
    "forecast": ("forecast_backtest.py", [], ["--days", "10", "--per-template", "2"]),
}


def run(name: str, quick: bool) -> list[dict[str, Any]] | None:
    script, arguments, quick_arguments = SCRIPTS[name]
    path = BENCH / script
    if not path.exists():
        print(f"suite: {script} is not there; skipped", file=sys.stderr)
        return None
    OUT.mkdir(exist_ok=True)
    target = OUT / f"{name}.json"
    target.unlink(missing_ok=True)
    command = [sys.executable, str(path), "--json", str(target), *(quick_arguments if quick else arguments)]
    print(f"suite: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, check=False)
    print(f"suite: {name} exited {done.returncode} after {time.perf_counter() - began:.0f} s", file=sys.stderr)
    if done.returncode != 0 or not target.exists():
        return [{"figure": f"{script} failed (exit {done.returncode})", "backend": "-", "median": float("nan"),
                 "min": float("nan"), "max": float("nan"), "unit": "", "target": None}]
    return json.loads(target.read_text(encoding="utf-8"))


def _number(value: float) -> str:
    if value != value:  # NaN
        return "–"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _verdict(rec: dict[str, Any]) -> str:
    if not rec.get("target"):
        return ""
    op, limit = rec["target"].split()
    met = rec["median"] <= float(limit) if op == "<=" else rec["median"] >= float(limit)
    return f"{rec['target']} {'✅ met' if met else '❌ missed'}"


def table(name: str, records: list[dict[str, Any]]) -> str:
    lines = [f"### {name}", "", "| Figure | Backend | Median | Min – max | Unit | Target |",
             "|---|---|---:|---:|---|---|"]
    for rec in records:
        lines.append(f"| {rec['figure']} | {rec['backend']} | **{_number(rec['median'])}** | "
                     f"{_number(rec['min'])} – {_number(rec['max'])} | {rec['unit']} | {_verdict(rec)} |")
    return "\n".join(lines)


def _load_average() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def render(results: dict[str, list[dict[str, Any]]], load_before: str | None,
           earlier: dict[str, str] | None = None) -> str:
    """The suite's block of RESULTS.md: a table per script with records; a script without any keeps the table
    `earlier` holds for it (bench/out is not kept between clones: a partial run must not drop the others)."""
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs (shared), "
               f"Python {platform.python_version()}")
    when = (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine}; load average (1/5/15 min) "
            f"{load_before} before, {_load_average()} after." if load_before is not None else
            f"Rendered {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from the scripts' latest records (bench/out), "
            f"measured on {machine}.")
    earlier = earlier or {}
    kept = [name for name in SCRIPTS if name not in results and name in earlier]
    if kept:
        when += f" Not measured in this run, kept as they were: {', '.join(kept)} (each says when)."
    body = [table(name, results[name]) if name in results else earlier[name]
            for name in SCRIPTS if results.get(name) or name in kept]
    return "\n".join([BEGIN, "", when, "", "\n\n".join(body), "", END])


def earlier_tables(text: str) -> dict[str, str]:
    """The tables of the suite's block in `text`, by script name, each headed by when it was measured."""
    if BEGIN not in text or END not in text:
        return {}
    block = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    header, _, rest = block.partition("\n### ")
    measured = header.splitlines()[0].split(" Not measured in this run")[0] if header.strip() else ""
    tables = {}
    for chunk in ("### " + rest).split("\n### ") if rest else []:
        chunk = chunk if chunk.startswith("### ") else "### " + chunk
        name, _, table_text = chunk.partition("\n")
        table_text = table_text.strip()
        if measured and not table_text.startswith("_"):
            table_text = f"_{measured}_\n\n{table_text}"
        tables[name.removeprefix("### ").strip()] = f"{name}\n\n{table_text}"
    return tables


def write(results: dict[str, list[dict[str, Any]]], load_before: str | None) -> None:
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n\n"
    block = render(results, load_before, earlier_tables(text))
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text, encoding="utf-8")
    print(f"suite: written {RESULTS.relative_to(ROOT)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(SCRIPTS), help="run only these")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run; not for RESULTS.md)")
    parser.add_argument("--from-json", type=Path, help="render RESULTS.md from NAME.json files in this folder")
    args = parser.parse_args(argv)
    load_before = _load_average()
    results: dict[str, list[dict[str, Any]]] = {}
    for name in args.only or list(SCRIPTS):
        if args.from_json:
            path = args.from_json / f"{name}.json"
            if path.exists():
                results[name] = json.loads(path.read_text(encoding="utf-8"))
            continue
        found = run(name, args.quick)
        if found is not None:
            results[name] = found
    for name in SCRIPTS:  # figures of earlier runs (bench/out) stay in RESULTS.md until measured again
        earlier = (args.from_json or OUT) / f"{name}.json"
        if name not in results and earlier.exists():
            results[name] = json.loads(earlier.read_text(encoding="utf-8"))
    results = {name: results[name] for name in SCRIPTS if name in results}
    write(results, None if args.from_json else load_before)
    return 0 if all(r.get("backend") != "-" for records in results.values() for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
