"""The scale-out path of the reports, end to end on this machine (docs/scale-out-reports.md):

1. two fresh PostgreSQL databases on 127.0.0.1: one for the Prefect server, one for Tansiq;
2. `prefect server start` on the first (postgresql+asyncpg), on a free loopback port;
3. `prefect work-pool create tansiq-reports --type process`;
4. `prefect --no-prompt deploy --all` from the repository's prefect.yaml;
5. `prefect worker start --pool tansiq-reports` with TANSIQ_DATABASE_URL pointing at the Tansiq database;
6. a run of the daily deployment, waited for; its report run is read back from the Tansiq database and
   its files from the archive.

Every process it starts is stopped (by process group) and both databases are dropped, also on failure.
Run: `.venv/bin/python bench/reports_scaleout.py` (about 30-40 s); tests/test_flows_scaleout.py runs it too.
Admin URL: TANSIQ_BENCH_PG_ADMIN_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402

ADMIN_URL = os.environ.get("TANSIQ_BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PREFECT = str(Path(sys.executable).parent / "prefect")


def _admin(sql: str) -> None:
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


def _url(name: str, driver: str) -> str:
    base = ADMIN_URL.rsplit("/", 1)[0].split("://", 1)[1]
    return f"postgresql+{driver}://{base}/{name}"


def _stored_size(session, archive, entry) -> int | None:
    from engine.foundation.errors import NotFound

    try:
        return archive.locate(session, entry).size
    except NotFound:
        return None


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                           f"{done.stderr[-3000:]}")
    return done.stdout


def _seed(url: str) -> None:
    """Migrate the Tansiq database and give it a season and two entities."""
    from engine.calendar import seasons
    from engine.foundation import clock
    from engine.people import entities
    from engine.reports.runs import ReportRun
    from engine.storage.db import Database
    from engine.system import migrate

    migrate.upgrade(url)
    db = Database(url)
    ReportRun.__table__.create(db.engine, checkfirst=True)  # TEMPORARY until the report_run migration exists
    today = datetime.now(UTC).date()
    with clock.frozen_at(datetime.now(UTC)), db.transaction() as session:
        seasons.create_season(session, 1448, today - timedelta(days=30), today + timedelta(days=30))
        entities.create_entity(session, "housing", "الإسكان", "Housing")
        entities.create_entity(session, "transport", "النقل", "Transport")
    db.dispose()


def main(keep_logs: bool = False) -> dict[str, Any]:
    from workflows.serve import OFFLINE_ENV, free_port, stop_process, wait_for_api

    tag = secrets.token_hex(4)
    prefect_db, tansiq_db = f"prefect_scaleout_{tag}", f"tansiq_scaleout_{tag}"
    work = Path(tempfile.mkdtemp(prefix="tansiq-scaleout-"))
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TANSIQ_"))}
    env.update(OFFLINE_ENV)
    env.update({"PREFECT_HOME": str(work / "prefect-home"), "PREFECT_API_URL": api_url,
                "PREFECT_LOGGING_LEVEL": "WARNING"})
    tansiq_url = _url(tansiq_db, "psycopg")
    worker_env = {**env, "TANSIQ_DATABASE_URL": tansiq_url, "TANSIQ_HOME": str(work / "tansiq-home"),
                  "TANSIQ_REPORTS_DIR": str(work / "reports"), "TANSIQ_REPORTS_LANGUAGES": "ar,en"}
    timings: dict[str, float] = {}
    processes: list[subprocess.Popen] = []
    started = time.monotonic()

    def lap(name: str, since: float) -> float:
        now = time.monotonic()
        timings[name] = round(now - since, 2)
        return now

    try:
        mark = time.monotonic()
        _admin(f'CREATE DATABASE "{prefect_db}"')
        _admin(f'CREATE DATABASE "{tansiq_db}"')
        _seed(tansiq_url)
        mark = lap("databases", mark)

        server_env = {**env, "PREFECT_SERVER_DATABASE_CONNECTION_URL": _url(prefect_db, "asyncpg"),
                      "PREFECT_UI_ENABLED": "false"}
        server_env.pop("PREFECT_API_URL")
        log = (work / "server.log").open("ab")
        processes.append(subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
            env=server_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
        wait_for_api(api_url, 120, processes[0])
        mark = lap("server_start", mark)

        _run([PREFECT, "work-pool", "create", "tansiq-reports", "--type", "process"], env)
        _run([PREFECT, "--no-prompt", "deploy", "--all"], env, timeout=180)
        mark = lap("pool_and_deploy", mark)

        log = (work / "worker.log").open("ab")
        processes.append(subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", "tansiq-reports", "--name", f"scaleout-{tag}", "--limit", "2"],
            env=worker_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
        day = datetime.now(UTC).date() - timedelta(days=1)
        out = _run([PREFECT, "deployment", "run", "tansiq-daily-report/daily", "--param", f"day={day.isoformat()}",
                    "--watch", "--watch-timeout", "180"], env, timeout=240)
        mark = lap("daily_run_via_worker", mark)

        from engine.reports import archive
        from engine.reports.runs import ReportRun
        from engine.storage.db import Database

        db = Database(tansiq_url)
        try:
            with db.reading() as session:
                run = session.scalars(select(ReportRun).order_by(ReportRun.id.desc())).first()
                record = {"id": run.id, "status": run.status, "kind": run.kind, "period_start": str(run.period_start),
                          "prefect_flow_run_id": run.prefect_flow_run_id, "files": run.files}
                # Wherever the archive keeps them (the database by default, or TANSIQ_HOME/reports on disk).
                missing = [f["path"] for f in run.files or [] if _stored_size(session, archive, f) != f["bytes"]]
        finally:
            db.dispose()
        if record["status"] != "succeeded" or record["period_start"] != day.isoformat():
            raise RuntimeError(f"unexpected report run: {record}\n{out[-2000:]}")
        if missing:
            raise RuntimeError(f"archived files missing: {missing}")
        lap("total", started)
        return {"timings_s": timings, "report_run": record, "api_url": api_url}
    finally:
        for process in reversed(processes):
            stop_process(process, timeout=15)
        with contextlib.suppress(Exception):
            _admin(f'DROP DATABASE IF EXISTS "{prefect_db}" WITH (FORCE)')
        with contextlib.suppress(Exception):
            _admin(f'DROP DATABASE IF EXISTS "{tansiq_db}" WITH (FORCE)')
        if not keep_logs:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", file=sys.stderr)


if __name__ == "__main__":
    result = main(keep_logs="--keep-logs" in sys.argv)
    print(json.dumps(result, indent=1, default=str, ensure_ascii=False))
