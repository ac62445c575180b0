"""A real PostgreSQL server for tests and benchmarks: a throwaway cluster on a free loopback port.

`PostgresServer` runs Debian's binaries (``/usr/lib/postgresql/*/bin``; `find_binaries`
installs them with ``scripts/install-postgresql`` when they are missing): ``initdb`` in a
temporary directory, then ``postgres`` listening on 127.0.0.1 only, as an unprivileged user
(the ``postgres`` system user when the tests run as root: root cannot run a server), stopped
by its PID. `PostgresServer.database` makes a fresh, empty database per test.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.processes import ROOT, free_port

SUPERUSER = "tierd"


def find_binaries(*, install: bool = True) -> Path | str:
    """The newest ``/usr/lib/postgresql/*/bin`` holding ``initdb``; or why there is none."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version)
    if not found and install:
        done = subprocess.run(
            [str(ROOT / "scripts" / "install-postgresql")],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            return f"scripts/install-postgresql failed: {(done.stderr or done.stdout).strip()}"
        return find_binaries(install=False)
    if not found:
        return "no PostgreSQL binaries under /usr/lib/postgresql"
    return found[-1].parent


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parent.parent.name.split(".") if part.isdigit())


class PostgresServer:
    """One PostgreSQL cluster, started in a temporary directory; `stop` ends it by its PID.

    Args:
        binaries: the folder of ``initdb`` and ``postgres``.
        durable: keep ``fsync`` on (benchmarks); tests turn it off for speed.
    """

    def __init__(self, binaries: Path, *, durable: bool = False) -> None:
        self.binaries = binaries
        self.root = Path(tempfile.mkdtemp(prefix="tierd-pg-"))
        self.port = free_port()
        self._names = itertools.count(1)
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            pwd.getpwnam(self._user)  # KeyError: the package made no postgres user
            shutil.chown(self.root, self._user)
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")  # fmt: skip
        settings = ["-c", "max_connections=200", "-c", "shared_buffers=64MB"]
        if not durable:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off",
                         "-c", "full_page_writes=off"]  # fmt: skip
        self.log_path = self.root / "postgres.log"
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(binaries / "postgres"), "-D", str(data), "-h", "127.0.0.1",
             "-p", str(self.port), "-k", str(self.root), *settings],
            stdout=log, stderr=subprocess.STDOUT, user=self._user,
        )  # fmt: skip
        log.close()
        self._wait_ready()

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` maintenance database."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.binaries / tool), *args],
            capture_output=True, text=True, timeout=120, check=False, user=self._user,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr.strip() or done.stdout.strip()}")

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_path.read_text()[-2000:]}")
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            else:
                return

    def execute(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement in the maintenance database (autocommit); its rows, if any."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            cursor = db.execute(sql, params or None)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def database(self) -> str:
        """A new, empty database; its URL."""
        name = f"t{next(self._names)}"
        self.execute(f"CREATE DATABASE {name}")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def query(self, url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement in the database at ``url``; its rows."""
        import psycopg

        with psycopg.connect(url, autocommit=True) as db:
            cursor = db.execute(sql, params or None)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def stop(self) -> None:
        """Stop the server by its PID (a fast shutdown), then delete its directory."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)
