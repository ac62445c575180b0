"""Fault: the disk under a durable level's journal fills up while a client sends.

The fault: the journal lives on a 4 MiB tmpfs the test mounts (root only);
once the runtime runs, a filler file takes every free byte, so SQLite's
commits fail with "database or disk is full". The load: 400 notifications
with 16 KiB payloads from one `tierd.Client`, one at a time, to an `IdLog`
daemon on the durable level. Then the filler is removed and the client sends
100 more, which must all get in.

Refused means not kept, exactly: every id ``send`` returned is handled once;
no id whose ``send`` raised `Rejected` is ever handled; at least one send was
refused (the fault happened) and every refusal is counted in the level's
``rejected{journal_failed}``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

import tierd
from tests.network import echo_level, endpoint
from tests.topology import daemon, level
from tierd.testing import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounts a tmpfs"),
]

FULL_SENDS = 400
AFTER_SENDS = 100
PAD = "x" * 16_384


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, mounted for the test and unmounted after it."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount_point)], check=True
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk`` with one file; return it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65_536, 512, 1):  # big steps, then the last few bytes
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def handled_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line.split()[0] for line in path.read_text().split("\n")[:-1]]


@pytest.mark.timeout(120)
def test_a_send_refused_for_a_full_disk_is_never_handled(tmp_path, small_disk, make_runtime):
    """Disk full on a durable level: refused ids are never handled, accepted ones all are."""
    address = endpoint()
    log = tmp_path / "handled.txt"
    runtime = make_runtime(
        {
            "runtime": {"name": "full", "endpoint": address, "data_dir": str(small_disk)},
            "levels": [
                level(1, daemon("log", "IdLog", options={"path": str(log)}), durable=True),
                echo_level(2),
            ],
        }
    )
    accepted: list[str] = []
    refused = 0
    reasons: set[str] = set()
    with tierd.Client(address) as client:
        accepted.append(client.send("log@1", {"pad": PAD}))  # the journal works
        filler = fill(small_disk)
        for n in range(FULL_SENDS):
            try:
                accepted.append(client.send("log@1", {"n": n, "pad": PAD}))
            except tierd.Rejected as error:
                reasons.add(str(error).split(": ", 1)[-1])
                refused += 1
        filler.unlink()
        accepted.extend(client.send("log@1", {"n": n}) for n in range(AFTER_SENDS))
    wait_until(lambda: set(accepted) <= set(handled_ids(log)), timeout=60)
    handled = handled_ids(log)
    stats = runtime.statistics()[0]
    print(
        f"\n{1 + FULL_SENDS + AFTER_SENDS} sent, {len(accepted)} accepted, {refused} refused, "
        f"{len(handled)} handled, rejected{{journal_failed}} = {stats.rejected}"
    )
    assert refused, "the full disk refused nothing: the fault did not happen"
    assert reasons == {"database or disk is full"}
    assert len(accepted) + refused == 1 + FULL_SENDS + AFTER_SENDS
    # Exactly the accepted ids, each once: so no refused id was handled.
    assert sorted(handled) == sorted(accepted), "a refused message was delivered, or one lost"
    assert stats.rejected.get("journal_failed") == refused
