"""Storage and single-client figures per completed lifecycle, as records: bench/engine_bench.py's own
Bench, run and reported with the suite's `--json PATH` contract.

    .venv/bin/python bench/storage_bench.py [--backend sqlite|postgresql|both] [--n N] [--repeat R] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Record, Unreachable, check_postgresql, fresh_backend, record, write_json
from bench.engine_bench import Bench

FIGURES = (  # (Rounds key, figure, unit, target on SQLite)
    ("bytes_per_lifecycle", "storage per completed lifecycle (rows + indexes + audit; database growth ÷ N)",
     "bytes", "<= 6000"),
    ("rows_written_per_lifecycle", "rows written per completed lifecycle", "rows", None),
    ("lifecycles_per_s", "lifecycles per second, one client (start + 2 steps)", "lifecycles/s", None),
    ("ceiling_per_s", "ceiling: in-memory SpiffWorkflow lifecycles (two-steps)", "lifecycles/s", None),
    ("commits_per_s", "ceiling: bare one-row commits", "commits/s", None),
    ("ratio_ceiling", "lifecycles/s ÷ in-memory ceiling", "×", None),
    ("ratio_lps_cps", "lifecycles/s ÷ bare commits/s", "×", None),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="write the records here")
    args = parser.parse_args(argv)
    names = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    records: list[Record] = []
    try:
        if "postgresql" in names:
            check_postgresql()
        for name in names:
            with fresh_backend(name) as backend:
                rounds = Bench(backend, args.n, args.repeat).run()
            for key, figure, unit, target in FIGURES:
                records.append(record(figure, name, rounds.values[key], unit, target if name == "sqlite" else None))
    except Unreachable as exc:
        print(f"storage_bench: {exc}", file=sys.stderr)
        return 2
    write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
