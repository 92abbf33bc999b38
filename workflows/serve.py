"""The embedded default: a long-running Prefect API in a child process of Tansiq, and the report and daily-digest
deployments served by a Runner in a thread of Tansiq's own process, on cron schedules in
Asia/Riyadh time (configurable). A one-machine install needs nothing else.

    from workflows.serve import start_embedded

    reports = start_embedded()          # returns once the API answers and the deployments are served
    ...                                 # Tansiq's web server, timers, etc.
    reports.stop()                      # stops the Runner, then the Prefect server

`tansiq serve` (unless --no-reports) and `tansiq reports serve` call it. The Prefect server listens on
127.0.0.1 only, on TANSIQ_PREFECT_PORT (4200) unless another port is given, with its home (and SQLite
database) under $TANSIQ_HOME/prefect; its UI is at `EmbeddedReports.ui_url`, which both commands print. Analytics
are off and nothing is fetched from the network. Flow runs execute in subprocesses of this process that inherit its
environment (TANSIQ_DATABASE_URL, TANSIQ_HOME, TANSIQ_REPORTS_*).

Why a child process rather than the API app in a thread: the Prefect server brings its own
database, migrations, background services and event loop, and a crash or a slow query there must
not stall Tansiq's web server; as a process it is also stopped cleanly (with its process group).

To use a Prefect server that runs elsewhere (see docs/scale-out-reports.md), pass `api_url`: then
no server is started and only the deployments are served from here. Or register them on a `process`
work pool with `deploy_to_pool` (`tansiq reports deploy`) and let `prefect worker start` run them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from engine.foundation.logs import prefect_logging_env
from engine.foundation.settings import get_settings
from engine.reports.common import DAILY, PERIODIC, SEASONAL
from engine.reports.settings import get_report_settings

DIGEST = "digest"
OFFLINE_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
}
DEPLOYMENT_NAMES = {DAILY: "daily", PERIODIC: "periodic", SEASONAL: "seasonal", DIGEST: "daily"}
WORK_POOL = "tansiq-reports"


def offline() -> None:
    """No analytics or telemetry from this process or its children."""
    os.environ.update(OFFLINE_ENV)


def _log_like_tansiq(home: Path | None) -> None:
    """Flow runs this process starts (each a child process) log in Tansiq's format (TANSIQ_LOG_FORMAT)."""
    if "PREFECT_LOGGING_SETTINGS_PATH" not in os.environ:
        settings = get_settings()
        os.environ.update(prefect_logging_env((home or settings.home / "prefect").resolve(), settings.log_level,
                                              settings.log_format))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def default_schedules() -> dict[str, str]:
    settings = get_report_settings()
    return {DAILY: settings.daily_cron, PERIODIC: settings.periodic_cron, SEASONAL: settings.seasonal_cron,
            DIGEST: settings.digest_cron}


def deployment_name(kind: str) -> str:
    """`flow/deployment`, as Prefect names a deployment (run_deployment, `prefect deployment run`)."""
    from workflows.reports import DIGEST_FLOW_NAME, FLOW_NAMES

    return f"{FLOW_NAMES.get(kind, DIGEST_FLOW_NAME)}/{DEPLOYMENT_NAMES[kind]}"


async def build_deployments(schedules: Mapping[str, str | None] | None = None, timezone: str | None = None,
                            work_pool: str | None = None) -> list[Any]:
    """The three report deployments and the daily digest's (RunnerDeployment), each on a cron schedule in
    `timezone`. A kind mapped to None (or missing from `schedules`) is deployed without a schedule: runnable
    on demand only. With `work_pool`, they are meant for that pool's workers rather than a Runner here."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from workflows.reports import FLOWS, daily_digest

    timezone = timezone or get_report_settings().timezone
    schedules = default_schedules() if schedules is None else schedules
    out = []
    for kind, deployed_flow in [*FLOWS.items(), (DIGEST, daily_digest)]:
        cron = schedules.get(kind)
        options: dict[str, Any] = {"work_pool_name": work_pool, "concurrency_limit": 1} if work_pool else {}
        out.append(await deployed_flow.ato_deployment(
            name=DEPLOYMENT_NAMES[kind], schedules=[Cron(cron, timezone=timezone)] if cron else [],
            tags=["tansiq", "reports" if kind != DIGEST else "notifications"], description=deployed_flow.description,
            entrypoint_type=EntrypointType.MODULE_PATH, **options,
        ))
    return out


def deploy_to_pool(api_url: str, pool: str = WORK_POOL, schedules: Mapping[str, str | None] | None = None,
                   timezone: str | None = None) -> list[str]:
    """`tansiq reports deploy`: create the `process` work pool if it is missing and register (or update) the
    deployments on it, for `prefect worker start --pool POOL` on any machine. Idempotent. Returns their names."""
    offline()
    wait_for_api(api_url, 30)

    async def main() -> list[str]:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import WorkPoolCreate
        from prefect.exceptions import ObjectNotFound
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            async with get_client() as client:
                try:
                    await client.read_work_pool(pool)
                except ObjectNotFound:
                    await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            names = []
            for deployment in await build_deployments(schedules, timezone, work_pool=pool):
                await deployment.aapply(work_pool_name=pool)
                names.append(deployment.full_name)
            return names

    return asyncio.run(main())


@dataclass
class EmbeddedReports:
    """A running embedded report scheduler; `stop()` ends what `start_embedded` started."""

    api_url: str
    home: Path | None
    server: subprocess.Popen | None
    log_path: Path | None
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: Any = None
    _error: BaseException | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving the deployments, then stop the Prefect server if it was started here."""
        if self._runner is not None and self._loop is not None and self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._runner.astop(), self._loop).result(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        with contextlib.suppress(Exception):  # send the logs of flows run in this process before the API goes
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)
        if self.server is not None:
            stop_process(self.server, timeout)

    def __enter__(self) -> EmbeddedReports:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(*, home: Path | None = None, port: int | None = None, database_url: str | None = None,
                 ui: bool = True, startup_timeout: float = 120.0) -> tuple[str, subprocess.Popen, Path]:
    """Start `prefect server start` on 127.0.0.1 as a child process (its own process group) and wait
    until its API answers. Returns (api_url, process, log file)."""
    home = (home or get_settings().home / "prefect").resolve()
    home.mkdir(parents=True, exist_ok=True)
    port = port or get_settings().prefect_port
    if not port_is_free(port):
        raise RuntimeError(f"port {port} on 127.0.0.1 is taken: is a Prefect server running already? "
                           "Set TANSIQ_PREFECT_PORT to another port, or TANSIQ_PREFECT_API_URL to use that server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    env.update(OFFLINE_ENV)
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_UI_ENABLED": "true" if ui else "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    })
    settings = get_settings()
    env.update(prefect_logging_env(home, env.get("PREFECT_LOGGING_LEVEL", settings.log_level), settings.log_format))
    log_path = home / "server.log"
    log = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
         "--analytics-off"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    log.close()
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for_api(api_url, startup_timeout, process)
    except BaseException:
        stop_process(process)
        raise
    return api_url, process, log_path


