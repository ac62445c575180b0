"""Addresses, priorities, ids and the message constructors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tierd.messaging.message import Address, Message, new_id, parse_priority


@pytest.mark.parametrize(
    ("name", "number"),
    [("critical", 1), ("high", 5), ("normal", 10), ("low", 15), ("background", 20), (" HIGH ", 5)],
)
def test_priority_names(name, number):
    """Each priority name maps to its number, case and spaces aside."""
    assert parse_priority(name) == number


@pytest.mark.parametrize("number", [1, 7, 20])
def test_priority_numbers_in_range_pass(number):
    """Whole numbers 1..20 are priorities as they are, also as digit strings."""
    assert parse_priority(number) == number
    assert parse_priority(str(number)) == number


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (0, "out of range"),
        (21, "out of range"),
        ("urgent", "unknown priority 'urgent'"),
        (True, "must be a name or an int"),
        (2.5, "unknown priority 2.5"),
        (None, "unknown priority None"),
    ],
)
def test_bad_priorities_are_named_in_the_error(value, match):
    """A bad priority raises ValueError that names the value."""
    with pytest.raises(ValueError, match=match):
        parse_priority(value)


def test_address_round_trip():
    """An address parses from and prints as daemon@level, and compares by value."""
    address = Address.parse("echo@2")
    assert (address.daemon, address.level, str(address)) == ("echo", 2, "echo@2")
    assert address == Address("echo", 2)
    assert len({address, Address("echo", 2)}) == 1


@pytest.mark.parametrize("text", ["echo", "echo@", "@2", "echo@x", "echo@-1", "", "ec ho @2", 5])
def test_bad_addresses_are_named_in_the_error(text):
    """A malformed address raises ValueError naming it."""
    with pytest.raises(ValueError, match="bad"):
        Address.parse(text)


def test_ids_are_unique_and_uuid_sized():
    """Message ids are 32 hex characters and never repeat."""
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_reply_answers_its_request():
    """A reply swaps sender and recipient and keeps parent, trace and priority."""
    request = Message.request(Address("a", 1), Address("b", 2), {"q": 1}, priority=5, timeout=3)
    reply = request.reply_to({"a": 1})
    assert (reply.sender, reply.recipient) == (request.recipient, request.sender)
    assert (reply.kind, reply.parent_id, reply.trace_id) == ("reply", request.id, request.trace_id)
    assert (reply.priority, reply.status, reply.payload) == (5, "done", {"a": 1})
    assert request.trace_id == request.id


def test_a_forked_child_draws_new_ids():
    """A child process made by fork does not repeat its parent's ids."""
    script = (
        "import os\n"
        "from tierd.messaging.message import new_id\n"
        "parent = new_id()\n"
        "reader, writer = os.pipe()\n"
        "if os.fork() == 0:\n"
        "    os.write(writer, new_id().encode()); os._exit(0)\n"
        "os.wait()\n"
        "print(parent, os.read(reader, 64).decode())\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    parent_id, child_id = run.stdout.split()
    assert parent_id[:16] != child_id[:16]
