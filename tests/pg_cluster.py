"""A private PostgreSQL cluster for fault tests: made in a temporary folder, on a free loopback port,
stopped and removed at the end. Tests stop and start *this* cluster, never the machine's shared one.

    with PrivateCluster() as cluster:
        url = cluster.create_database("tansiq")
        ...
        cluster.stop(mode="immediate")   # a crash of the server processes, as far as clients can tell
        cluster.start()

`live_server(app)` serves an ASGI app with uvicorn on a free loopback port, in a thread, for tests
and the soak script that need real HTTP (concurrent clients, connections the server really drops).

PostgreSQL refuses to run as root: when we are root, every server command runs as the `postgres`
operating-system user (`runuser -u postgres --`), and the folder is given to that user.

Speed without lying about durability: `fsync=off` only skips flushing the operating system's cache
to disk, which matters if the *machine* crashes. An immediate stop kills the server processes, not
the kernel, so every commit that was acknowledged is still in the cache and in the WAL: nothing a
client was told is committed can be lost by it. `synchronous_commit` stays on for that reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import create_engine, text

PG_BIN = Path(os.environ.get("TANSIQ_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"


def available() -> str | None:
    """None when a private cluster can be made here; else why not (for a skip message)."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        return f"no PostgreSQL server binaries in {PG_BIN}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root but there is no {OS_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root but runuser is not installed"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ClusterError(RuntimeError):
    pass


class PrivateCluster:
    """One throwaway cluster: `start()` makes it on first use, `stop()` / `start()` cycle it,
    `destroy()` (or leaving the `with` block) stops it and removes its folder."""

    def __init__(self, *, port: int | None = None, settings: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tansiq-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "log_min_messages": "warning",
            **(settings or {}),
        }
        self._initialised = False
        self.starts = 0
        self.stops = 0

    # --- running server commands ----------------------------------------------------------------

    def _as_server_user(self, *command: str) -> list[str]:
        return ["runuser", "-u", OS_USER, "--", *command] if os.geteuid() == 0 else list(command)

    def _run(self, *command: str, timeout: float = 60) -> None:
        done = subprocess.run(self._as_server_user(*command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise ClusterError(f"{Path(command[0]).name} failed ({done.returncode}): {done.stdout.strip()[-2000:]}"
                               f"\n--- server log ---\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _initdb(self) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam(OS_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync", "--no-instructions", timeout=120)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# tansiq private test cluster\n")
            conf.writelines(f"{name} = {value}\n" for name, value in self.settings.items())
        self._initialised = True

    # --- the life cycle -------------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        if not self._initialised:
            self._initdb()
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(timeout)),
                  "start", timeout=timeout + 10)
        self.starts += 1
        self.wait_ready(timeout)

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """`immediate` kills the server without a checkpoint (crash recovery runs at the next start)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", str(int(timeout)), "stop",
                  timeout=timeout + 10)
        self.stops += 1

    def running(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
                try:
                    with engine.connect() as connection:
                        connection.execute(text("SELECT 1"))
                        return
                finally:
                    engine.dispose()
            except Exception as exc:  # starting up, in recovery: try again
                last = exc
                time.sleep(0.1)
        raise ClusterError(f"the private cluster did not accept connections in {timeout} s: {last}")

    def destroy(self) -> None:
        if self._initialised and (self.data / "postmaster.pid").exists():
            try:
                self.stop(mode="immediate", timeout=30)
            except (ClusterError, subprocess.TimeoutExpired):
                self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        """Last resort when pg_ctl cannot stop it: SIGKILL the postmaster by the pid it wrote."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, 9)
        except (OSError, ValueError, IndexError):
            pass

    # --- databases --------------------------------------------------------------------------------

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def __enter__(self) -> PrivateCluster:
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.destroy()


@contextmanager
def live_server(app: Any, *, limit_concurrency: int = 128) -> Iterator[str]:
    """`app` behind uvicorn on 127.0.0.1 and a free port, in a daemon thread; yields the base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            limit_concurrency=limit_concurrency, timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise ClusterError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