def wait_for_api(api_url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {process.returncode} before answering")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise TimeoutError(f"the Prefect API at {api_url} did not answer within {timeout:.0f} s")


def stop_process(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM to the child's process group (it was started in its own session), then SIGKILL."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def start_embedded(*, home: Path | None = None, port: int | None = None, api_url: str | None = None,
                   schedules: Mapping[str, str | None] | None = None, timezone: str | None = None,
                   ui: bool = True, poll_seconds: float | None = None, startup_timeout: float = 120.0
                   ) -> EmbeddedReports:
    """Host the report scheduler in this process; returns once the deployments are served.

    home:        the Prefect server's home (default $TANSIQ_HOME/prefect): its SQLite database and log.
    port:        the Prefect API's port on 127.0.0.1 (default: TANSIQ_PREFECT_PORT, 4200).
    api_url:     use this running Prefect API instead of starting one (no server is started).
    schedules:   cron per report kind ({"daily": "15 0 * * *", ...}); default TANSIQ_REPORTS_*_CRON.
                 A kind mapped to None is deployed without a schedule.
    timezone:    the schedules' time zone (default TANSIQ_REPORTS_TIMEZONE, Asia/Riyadh).
    ui:          serve Prefect's UI beside its API.
    poll_seconds: how often the Runner asks for due runs (default: Prefect's, 10 s).
    """
    offline()
    _log_like_tansiq(home)
    server, log_path = None, None
    if api_url is None:
        api_url, server, log_path = start_server(home=home, port=port, ui=ui, startup_timeout=startup_timeout)
    else:
        wait_for_api(api_url, startup_timeout)
    handle = EmbeddedReports(api_url, home, server, log_path)
    handle._thread = threading.Thread(target=_serve, args=(handle, schedules, timezone, poll_seconds),
                                      name="tansiq-report-runner", daemon=True)
    handle._thread.start()
    if not handle._ready.wait(startup_timeout) or handle._error is not None:
        error = handle._error
        handle.stop()
        raise RuntimeError(f"the report deployments could not be served: {error!r}") from error
    return handle


def _serve(handle: EmbeddedReports, schedules: Mapping[str, str | None] | None, timezone: str | None,
           poll_seconds: float | None) -> None:
    from prefect.runner import Runner
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def main() -> None:
        with temporary_settings(updates={PREFECT_API_URL: handle.api_url}):
            runner = Runner(name="tansiq-reports", pause_on_shutdown=False, query_seconds=poll_seconds, limit=4)
            for deployment in await build_deployments(schedules, timezone):
                await runner.aadd_deployment(deployment)
            handle._runner, handle._loop = runner, asyncio.get_running_loop()
            asyncio.get_running_loop().call_soon(handle._ready.set)
            await runner.start()

    try:
        asyncio.run(main())
    except BaseException as exc:
        handle._error = exc
        handle._ready.set()


def serve_forever(**options: Any) -> None:
    """`tansiq reports serve`: run the embedded scheduler until Ctrl+C or SIGTERM."""
    handle = start_embedded(**options)
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print(f"Prefect API {handle.api_url}; Prefect UI at {handle.ui_url}; report and digest deployments served "
          "(Ctrl+C to stop)", flush=True)
    try:
        while not stopping.wait(1) and handle.running:
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        handle.stop()
