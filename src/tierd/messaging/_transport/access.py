"""Who a connection is and what it may do: CURVE client keys, each with a role.

Under CURVE a connection is its client's public key: the ZAP handshake
proves it, and libzmq stamps it on every frame as the ``User-Id`` property
(pyzmq's authenticator makes it the key's Z85 text). `Access` holds the keys
``runtime.curve_allowed_clients`` lists and the role of each:

- ``send``: messages, requests, status (and processes, when they travel here);
- ``operate``: also every control operation (cancel, pause, resume, restart,
  dead letters listed, replayed or purged, and process control).

Without CURVE (loopback, or ``insecure = true``) there is no key to tell
connections apart by, so every connection may do everything, as before.

`Access` decides and does no I/O: the ZAP authenticator asks `allowed`
(`callback`, in its own thread: the table is read-only once loaded), and the inbound
side asks `may` for each control frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import zmq.auth

from ...errors import ConfigError
from .security import load_public_key

if TYPE_CHECKING:
    from collections.abc import Iterable

SEND: Final = "send"
"""Messages, requests, status: what every listed key may do."""
OPERATE: Final = "operate"
"""Also control operations."""
ROLES: Final = (SEND, OPERATE)

SEND_OPERATIONS: Final[frozenset[str]] = frozenset()
"""Control operations a ``send`` key may run; every other one needs ``operate``.

None yet: every control operation today changes or reveals what others sent.
This is the hook for the processes layer: ``submit``, ``get`` and ``list``
join this set when they travel as control frames; process control (cancel,
pause, resume, retry) stays out of it and so needs ``operate``.
"""


class AllowedClientSettings(Protocol):
    """One entry of ``runtime.curve_allowed_clients`` (`tierd.config.AllowedClient` is one)."""

    @property
    def key(self) -> str:
        """A ``.key`` public key file, or a directory of them."""

    @property
    def role(self) -> str:
        """``send`` or ``operate``."""


class Access:
    """The CURVE client keys allowed in, and the role of each; or no CURVE at all.

    Args:
        roles: Z85 public key → role; None when the endpoint has no CURVE.
    """

    def __init__(self, roles: dict[str, str] | None = None) -> None:
        self._roles = roles
        self.forbidden = 0
        """Control frames refused for want of the ``operate`` role."""

    @classmethod
    def load(
        cls,
        entries: str | Iterable[AllowedClientSettings],
        key: str = "runtime.curve_allowed_clients",
    ) -> Access:
        """Read the keys an endpoint lets in.

        Args:
            entries: a directory of ``.key`` files (the form before roles: each
                key gets ``operate``, as every client could do everything then),
                or entries of a key file or directory and its role.
            key: the config key that named them, for errors.

        Raises:
            ConfigError: a file or directory cannot be read, or a role is
                unknown; names ``key`` and the entry.
        """
        if isinstance(entries, str):
            return cls(_read_keys(entries, OPERATE, key))
        roles: dict[str, str] = {}
        for index, entry in enumerate(entries):
            where = f"{key}[{index}]"
            if entry.role not in ROLES:
                raise ConfigError(f"{where}.role: {entry.role!r} is not one of {', '.join(ROLES)}")
            for public, role in _read_keys(entry.key, entry.role, f"{where}.key").items():
                if roles.get(public) != OPERATE:  # a key listed twice keeps its strongest role
                    roles[public] = role
        return cls(roles)

    @property
    def curve(self) -> bool:
        """Whether connections are told apart by their CURVE keys."""
        return self._roles is not None

    def callback(self, domain: str, public_key: bytes) -> bool:
        """Whether a client with this Z85 public key may connect.

        The credentials provider pyzmq's ZAP authenticator calls, in its own thread.
        """
        return self._roles is not None and public_key.decode("ascii", "replace") in self._roles

    def role(self, user_id: str | None) -> str:
        """The role of the connection whose frames carry ``user_id`` (its Z85 key)."""
        if self._roles is None:
            return OPERATE  # no CURVE: nothing tells connections apart
        return self._roles.get(user_id or "", SEND)

    def may(self, user_id: str | None, operation: str) -> bool:
        """Whether the connection ``user_id`` may run the control ``operation``."""
        return operation in SEND_OPERATIONS or self.role(user_id) == OPERATE


def _read_keys(path: str, role: str, key: str) -> dict[str, str]:
    """Every public key in a ``.key`` file or a directory of them, with ``role``."""
    location = Path(path)
    if location.is_dir():
        try:
            found = zmq.auth.load_certificates(str(location))
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"{key}: cannot read the public keys in {location}: {error}"
            ) from None
        return {public.decode("ascii"): role for public in found}
    if not location.exists():
        raise ConfigError(f"{key}: {location} is neither a .key file nor a directory of them")
    return {load_public_key(location, key).decode("ascii"): role}
