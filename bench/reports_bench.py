"""The seasonal report over a season of 100,000 directives: data + XLSX, and the PDF summary.

    .venv/bin/python bench/reports_bench.py [--backend sqlite|postgresql|both] [--directives N] [--rounds R]
                                            [--url URL] [--json PATH]

A fresh database per backend, filled by bench/generate.py (default 100,000 directives in the demo
season), or the database at `--url`. Each round, in one process as `tansiq reports run seasonal` does:
compute the report's data (`engine.reports.archive.compute`, set-based queries) and render the Arabic
XLSX; then render the Arabic PDF of the same report (WeasyPrint). The first round is a warm-up (fonts,
templates, caches) and not counted. The same run measures the in-memory ceiling and the bare commit
rate of the same database.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from bench.common import (
    Record,
    Unreachable,
    ceiling_records,
    check_postgresql,
    fresh_backend,
    record,
    write_json,
)
from bench.engine_bench import Backend
from bench.generate import generate
from engine.calendar.seasons import Season
from engine.directives.directives import Directive
from engine.reports import SEASONAL, archive
from engine.storage.db import Database
from engine.system import migrate


@dataclass
class Round:
    data: float  # wall seconds
    xlsx: float
    pdf: float
    pdf_cpu: float  # CPU seconds of this process (the machine is shared: wall time includes waiting for a core)
    data_xlsx_cpu: float
    pdf_bytes: int


def one_round(db: Database) -> Round:
    with db.reading() as session:
        year = session.scalar(select(func.max(Season.hijri_year)))
        t0, c0 = time.perf_counter(), time.process_time()
        request = archive.resolve(session, SEASONAL, season_year=year, formats=["xlsx", "pdf"], languages=["ar"])
        report = archive.compute(session, request)
    t1 = time.perf_counter()
    archive.render(report, "xlsx", "ar")
    t2, c2 = time.perf_counter(), time.process_time()
    pdf = archive.render(report, "pdf", "ar")
    t3, c3 = time.perf_counter(), time.process_time()
    return Round(t1 - t0, t2 - t1, t3 - t2, c3 - c2, c2 - c0, len(pdf))


def run_backend(backend: Backend, directives: int, rounds: int, generated: bool) -> list[Record]:
    name = backend.name
    if generated:
        result = generate(backend.url, directives)
        print(f"[{name}] generated {directives:,} directives in {result.seconds:.0f} s", file=sys.stderr)
    migrate.upgrade(backend.url)
    db = Database(backend.url)
    try:
        with db.reading() as session:
            count = session.scalar(select(func.count()).select_from(Directive))
        one_round(db)  # warm-up
        done = []
        for index in range(rounds):
            done.append(one_round(db))
            r = done[-1]
            print(f"[{name}] round {index + 1}/{rounds}: data {r.data:.2f} s, XLSX {r.xlsx:.2f} s, PDF {r.pdf:.2f} s "
                  f"(CPU {r.pdf_cpu:.2f} s, {r.pdf_bytes:,} bytes)", file=sys.stderr, flush=True)
    finally:
        db.dispose()
    scale = f"{count:,} directives"
    ceilings, _, _ = ceiling_records(backend)
    return [record(f"seasonal report: data + XLSX ({scale})", name, [r.data + r.xlsx for r in done], "s", "<= 10"),
            record(f"seasonal report: data only ({scale})", name, [r.data for r in done], "s"),
            record(f"seasonal report: XLSX rendering only ({scale})", name, [r.xlsx for r in done], "s"),
            record(f"seasonal report: data + XLSX, CPU of this process ({scale})", name,
                   [r.data_xlsx_cpu for r in done], "s"),
            record(f"seasonal report: PDF summary, from the computed data ({scale})", name, [r.pdf for r in done],
                   "s", "<= 5"),
            record(f"seasonal report: PDF summary, CPU of this process ({scale})", name,
                   [r.pdf_cpu for r in done], "s"),
            *ceilings]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--directives", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", help="measure this database as it is (no generation)")
    parser.add_argument("--json", help="write the records here")
    args = parser.parse_args(argv)
    records: list[Record] = []
    try:
        if args.url:
            backend = Backend("postgresql" if args.url.startswith("postgresql") else "sqlite", args.url, "given")
            records += run_backend(backend, 0, args.rounds, generated=False)
        else:
            names = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
            if "postgresql" in names:
                check_postgresql()
            for name in names:
                with fresh_backend(name) as backend:
                    records += run_backend(backend, args.directives, args.rounds, generated=True)
    except Unreachable as exc:
        print(f"reports_bench: {exc}", file=sys.stderr)
        return 2
    write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
