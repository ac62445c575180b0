"""Live events on the wire, without I/O: frames, strict decoding, where to subscribe.

An event crosses the runtime's PUB socket (``runtime.events``) as two frames,
``[topic, msgpack map]``, so that a SUB socket's prefix filter works on the
topic (``process.``, ``process.import_class.``, ``daemon.2.``...). The map is
the event itself: ``{type, topic, at, seq, ...}`` (DESIGN §12; ``seq`` on
process events only). The publisher and both clients share this module.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgpack

MAX_EVENT_BYTES: Final = 1 << 20
"""The largest event frame a subscriber decodes; a larger one is skipped."""

_TCP: Final = re.compile(r"^tcp://(?P<host>\[[^\]]+\]|[^:/]+):(?P<port>\d+)$")
_ANY_HOST: Final = frozenset({"*", "0.0.0.0", "[::]", "[::0]"})  # noqa: S104 - names, not binds


def encode_event(topic: str, event: Any) -> list[bytes]:
    """The two frames of one event.

    Raises:
        TypeError: the event is not msgpack-able (a value that is not plain data).
    """
    return [topic.encode(), msgpack.packb(event, use_bin_type=True)]


def decode_event(frames: list[bytes], max_bytes: int = MAX_EVENT_BYTES) -> dict[str, Any] | None:
    """The event in two frames from the network, or None if they are not one.

    Every frame is untrusted: the wrong number of frames, an oversized or
    malformed map, a map without a string ``type``, or a topic that is not
    the map's ``topic``, is refused (None) and never raises.
    """
    if len(frames) != 2 or len(frames[1]) > max_bytes:  # [topic, map]
        return None
    topic, data = frames
    try:
        event = msgpack.unpackb(data, raw=False, strict_map_key=True)
        name = topic.decode()
    except (ValueError, TypeError, msgpack.UnpackException, UnicodeDecodeError):
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return None
    if event.get("topic") != name:
        return None
    return event


def subscription_prefixes(prefixes: tuple[str, ...]) -> list[bytes]:
    """The SUB filters for ``prefixes`` (none: every event).

    Raises:
        ValueError: a prefix is not a string.
    """
    for prefix in prefixes:
        if not isinstance(prefix, str):
            raise ValueError(f"a topic prefix is a string like 'process.', not {prefix!r}")
    return [prefix.encode() for prefix in prefixes] or [b""]


def subscriber_endpoint(events: str, runtime_endpoint: str) -> str:
    """Where a client connects to follow a runtime's events.

    Args:
        events: the events endpoint the runtime reports (its bound address).
        runtime_endpoint: the endpoint the client reached the runtime at.

    A wildcard host (``tcp://0.0.0.0:5556``, ``tcp://*:5556``) is replaced by
    the host of ``runtime_endpoint``: the address the client knows works.
    """
    match = _TCP.match(events)
    reached = _TCP.match(runtime_endpoint)
    if match is None or reached is None or match.group("host") not in _ANY_HOST:
        return events
    return f"tcp://{reached.group('host')}:{match.group('port')}"
