"""Running ``tierd`` as a subprocess in tests, bounded in time, and reading what it prints."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Tierd:
    """A ``tierd`` subprocess whose output lines are collected by reader threads.

    Args:
        args: the arguments after ``tierd``.
        cwd: its working directory (where a relative ``data_dir`` is); the project's by default.
    """

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tierd.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd or ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, "out"), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, "err"), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str] | None, name: str) -> None:
        assert stream is not None
        for line in stream:
            self._lines.put((name, line.rstrip("\n")))
        self._lines.put((name, None))

    def _pump(self, timeout: float) -> bool:
        """Move one line into stdout/stderr; False when nothing came within ``timeout``."""
        try:
            name, line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return False
        if line is not None:
            (self.stdout if name == "out" else self.stderr).append(line)
        return True

    def wait_for_line(
        self, pattern: str, stream: str = "out", timeout: float = 15.0
    ) -> re.Match[str]:
        """Wait until a line of ``stream`` matches ``pattern``; return the match."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            lines = self.stdout if stream == "out" else self.stderr
            for line in lines[seen:]:
                match = compiled.search(line)
                if match:
                    return match
            seen = len(lines)
            left = deadline - time.monotonic()
            if left <= 0 or (self.process.poll() is not None and self._lines.empty()):
                raise AssertionError(
                    f"no line matching {pattern!r} on std{stream}; "
                    f"stdout={self.stdout!r} stderr={self.stderr!r}"
                )
            self._pump(min(left, 0.5))

    def metrics_address(self) -> str:
        """The metrics ``host:port`` the banner announces."""
        return self.wait_for_line(r"metrics:\s+http://(\S+)/metrics").group(1)

    def finish(self, sig: int | None = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` (if any), wait for the exit code, and collect every line left."""
        if sig is not None and self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
        self._close()
        while self._pump(0):
            pass
        return code

    def _close(self) -> None:
        for reader in self._readers:
            reader.join(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def kill(self) -> None:
        """Kill it if it still runs, and close its pipes (a fixture's cleanup)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self._close()


TIERD = Path(sys.executable).with_name("tierd")
"""The ``tierd`` console script installed beside this Python, as a user runs it."""


def run_tierd(
    *args: str, cwd: Path | None = None, stdin: str | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``tierd`` to completion; its exit code, stdout and stderr.

    Unlike ``python -m tierd.cli``, the console script does not put the current
    directory on ``sys.path``: it imports what a user's shell would.
    """
    return subprocess.run(
        [str(TIERD), *args], cwd=cwd or ROOT, input=stdin if stdin is not None else "",
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
