"""The production topology on one machine, for tests/test_topology.py (this module holds no tests).

Everything is a real process on a loopback port, started as an operator would start it:

    nginx (deploy/nginx/tansiq.conf, TLS with a self-signed certificate)
      ├── node 1: tansiq serve --workers 2 --no-timers --no-notifications --no-reports
      └── node 2: tansiq serve --workers 1 --no-timers --no-notifications --no-reports
    tansiq timers run                  tansiq notifications run ──► aiosmtpd (tests/smtp_server.py)
    prefect server start (PostgreSQL) ◄── tansiq reports deploy; prefect worker start --type process
    prometheus (Debian's), scraping both nodes' /metrics
    PostgreSQL: a database of its own for Tansiq and one for Prefect, dropped at the end.

Every process gets the environment an operator would put in /etc/tansiq/tansiq.env, writes its output to
a log file under the topology's folder (printed when a test fails), and is stopped at the end (its whole
process group: uvicorn and Prefect start children).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TANSIQ = str(BIN / "tansiq")
PREFECT = str(BIN / "prefect")
PG_ADMIN_URL = os.environ.get("TANSIQ_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, timeout: float, what: str, interval: float = 0.25):
    """Poll `check()` until it returns something truthy; its value, or TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:  # not up yet
            last, value = exc, None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout:.0f} s" + (f" (last: {last!r})" if last else ""))


def _admin(statement: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def database_url(name: str, driver: str = "psycopg") -> str:
    return PG_ADMIN_URL.replace("postgresql+psycopg", f"postgresql+{driver}").rsplit("/", 1)[0] + f"/{name}"


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """A crash: SIGKILL to the whole group, no chance to finish anything."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


@dataclass
class Topology:
    folder: Path
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    services: dict[str, Service] = field(default_factory=dict)
    https_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    node_ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    prefect_port: int = field(default_factory=free_port)
    prometheus_port: int = field(default_factory=free_port)
    smtp_port: int = 0
    databases: list[str] = field(default_factory=list)

    @property
    def tansiq_db(self) -> str:
        return f"tansiq_topology_{self.tag}"

    @property
    def prefect_db(self) -> str:
        return f"prefect_topology_{self.tag}"

    @property
    def public_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def prefect_api(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    def node_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.node_ports[index]}"

    # --- the environment file an operator writes ---------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TANSIQ_", "PREFECT_"))}
        base.update({
            "TANSIQ_HOME": str(self.folder / "home"),
            "TANSIQ_DATABASE_URL": database_url(self.tansiq_db),
            "TANSIQ_SECRET_KEY": "topology-secret-" + "k" * 40,
            "TANSIQ_PUBLIC_URL": self.public_url,
            "TANSIQ_TRUSTED_PROXIES": "127.0.0.1",  # nginx
            "TANSIQ_PREFECT_API_URL": self.prefect_api,
            "TANSIQ_FILES_BACKEND": "database",
            "TANSIQ_LOG_FORMAT": "json",
            "TANSIQ_LOG_LEVEL": "INFO",
            "TANSIQ_TIMER_POLL_SECONDS": "0.5",
            "TANSIQ_SMTP_HOST": "127.0.0.1",
            "TANSIQ_SMTP_PORT": str(self.smtp_port),
            "TANSIQ_SMTP_SENDER": "tansiq@hajj.example",
            "TANSIQ_SMTP_POLL_SECONDS": "0.5",
            "TANSIQ_SMTP_TIMEOUT": "5",
            "TANSIQ_REPORTS_LANGUAGES": "ar,en",
            "PREFECT_API_URL": self.prefect_api,
            "PREFECT_HOME": str(self.folder / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        })
        base.update(extra)
        return base

    # --- processes ---------------------------------------------------------------------------------------

    def start(self, name: str, command: list[str], **extra_env: str) -> Service:
        log = self.folder / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = log.open("ab")
        process = subprocess.Popen(command, env=self.env(**extra_env), stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.folder)
        handle.close()
        service = self.services[name] = Service(name, process, log)
        return service

    def run(self, command: list[str], timeout: float = 180, **extra_env: str) -> str:
        done = subprocess.run(command, env=self.env(**extra_env), capture_output=True, text=True, timeout=timeout,
                              cwd=self.folder, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout + done.stderr

    def wait_http(self, url: str, timeout: float = 60, service: str | None = None, **options) -> None:
        def answers() -> bool:
            if service and not self.services[service].alive():
                raise RuntimeError(f"{service} exited:\n{self.services[service].tail()}")
            return httpx.get(url, timeout=2, **options).status_code == 200
        wait_until(answers, timeout, f"{url} did not answer")

    def create_databases(self) -> None:
        for name in (self.tansiq_db, self.prefect_db):
            _admin(f'CREATE DATABASE "{name}"')
            self.databases.append(name)

    def diagnostics(self) -> str:
        return "\n\n".join(f"=== {s.name} ({'alive' if s.alive() else f'exit {s.process.returncode}'})\n{s.tail()}"
                           for s in self.services.values())

    def close(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop(timeout=15)
        for name in self.databases:
            with contextlib.suppress(Exception):
                _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def topology(folder: Path) -> Iterator[Topology]:
    built = Topology(folder)
    try:
        yield built
    finally:
        built.close()


# --- nginx and prometheus, from the files in deploy/ ------------------------------------------------------

def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "tls" / "cert.pem", folder / "tls" / "key.pem"
    cert.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key
