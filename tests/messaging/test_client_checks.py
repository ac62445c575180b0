"""`tierd.Client` checks its arguments before it sends anything."""

from __future__ import annotations

import msgpack
import pytest

import tierd


def test_client_refuses_a_bad_timeout_before_sending(silent_router):
    """`Client.request`/`send`/`status` raise ValueError naming `timeout` and send nothing."""
    router, address = silent_router
    with tierd.Client(address) as client:
        for bad in (float("inf"), float("nan"), -1.0, 0, 1e7, True):
            with pytest.raises(ValueError, match=r"^timeout must be a number of seconds"):
                client.request("echo@1", 1, timeout=bad)
            with pytest.raises(ValueError, match=r"^timeout must be a number of seconds"):
                client.send("echo@1", 1, timeout=bad)
            with pytest.raises(ValueError, match=r"^timeout must be a number of seconds"):
                client.status(timeout=bad)
        assert router.poll(200) == 0
    with pytest.raises(ValueError, match=r"^ack_timeout must be"):
        tierd.Client(address, ack_timeout=float("inf"))


def test_a_client_frame_still_reaches_a_silent_router(silent_router):
    """The silent ROUTER the tests above rely on does receive what a client sends."""
    router, address = silent_router
    with tierd.Client(address) as client, pytest.raises(tierd.RequestTimeout):
        client.request("echo@1", 1, timeout=0.2)
    assert router.poll(1000)
    frame = msgpack.unpackb(router.recv_multipart()[-1])
    assert frame["t"] == "msg"
