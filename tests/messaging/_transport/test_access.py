"""Access: which CURVE keys get in, with which role, and what each role may run."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

import tierd
from tierd.messaging._transport.access import OPERATE, SEND, SEND_OPERATIONS, Access
from tierd.messaging._transport.security import generate_key_pair


@dataclasses.dataclass(frozen=True)
class Entry:
    key: str
    role: str = SEND


@pytest.fixture
def keys(tmp_path):
    """Public key files for an operator and two senders, the senders' also in one directory."""
    made = {name: generate_key_pair(tmp_path / name, name)[0] for name in ("ops", "app", "bot")}
    senders = tmp_path / "senders"
    senders.mkdir()
    for name in ("app", "bot"):
        shutil.copy(made[name], senders)
    return {"senders": senders, **made}


def z85(path) -> str:
    return path.read_text().split('public-key = "')[1].split('"')[0]


def test_without_curve_every_connection_may_do_everything():
    """No CURVE: nothing tells connections apart, so every operation is allowed (loopback)."""
    access = Access()
    assert not access.curve
    assert access.role(None) == OPERATE
    assert access.may(None, "purge_dead_letters")


def test_a_directory_of_keys_the_form_before_roles_gives_each_key_operate(keys):
    """Old configs keep working: every key of a plain directory may operate, as it could."""
    access = Access.load(str(keys["senders"]))
    assert access.role(z85(keys["app"])) == OPERATE
    assert access.callback("*", z85(keys["bot"]).encode())
    assert not access.callback("*", z85(keys["ops"]).encode())


def test_listed_keys_carry_their_role_and_only_operate_runs_control_operations(keys):
    """A send key may not cancel or purge; an operate key may; an unlisted key cannot connect."""
    access = Access.load([Entry(str(keys["ops"]), OPERATE), Entry(str(keys["senders"]))])
    ops, app = z85(keys["ops"]), z85(keys["app"])
    assert access.curve
    assert (access.role(ops), access.role(app)) == (OPERATE, SEND)
    for operation in ("cancel", "pause", "resume", "restart", "dead_letters", "purge_dead_letters"):
        assert operation not in SEND_OPERATIONS
        assert access.may(ops, operation)
        assert not access.may(app, operation)
    assert not access.callback("*", b"not-a-listed-key-at-all-000000000000000")


def test_a_key_listed_twice_keeps_its_strongest_role(keys):
    """Listing the operator's key again among the senders does not take operate away."""
    shutil.copy(keys["ops"], keys["senders"])
    access = Access.load([Entry(str(keys["ops"]), OPERATE), Entry(str(keys["senders"]))])
    assert access.role(z85(keys["ops"])) == OPERATE


def test_a_bad_entry_is_refused_naming_its_key(keys, tmp_path):
    """An unknown role or a missing key file names the entry in curve_allowed_clients."""
    with pytest.raises(tierd.ConfigError, match=r"curve_allowed_clients\[0\]\.role: 'admin'"):
        Access.load([Entry(str(keys["ops"]), "admin")])
    missing = str(tmp_path / "nope.key")
    with pytest.raises(tierd.ConfigError, match=r"curve_allowed_clients\[1\]\.key: .*nope\.key"):
        Access.load([Entry(str(keys["ops"])), Entry(missing)])
