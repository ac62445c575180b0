"""Who an HTTP request is and what it may do: bearer tokens, each with a role.

``runtime.http_tokens`` lists the tokens the API accepts, like
``runtime.curve_allowed_clients`` lists CURVE keys, with the same two roles:

- ``send``: submit and read processes, send messages and requests, status,
  dead letters listed, live events;
- ``operate``: also every control operation (`tierd._control.ROLES` says which).

With no token configured (allowed on loopback only, `tierd.config` checks
that) every request may do everything, as a loopback ZeroMQ client may. Once
one is configured, every request needs one, in an ``Authorization: Bearer``
header or in the dashboard's cookie. Tokens are compared in constant time
against every configured token and are never logged.

`Tokens` decides and does no I/O beyond reading token files once at start.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..config import HttpToken

Role = Literal["send", "operate"]

OPEN: Final = "operate"
"""The role of every request to an API that has no tokens."""

COOKIE: Final = "tierd_token"
"""The cookie the dashboard's sign-in page sets, holding the token."""


class Tokens:
    """The accepted tokens and their roles.

    Args:
        entries: the ``runtime.http_tokens`` entries; a ``token_file`` is read here.

    Raises:
        ConfigError: a token file cannot be read, or holds no usable token;
            the message names its key, never the token.
    """

    def __init__(self, entries: Sequence[HttpToken]) -> None:
        self._tokens: list[tuple[bytes, Role]] = []
        for index, entry in enumerate(entries):
            token = entry.token if entry.token is not None else _read(entry.token_file, index)
            self._tokens.append((token.encode(), entry.role))

    @property
    def required(self) -> bool:
        """Whether a request must carry a token (any is configured)."""
        return bool(self._tokens)

    def role_of(self, presented: str | None) -> Role | None:
        """The role of a presented token; `OPEN` when none is required; None if refused.

        Every configured token is compared, in constant time, whatever matches,
        so the time taken tells nothing of which one or how much matched.
        """
        if not self._tokens:
            return OPEN
        if not presented:
            return None
        given = presented.encode()
        found: Role | None = None
        for token, role in self._tokens:
            if hmac.compare_digest(token, given) and found is None:
                found = role
        return found


def allows(role: Role, needed: Role) -> bool:
    """Whether ``role`` may do what needs ``needed``: ``operate`` may do everything."""
    return role == "operate" or needed == "send"


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header; None if there is none."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _read(path: str | None, index: int) -> str:
    key = f"runtime.http_tokens[{index}].token_file"
    assert path is not None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(f"{key}: cannot read {path}: {reason}") from None
    if len(token) < 16 or any(not "!" <= c <= "~" for c in token):
        raise ConfigError(
            f"{key}: {path} must hold one token of at least 16 printable characters, no spaces"
        )
    return token
