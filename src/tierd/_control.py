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
``process_submit``         ``kind``, ``params``?,      the process id
                           ``priority``?, ``key``?,
                           ``correlation``?
``process_get``            ``id``                      the status document
``process_list``           ``status``?, ``kind``?,     ``{"items": [...], "cursor": ...}``
                           ``since``?, ``until``?,
                           ``limit``?, ``cursor``?
``process_history``        ``id``                      the events, oldest first
``process_items``          ``id``, ``status``?,        a batch's items by index:
                           ``cursor``?, ``limit``?     ``{"items": [...], "cursor": ...}``
``process_result``         ``id``                      the result (`ProcessFailed` if none)
``process_cancel``,        ``id``                      True
``process_pause``,
``process_resume``
``process_retry``          ``id``, ``from_step``?      True
``process_stats``          ``kind``?, ``window``?      counts, success rate, durations
``process_prune``          ``older_than``,             how many were deleted
                           ``status``?
``schedule_list``                                      every schedule's document
``schedule_pause``,        ``name``                    the schedule's document
``schedule_resume``
``schedule_run_now``       ``name``                    the fire it ran
=========================  ==========================  =================================

Process operations carry ``v``, the version of their arguments (`PROCESS_API`);
a runtime refuses a version it does not speak, with what to do. Each operation
has a role (`ROLES`): ``send`` may submit and read, ``operate`` may also
control; the roles issue gates control frames by it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from .errors import ConfigError, ScheduleNotFound, UnknownRecipient
from .messaging.message import Address

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .orchestrators._dead_letters import DeadLetter
    from .processes._runner import ProcessRunner
    from .processes._schedule_driver import ScheduleDriver


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

    @property
    def processes(self) -> ProcessRunner:
        """The process runner (raises `ConfigError` if the runtime runs no processes)."""

    @property
    def schedules(self) -> ScheduleDriver:
        """The schedules (raises `ConfigError` if the runtime has none)."""


Role = Literal["send", "operate"]

ROLES: Final[dict[str, Role]] = {
    "cancel": "operate",
    "pause": "operate",
    "resume": "operate",
    "restart": "operate",
    "dead_letters": "send",
    "replay_dead_letters": "operate",
    "purge_dead_letters": "operate",
    "process_submit": "send",
    "process_get": "send",
    "process_list": "send",
    "process_history": "send",
    "process_items": "send",
    "process_result": "send",
    "process_stats": "send",
    "process_cancel": "operate",
    "process_pause": "operate",
    "process_resume": "operate",
    "process_retry": "operate",
    "process_prune": "operate",
    "schedule_list": "send",
    "schedule_pause": "operate",
    "schedule_resume": "operate",
    "schedule_run_now": "operate",
}
"""The role each operation needs: ``send`` (submit and read) or ``operate`` (control too)."""

OPERATIONS: Final = tuple(ROLES)
"""Every control operation a runtime answers."""

PROCESS_API: Final = 1
"""The version of the process operations' arguments this runtime speaks."""

DEFAULT_LIST_LIMIT: Final = 100
"""Dead letters listed when the client does not say how many."""
_MAX_IDS: Final = 10_000


def control_operation(  # noqa: PLR0911 - one return per operation
    runtime: Controllable, operation: str, arguments: dict[str, Any]
) -> Any:
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
    if isinstance(operation, str) and operation.startswith("process_") and operation in ROLES:
        return _process_operation(runtime.processes, operation, arguments)
    if isinstance(operation, str) and operation.startswith("schedule_") and operation in ROLES:
        try:
            schedules = runtime.schedules
        except ConfigError:
            if operation == "schedule_list":
                return []  # a runtime with no [[schedules]] lists none
            raise ScheduleNotFound(_text(arguments, "name")) from None
        return _schedule_operation(schedules, operation, arguments)
    raise ValueError(f"unknown control operation {str(operation)[:40]!r}")


def _process_operation(  # noqa: PLR0911, PLR0912 - one return per operation
    processes: ProcessRunner, operation: str, arguments: dict[str, Any]
) -> Any:
    version = arguments.get("v", PROCESS_API)
    if version != PROCESS_API:
        raise ValueError(
            f"process operations version {version!r} is not spoken here (this runtime speaks "
            f"{PROCESS_API}): run the same tierd version on the client and the runtime"
        )
    match operation:
        case "process_submit":
            correlation = arguments.get("correlation")
            if correlation is not None and not isinstance(correlation, dict):
                raise ValueError("control argument 'correlation' must be a map")
            priority = arguments.get("priority", 10)
            if isinstance(priority, bool) or not isinstance(priority, int | str):
                raise ValueError("control argument 'priority' must be 1..20 or a name")
            key = arguments.get("key")
            return processes.submit(
                _text(arguments, "kind"),
                arguments.get("params"),
                priority=priority,
                key=None if key is None else _text(arguments, "key"),
                correlation=correlation,
            )
        case "process_get":
            return processes.get(_text(arguments, "id"))
        case "process_list":
            return processes.list(
                status=_optional_text(arguments, "status"),
                kind=_optional_text(arguments, "kind"),
                since=_optional_number(arguments, "since"),
                until=_optional_number(arguments, "until"),
                limit=_int(arguments, "limit", 50),
                cursor=_optional_text(arguments, "cursor"),
            )
        case "process_history":
            return processes.history(_text(arguments, "id"))
        case "process_items":
            return processes.items(
                _text(arguments, "id"),
                status=_optional_text(arguments, "status"),
                cursor=_optional_text(arguments, "cursor"),
                limit=_int(arguments, "limit", 100),
            )
        case "process_result":
            return processes.result(_text(arguments, "id"))
        case "process_cancel" | "process_pause" | "process_resume":
            act = {
                "process_cancel": processes.cancel,
                "process_pause": processes.pause,
                "process_resume": processes.resume,
            }
            act[operation](_text(arguments, "id"))
            return True
        case "process_retry":
            processes.retry(_text(arguments, "id"), _optional_text(arguments, "from_step"))
            return True
        case "process_stats":
            window = _optional_number(arguments, "window")
            return processes.stats(
                _optional_text(arguments, "kind"), 86400.0 if window is None else window
            )
        case "process_prune":
            older_than = _optional_number(arguments, "older_than")
            if older_than is None:
                raise ValueError("control argument 'older_than' (seconds) is required")
            return processes.prune(older_than, _optional_text(arguments, "status"))
    raise ValueError(f"unknown control operation {operation[:40]!r}")


def _schedule_operation(
    schedules: ScheduleDriver, operation: str, arguments: dict[str, Any]
) -> Any:
    if operation == "schedule_list":
        return schedules.list()
    act = {
        "schedule_pause": schedules.pause,
        "schedule_resume": schedules.resume,
        "schedule_run_now": schedules.run_now,
    }
    return act[operation](_text(arguments, "name"))


def _optional_text(arguments: dict[str, Any], key: str) -> str | None:
    return None if arguments.get(key) is None else _text(arguments, key)


def _optional_number(arguments: dict[str, Any], key: str) -> float | None:
    value = arguments.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"control argument {key!r} must be a number")
    return float(value)


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
