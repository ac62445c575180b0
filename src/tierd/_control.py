"""Control operations a client asks for over the wire, checked and run on a `Runtime`.

A control frame names an operation and carries its arguments as a map (see
`tierd.messaging._transport.codec`). The arguments come from the network: each one is
checked here before the runtime sees it, and a bad one raises `ValueError`,
which the bridge answers as ``Rejected``. The result is plain msgpack-able
data. Under CURVE only a client key with the ``operate`` role gets here:
the transport refuses the others first (``SEND_OPERATIONS`` in
`tierd.messaging._transport.access` lists the exceptions; none yet).

=========================  ==========================  =================================
operation                  arguments                   result
=========================  ==========================  =================================
``cancel``                 ``id``                      True if a level held the message
``pause``, ``resume``      ``target`` (daemon@level)   True (`UnknownRecipient` if not)
``restart``                ``target`` (daemon@level)   True (`UnknownRecipient` if not)
``dead_letters``           ``level``?, ``limit``?      the newest letters, as dicts
``replay_dead_letters``    ``level``?, ``ids``?        ``{old id: new id}``
``purge_dead_letters``     ``level``?, ``ids``?        how many were forgotten
=========================  ==========================  =================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol

from .errors import UnknownRecipient
from .messaging.message import Address

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .orchestrators._dead_letters import DeadLetter


class LevelLetters(Protocol):
    """One local level, as far as listing its dead letters goes."""

    @property
    def number(self) -> int:
        """The level number."""

    def dead_letter_list(self) -> list[DeadLetter]:
        """Its dead letters, oldest first."""


class Controllable(Protocol):
    """What a control operation runs on: a `tierd.Runtime`."""

    def cancel(self, message_id: str) -> bool:
        """Cancel a queued message; False if no level holds it."""

    def pause(self, target: str | Address) -> bool:
        """Pause a local daemon; False if there is none."""

    def resume(self, target: str | Address) -> bool:
        """Resume a local daemon; False if there is none."""

    def restart(self, target: str | Address) -> bool:
        """Give a local daemon a fresh instance; False if there is none."""

    def levels_for(self, level: int | None) -> Sequence[LevelLetters]:
        """One local level, or all of them."""

    def replay_dead_letters(
        self, level: int | None = None, ids: list[str] | None = None
    ) -> dict[str, str]:
        """Send dead letters again as new messages."""

    def purge_dead_letters(self, level: int | None = None, ids: list[str] | None = None) -> int:
        """Forget dead letters."""


OPERATIONS: Final = (
    "cancel",
    "pause",
    "resume",
    "restart",
    "dead_letters",
    "replay_dead_letters",
    "purge_dead_letters",
)
"""Every control operation a runtime answers."""

DEFAULT_LIST_LIMIT: Final = 100
"""Dead letters listed when the client does not say how many."""
_MAX_IDS: Final = 10_000


def control_operation(runtime: Controllable, operation: str, arguments: dict[str, Any]) -> Any:
    """Check the arguments of ``operation`` and run it on ``runtime``.

    Raises:
        UnknownRecipient: no such daemon or level.
        ValueError: an unknown operation or a bad argument.
    """
    match operation:
        case "cancel":
            return runtime.cancel(_text(arguments, "id"))
        case "pause" | "resume" | "restart":
            target = Address.parse(_text(arguments, "target"))
            act = {"pause": runtime.pause, "resume": runtime.resume, "restart": runtime.restart}
            changed = act[operation](target)
            if not changed:
                raise UnknownRecipient(str(target), f"no local daemon {target} to {operation}")
            return True
        case "dead_letters":
            limit = _int(arguments, "limit", DEFAULT_LIST_LIMIT)
            letters = [
                dict(letter.to_dict(), level=level.number)
                for level in runtime.levels_for(_level(arguments))
                for letter in level.dead_letter_list()
            ]
            letters.sort(key=lambda letter: letter["at"])
            return letters[-limit:] if limit else []
        case "replay_dead_letters":
            return runtime.replay_dead_letters(_level(arguments), _ids(arguments))
        case "purge_dead_letters":
            return runtime.purge_dead_letters(_level(arguments), _ids(arguments))
    raise ValueError(f"unknown control operation {str(operation)[:40]!r}")


def _text(arguments: dict[str, Any], key: str) -> str:
    value = arguments.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= 300:
        raise ValueError(f"control argument {key!r} must be a non-empty string")
    return value


def _int(arguments: dict[str, Any], key: str, default: int) -> int:
    value = arguments.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"control argument {key!r} must be a whole number >= 0")
    return value


def _level(arguments: dict[str, Any]) -> int | None:
    value = arguments.get("level")
    if value is None:
        return None
    return _int(arguments, "level", 0)


def _ids(arguments: dict[str, Any]) -> list[str] | None:
    value = arguments.get("ids")
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > _MAX_IDS:
        raise ValueError(f"control argument 'ids' must be a list of at most {_MAX_IDS} ids")
    return [_text({"id": item}, "id") for item in value]
