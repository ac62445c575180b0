"""`tierd.AsyncClient` against a runtime: many calls on one connection, the errors of `Client`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import tierd
from tests import daemons
from tests.network import echo_level, endpoint, network_config
from tests.topology import daemon, level

LEVEL_2 = level(
    2, daemon("echo", "Echo"), daemon("sleeper", "Sleeper"), daemon("crasher", "Crasher"),
    daemon("gate", "Gate", options={"name": "async"}),
)  # fmt: skip


def _run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def test_a_thousand_concurrent_requests_on_one_connection_are_all_correlated(make_runtime):
    """1,000 tasks await their own requests at once; each gets exactly its own reply."""
    address = endpoint()
    make_runtime(network_config(address, LEVEL_2))

    async def main() -> tuple[list[Any], int]:
        async with tierd.AsyncClient(address) as client:
            replies = await asyncio.gather(
                *(client.request("echo@2", {"n": n}, timeout=20) for n in range(1000))
            )
            return list(replies), client.in_flight

    replies, left = _run(main())
    assert replies == [{"n": n} for n in range(1000)]
    assert left == 0


def test_send_status_control_and_send_many_have_the_client_s_results(make_runtime):
    """The same names and results as Client: an id, a status, control answers, a list of ids."""
    address = endpoint()
    make_runtime(network_config(address, echo_level(1), LEVEL_2))

    async def main() -> tuple[Any, ...]:
        async with tierd.AsyncClient(address) as client:
            one = await client.send("recorder@1", "first")
            many = await client.send_many((("recorder@1", n) for n in range(300)), window=16)
            status = await client.status()
            cancelled = await client.cancel("no-such-id")
            await client.pause("echo@2")
            await client.resume("echo@2")
            # Accepted means queued in order: a dump behind them sees every one.
            dump = await client.request("recorder@1", {"op": "dump"})
            return one, many, status, cancelled, dump

    one, many, status, cancelled, dump = _run(main())
    assert isinstance(one, str)
    assert len(set(many)) == 300
    assert [entry["level"] for entry in status["levels"]] == [1, 2]
    assert cancelled is False
    assert dump == ["first", *range(300)]


def test_errors_and_timeouts_have_the_same_types_as_the_client_s(make_runtime):
    """RemoteError, UnknownRecipient, BatchRejected and RequestTimeout, as Client raises them."""
    address = endpoint()
    make_runtime(network_config(address, echo_level(1), LEVEL_2))

    async def main() -> list[BaseException]:
        caught: list[BaseException] = []
        async with tierd.AsyncClient(address) as client:
            for call in (
                client.request("crasher@2", None, timeout=5),
                client.send("nope@1", "x"),
                client.request("sleeper@2", {"seconds": 1}, timeout=0.2),
                client.send_many([("recorder@1", 1), ("nope@1", 2)]),
                client.pause("nope@2"),
            ):
                try:
                    await call
                except tierd.TierdError as error:
                    caught.append(error)
            assert client.in_flight == 0
        return caught

    caught = _run(main())
    assert [type(error) for error in caught] == [
        tierd.RemoteError, tierd.UnknownRecipient, tierd.RequestTimeout, tierd.BatchRejected,
        tierd.UnknownRecipient,
    ]  # fmt: skip
    assert "has it" in str(caught[2])  # the runtime answered: a slow handler, not no runtime
    assert [item.index for item in caught[3].refused] == [1]


def test_a_cancelled_task_leaves_no_pending_entry(make_runtime, gates):
    """Cancelling a task awaiting a request removes its correlation entry; others go on."""
    address = endpoint()
    make_runtime(network_config(address, LEVEL_2))
    entered, release = daemons.gate("async")

    async def main() -> tuple[int, int, Any]:
        async with tierd.AsyncClient(address) as client:
            stuck = asyncio.create_task(client.request("gate@2", "held", timeout=20))
            assert await asyncio.to_thread(entered.wait, 10)
            during = client.in_flight
            stuck.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stuck
            after = client.in_flight
            release.set()
            return during, after, await client.request("echo@2", "next", timeout=5)

    during, after, reply = _run(main())
    assert (during, after, reply) == (1, 0, "next")


def test_no_runtime_is_a_timeout_that_says_so():
    """With nothing at the endpoint, a request times out and says nothing answered."""

    async def main() -> None:
        async with tierd.AsyncClient(endpoint()) as client:
            await client.request("echo@2", 1, timeout=0.3)

    with pytest.raises(tierd.RequestTimeout, match="no answer at all"):
        _run(main())
