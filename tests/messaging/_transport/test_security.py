"""CURVE: who may connect, and the refusal to listen openly beyond loopback."""

from __future__ import annotations

import asyncio
import shutil

import pytest

import tierd
from tests.network import FAST_PEER, echo_level, endpoint, network_config
from tierd.config import parse_config
from tierd.messaging._transport.security import generate_key_pair
from tierd.testing import runtime_from_dict


@pytest.fixture
def keys(tmp_path):
    """Key pairs for a server, a peer runtime, a friend and a stranger; the allowed keys' dir."""
    made = {
        name: generate_key_pair(tmp_path / name, name)
        for name in ("server", "peer", "friend", "stranger")
    }
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    for name in ("friend", "peer"):
        shutil.copy(made[name][0], allowed)
    return {"allowed": allowed, **made}


def test_only_clients_with_an_allowed_key_get_in(keys, make_runtime, make_client):
    """Under CURVE an allowed client is served; a stranger's key or no key at all sends nothing."""
    address = endpoint()
    make_runtime(network_config(
        address, echo_level(1),
        curve_secret_key=str(keys["server"][1]), curve_allowed_clients=str(keys["allowed"]),
    ))  # fmt: skip
    server_key = keys["server"][0]
    friend = make_client(address, server_key=server_key, client_key=keys["friend"][1])
    assert friend.request("echo@1", "hi", timeout=5) == "hi"
    stranger = make_client(
        address, server_key=server_key, client_key=keys["stranger"][1], ack_timeout=0.5
    )
    with pytest.raises(tierd.RequestTimeout, match="curve_allowed_clients"):
        stranger.send("recorder@1", "sneaky")
    with pytest.raises(tierd.RequestTimeout):
        stranger.request("echo@1", "sneaky", timeout=0.5)
    in_the_clear = make_client(address, ack_timeout=0.5)
    with pytest.raises(tierd.RequestTimeout):
        in_the_clear.send("recorder@1", "sneaky")
    assert friend.request("recorder@1", {"op": "count"}, timeout=5) == 0


def test_peers_talk_over_curve(keys, make_runtime):
    """A runtime reaches a peer's levels through CURVE with its own key pair."""
    back_address = endpoint()
    make_runtime(network_config(
        back_address, echo_level(2), name="back",
        curve_secret_key=str(keys["server"][1]), curve_allowed_clients=str(keys["allowed"]),
    ))  # fmt: skip
    peer = {"endpoint": back_address, "levels": [2], "server_key": str(keys["server"][0])}
    front = make_runtime(network_config(
        "", echo_level(1), name="front", peers=[{**peer, **FAST_PEER}],
        curve_secret_key=str(keys["peer"][1]), curve_allowed_clients=str(keys["allowed"]),
    ))  # fmt: skip
    assert front.request("echo@2", "through curve", timeout=5) == "through curve"


def test_binding_beyond_loopback_needs_curve_or_insecure():
    """A non-loopback endpoint without CURVE keys is refused unless insecure = true says so."""
    levels = [{"level": 1, "daemons": [{"id": "e", "class": "tierd.actors.builtin:Echo"}]}]
    with pytest.raises(tierd.ConfigError, match=r"not loopback.*insecure = true"):
        parse_config({"runtime": {"endpoint": "tcp://0.0.0.0:5555"}, "levels": levels})
    parse_config(
        {"runtime": {"endpoint": "tcp://0.0.0.0:5555", "insecure": True}, "levels": levels}
    )
    with pytest.raises(tierd.ConfigError, match="server_key"):
        parse_config(
            {"levels": levels, "peers": [{"endpoint": "tcp://10.1.2.3:5555", "levels": [2]}]}
        )
    with pytest.raises(tierd.ConfigError, match="both curve_secret_key"):
        parse_config({"runtime": {"curve_secret_key": "x.key_secret"}, "levels": levels})


def test_a_missing_key_file_fails_the_start_clearly(tmp_path, keys):
    """A key pair file that cannot be read stops the start with ConfigError naming the key."""
    runtime = runtime_from_dict(network_config(
        endpoint(), echo_level(1),
        curve_secret_key=str(tmp_path / "missing.key_secret"),
        curve_allowed_clients=str(keys["allowed"]),
    ))  # fmt: skip
    with pytest.raises(tierd.ConfigError, match=r"runtime\.curve_secret_key"):
        runtime.start()


def test_a_send_key_sends_and_an_operate_key_also_operates(keys, make_runtime, make_client):
    """Roles from the config: the send key's purge is refused and counted, the operator's runs."""
    address = endpoint()
    runtime = make_runtime(network_config(
        address, echo_level(1),
        curve_secret_key=str(keys["server"][1]),
        curve_allowed_clients=[
            {"key": str(keys["friend"][0]), "role": "send"},
            {"key": str(keys["peer"][0]), "role": "operate"},
        ],
    ))  # fmt: skip
    server_key = keys["server"][0]
    sender = make_client(address, server_key=server_key, client_key=keys["friend"][1])
    operator = make_client(address, server_key=server_key, client_key=keys["peer"][1])
    assert sender.request("echo@1", "hi", timeout=5) == "hi"
    assert sender.status()["levels"]
    with pytest.raises(tierd.Rejected, match="'operate' role"):
        sender.purge_dead_letters()
    with pytest.raises(tierd.Rejected, match="'operate' role"):
        sender.pause("echo@1")
    assert operator.purge_dead_letters() == 0
    operator.pause("echo@1")
    assert runtime.status()["levels"][0]["daemons"][0]["paused"]
    assert runtime.network_statistics().rejected_frames == {"forbidden": 2}


def test_allowed_clients_with_a_bad_role_are_refused_naming_the_key():
    """A role other than send or operate is a config error naming the entry."""
    levels = [{"level": 1, "daemons": [{"id": "e", "class": "tierd.actors.builtin:Echo"}]}]
    runtime = {
        "curve_secret_key": "x.key_secret",
        "curve_allowed_clients": [{"key": "ops.key", "role": "admin"}],
    }
    with pytest.raises(tierd.ConfigError, match=r"curve_allowed_clients.*role"):
        parse_config({"runtime": runtime, "levels": levels})


def test_the_async_client_speaks_curve_like_the_client(keys, make_runtime):
    """AsyncClient connects with the same key arguments; a stranger gets only silence."""
    address = endpoint()
    make_runtime(network_config(
        address, echo_level(1),
        curve_secret_key=str(keys["server"][1]), curve_allowed_clients=str(keys["allowed"]),
    ))  # fmt: skip

    async def ask(client_key: object, timeout: float) -> object:
        async with tierd.AsyncClient(
            address, server_key=keys["server"][0], client_key=client_key
        ) as client:
            return await client.request("echo@1", "hi", timeout=timeout)

    assert asyncio.run(ask(keys["friend"][1], 5)) == "hi"
    with pytest.raises(tierd.RequestTimeout, match="curve_allowed_clients"):
        asyncio.run(ask(keys["stranger"][1], 0.5))
