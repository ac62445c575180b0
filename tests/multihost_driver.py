"""The traffic side of the multi-host test; runs inside network namespace A.

Usage: ``python -m tests.multihost_driver SETTINGS_JSON``. It talks to
runtime A (level 1) in its own namespace, whose peer B (level 2) lives in
namespace B, takes A's end of the veth link down for a few seconds while
notifications and requests flow, brings it back, and prints one JSON object
with what it saw. The test in the root namespace judges it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import tierd
from tests.network import wait_ready
from tierd.testing import wait_until


def _peer_up(client: tierd.Client) -> bool:
    return bool(client.status()["peers"][0]["up"])


def _outage(
    client: tierd.Client,
    settings: dict[str, Any],
    outcome: dict[str, Any],
    patient: threading.Thread,
) -> None:
    """Take the link down, make requests that expire meanwhile, bring it back."""
    subprocess.run(["ip", "link", "set", settings["veth"], "down"], check=True)
    down_at = time.monotonic()
    patient.start()
    for n in range(3):  # each one's timeout passes while the link is down
        try:
            client.request("echo@2", n, timeout=0.5)
            outcome["timeouts"].append("answered")
        except tierd.RequestTimeout:
            outcome["timeouts"].append("RequestTimeout")
    wait_until(lambda: not _peer_up(client), timeout=10)
    outcome["seen_down_after"] = round(time.monotonic() - down_at, 2)
    time.sleep(max(0.0, settings["outage"] - (time.monotonic() - down_at)))  # the outage itself
    subprocess.run(["ip", "link", "set", settings["veth"], "up"], check=True)
    wait_until(lambda: _peer_up(client), timeout=30)
    outcome["seen_up_after"] = round(time.monotonic() - down_at, 2)


def main(settings: dict[str, Any]) -> dict[str, Any]:
    """Run the scenario; return what happened."""
    keys = {"server_key": settings["server_key"], "client_key": settings["client_key"]}
    address = settings["endpoint"]
    wait_ready(address, "relay@1", timeout=30, **keys)
    accepted: list[int] = []
    stop = threading.Event()

    def notify() -> None:
        with tierd.Client(address, **keys) as sender:
            n = 0
            while not stop.is_set():
                sender.send("recorder@2", n)  # returns once runtime A accepted it
                accepted.append(n)
                n += 1
                stop.wait(0.02)

    late: dict[str, Any] = {}

    def patient_request() -> None:
        with tierd.Client(address, **keys) as patient:
            try:
                late["reply"] = patient.request("relay@1", "patient", timeout=25)
            except tierd.TierdError as error:
                late["error"] = repr(error)

    notifier = threading.Thread(target=notify)
    notifier.start()
    outcome: dict[str, Any] = {"timeouts": [], "before": [], "after": None}
    with tierd.Client(address, **keys) as client:
        outcome["before"] = [client.request("relay@1", n, timeout=5) for n in range(3)]
        patient = threading.Thread(target=patient_request)
        _outage(client, settings, outcome, patient)
        time.sleep(0.5)  # let traffic flow over the restored link for a moment
        stop.set()
        notifier.join()
        patient.join()
        wanted = sorted(accepted)
        wait_until(
            lambda: sorted(client.request("recorder@2", {"op": "dump"}, timeout=5)) == wanted,
            timeout=30,
        )
        outcome["after"] = client.request("relay@1", "after", timeout=5)
        outcome["delivered"] = client.request("recorder@2", {"op": "dump"}, timeout=5)
    outcome["accepted"] = accepted
    outcome["patient"] = late
    return outcome


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
