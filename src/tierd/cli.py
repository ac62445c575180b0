"""The ``tierd`` command line.

Each subcommand is one function taking the parsed arguments and returning the
exit code (DESIGN §4): a user mistake (a bad argument, payload or config)
prints one line and exits 2; an error from the runtime (a timeout, a remote
error, a runtime that cannot start) prints one line and exits 1; Ctrl-C
exits 130. No command prints a traceback for anything but a bug in tierd.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import zmq

from ._cli_values import (
    UsageError,
    app_dir_argument,
    count_argument,
    delay_argument,
    endpoint_argument,
    level_argument,
    parse_payload,
    priority_argument,
    run_endpoint_argument,
    target_argument,
    timeout_argument,
)
from ._live_commands import follow_events, watch_status
from ._process_commands import USER_MISTAKES, add_process_commands, run_process_command
from ._schedule_commands import SCHEDULE_MISTAKES, add_schedule_commands, run_schedule_command
from ._status import format_status
from ._version import __version__
from .config import DEFAULT_TOPOLOGY, load_config, override_runtime
from .errors import BatchRejected, ConfigError, TierdError
from .logging import LEVELS
from .logging import configure as configure_logging
from .messaging._transport.client import DEFAULT_ENDPOINT, Client
from .messaging._transport.security import generate_key_pair
from .messaging.message import DEFAULT_TIMEOUT, PRIORITY_NAMES
from .processes._open import is_postgresql, migrate_store
from .runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import FrameType

    from .config import Config

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran and failed: a timeout, a remote error, a runtime that cannot start."""
EXIT_USAGE = 2
"""A user mistake: a bad argument or payload, an unreadable or invalid config."""
EXIT_INTERRUPTED = 130
"""Ctrl-C: 128 + SIGINT, as shells report it."""


# -- run and check ---------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a config without starting anything."""
    config = _load(args.config, args.app_dir)
    if config is None:
        return EXIT_USAGE
    daemons = sum(len(level.daemons) for level in config.levels)
    kinds = "" if config.processes is None else f", {len(config.processes.kinds)} process kind(s)"
    schedules = f", {len(config.schedules)} schedule(s)" if config.schedules else ""
    print(
        f"{args.config}: ok: {len(config.levels)} level(s), {daemons} daemon(s), "
        f"{len(config.peers)} peer(s){kinds}{schedules}"
    )
    return EXIT_OK


def cmd_store_migrate(args: argparse.Namespace) -> int:
    """Bring the config's process store to this tierd's schema; print the versions."""
    path = args.config or DEFAULT_TOPOLOGY
    config = _load(args.config, args.app_dir)
    if config is None:
        return EXIT_USAGE
    if config.processes is None:
        print(f"{path}: has no [processes] table: no process store to migrate", file=sys.stderr)
        return EXIT_USAGE
    url = config.processes.store
    try:
        before, after = migrate_store(url, config.runtime.data_dir)
    except ConfigError as error:
        print(f"{path}: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_FAILED
    where = "PostgreSQL" if is_postgresql(url) else "SQLite"
    if before == after:
        print(f"{path}: {where} process store: schema at version {after}, up to date")
    else:
        print(f"{path}: {where} process store: schema migrated from version {before} to {after}")
    return EXIT_OK


def _load(path: Path | None, app_dirs: list[Path]) -> Config | None:
    """Load a config with its import path, or print its problems and return None.

    ``--app-dir`` directories come first on `sys.path`, then the config's
    directory, then the current directory, so that a user's package imports
    as it would in their shell.
    """
    config_dir = [] if path is None else [path.parent]
    try:
        return load_config(
            path or DEFAULT_TOPOLOGY, import_path=[*app_dirs, *config_dir, Path.cwd()]
        )
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    """Run a topology in the foreground until SIGINT or SIGTERM."""
    path = args.config or DEFAULT_TOPOLOGY
    config = _load(args.config, args.app_dir)
    if config is None:
        return EXIT_USAGE
    overrides = {
        key: value
        for key, value in (
            ("metrics", args.metrics),
            ("endpoint", args.endpoint),
            ("http", args.http),
            ("events", args.events),
        )
        if value is not None
    }
    if overrides:
        try:
            config = override_runtime(config, f"{path} (command line)", **overrides)
        except ConfigError as error:
            for problem in error.problems:
                print(problem, file=sys.stderr)
            return EXIT_USAGE
    configure_logging(
        args.log_format or config.runtime.log_format,
        args.log_level or config.runtime.log_level,
        runtime_name=config.runtime.name,
    )
    runtime = Runtime(config)
    # Before the banner, so that a signal sent as soon as it shows is not lost.
    stop_requested = threading.Event()
    _on_stop_signals(stop_requested.set)
    try:
        runtime.start()
    except Exception as error:  # noqa: BLE001 - one line, no trace, whatever stopped the start
        print(f"{path}: {_start_failure(error)}", file=sys.stderr)
        return EXIT_FAILED
    _print_banner(runtime, "the default topology" if args.config is None else str(path))
    # A timed wait: a signal delivered to another thread only runs its Python handler
    # once the main thread executes bytecode, which an untimed lock wait never lets it do.
    while not stop_requested.wait(0.2):
        pass
    print("tierd: stopping: draining (Ctrl-C again to exit at once)", file=sys.stderr, flush=True)
    runtime.stop()
    return EXIT_OK


def _start_failure(error: Exception) -> str:
    """Why `Runtime.start` failed, in one line."""
    text = " ".join(str(error).split())
    notes = getattr(error, "__notes__", ())
    if notes:  # a daemon's constructor raised; Runtime.start noted whose it was
        return f"{'; '.join(notes)}: {type(error).__name__}: {text}"
    if isinstance(error, ConfigError | OSError):  # a key, data_dir, an address in use...
        return f"cannot start: {text}"
    return f"cannot start: {type(error).__name__}: {text}"


def _print_banner(runtime: Runtime, what: str) -> None:
    section = runtime.config.runtime
    levels = ", ".join(str(level) for level in runtime.config.local_levels)
    print(f"tierd {section.name!r} running {what}: levels {levels}", flush=True)
    if section.endpoint:
        print(f"  clients and peers: {section.endpoint}", flush=True)
    if runtime.events_address:
        print(f"  live events:       {runtime.events_address}  (tierd events)", flush=True)
    if runtime.metrics.address:
        print(f"  metrics:           http://{runtime.metrics.address}/metrics", flush=True)
    if runtime.http is not None:
        print(f"  dashboard and API: http://{runtime.http.address}/", flush=True)
    target = _example_target(runtime)
    endpoint = (
        "" if section.endpoint in {"", DEFAULT_ENDPOINT} else f" --endpoint {section.endpoint}"
    )
    print(
        f'  try:               tierd request {target} \'{{"hello": "world"}}\'{endpoint}',
        flush=True,
    )
    print("  stop:              Ctrl-C or SIGTERM (Ctrl-C twice to exit at once)", flush=True)


def _example_target(runtime: Runtime) -> str:
    """A daemon worth a first request: a Relay or an Echo if there is one, else the first."""
    daemons = [(d, level.level) for level in runtime.config.levels for d in level.daemons]
    for wanted in ("Relay", "Echo"):
        for daemon, level_number in daemons:
            if daemon.class_path.endswith(f":{wanted}"):
                return f"{daemon.id}@{level_number}"
    daemon, level_number = daemons[0]
    return f"{daemon.id}@{level_number}"


def _on_stop_signals(request_stop: Callable[[], None]) -> None:
    """First SIGINT/SIGTERM asks for a graceful stop; a second one exits at once."""
    asked = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if asked.is_set():
            os._exit(128 + signum)
        asked.set()
        request_stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


# -- messages --------------------------------------------------------------------


def cmd_send(args: argparse.Namespace) -> int:
    """Send a notification and print its id once the runtime accepted it."""
    if args.lines:
        return _send_lines(args)
    payload = _read_payload(args)
    if payload is _NO_PAYLOAD:
        return EXIT_USAGE

    def send(client: Client) -> None:
        message_id = client.send(
            args.target, payload, priority=args.priority, wait=args.wait,
            timeout=args.timeout, delay=args.delay,
        )  # fmt: skip
        print(message_id)

    return _with_client(args, send)


def _send_lines(args: argparse.Namespace) -> int:
    """``tierd send TARGET --lines``: one notification per JSON line of stdin, pipelined.

    Every line is read and parsed before anything is sent, so a bad line
    sends nothing. Prints the id of each accepted line, in order; a refused
    line is one line on stderr with its line number, and the exit code is 1.
    """
    if args.payload is not None:
        return _fail(args, UsageError("give a PAYLOAD or --lines, not both"), EXIT_USAGE)
    payloads: list[tuple[int, object]] = []
    for number, line in enumerate(sys.stdin, start=1):
        if line.strip():
            try:
                payloads.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                return _fail(args, UsageError(f"line {number} is not JSON ({error})"), EXIT_USAGE)
    refused: list[tuple[int, TierdError]] = []

    def send(client: Client) -> None:
        items = ((args.target, payload) for _, payload in payloads)
        try:
            ids = client.send_many(
                items, priority=args.priority, timeout=args.timeout, delay=args.delay
            )
        except BatchRejected as partly:
            ids = partly.ids
            refused.extend((item.index, item.error) for item in partly.refused)
        not_sent = {index for index, _ in refused}
        for number, message_id in enumerate(ids):
            if number not in not_sent:
                print(message_id)

    code = _with_client(args, send)
    for index, problem in refused:
        text = f"{type(problem).__name__}: {' '.join(str(problem).split())}"
        print(f"tierd send: line {payloads[index][0]}: {text}", file=sys.stderr)
    return EXIT_FAILED if refused else code


def cmd_request(args: argparse.Namespace) -> int:
    """Send a request and print its reply as JSON."""
    payload = _read_payload(args)
    if payload is _NO_PAYLOAD:
        return EXIT_USAGE

    def request(client: Client) -> None:
        reply = client.request(args.target, payload, timeout=args.timeout, priority=args.priority)
        print(json.dumps(reply, default=_jsonable))

    return _with_client(args, request)


_NO_PAYLOAD: Any = object()
"""What `_read_payload` returns when the payload was refused (and the reason printed)."""


def _read_payload(args: argparse.Namespace) -> Any:
    """The payload argument as a value, or `_NO_PAYLOAD` after printing why it is refused."""
    try:
        return parse_payload(args.payload)
    except UsageError as error:
        _fail(args, error)
        return _NO_PAYLOAD


# -- status and control ------------------------------------------------------------


def cmd_events(args: argparse.Namespace) -> int:
    """Print live events, one line each (or JSON lines), until Ctrl-C."""
    code = EXIT_OK

    def follow(client: Client) -> None:
        nonlocal code
        code = follow_events(args, client)

    return _with_client(args, follow) or code


def cmd_status(args: argparse.Namespace) -> int:
    """Print a runtime's levels, daemons and counters: a table, or JSON with --json."""
    if args.watch and args.json:
        return _fail(args, UsageError("--watch redraws the table; --json prints once: pick one"))

    def status(client: Client) -> None:
        if args.watch:
            watch_status(client, args.interval, args.timeout)
        report = client.status(timeout=args.timeout)
        print(
            json.dumps(report, indent=2, default=_jsonable) if args.json else format_status(report)
        )

    return _with_client(args, status)


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a queued message; exit 1 if no level holds it."""

    def cancel(client: Client) -> None:
        if not client.cancel(args.id, timeout=args.timeout):
            raise _NotFoundError(
                f"no level holds message {args.id}: it was handled already, or the id is unknown"
            )
        print(f"cancelled {args.id}")

    return _with_client(args, cancel)


def cmd_pause(args: argparse.Namespace) -> int:
    """Pause, resume or restart a daemon."""

    def control(client: Client) -> None:
        if args.command == "pause":
            client.pause(args.target, timeout=args.timeout)
            print(f"paused {args.target}")
        elif args.command == "resume":
            client.resume(args.target, timeout=args.timeout)
            print(f"resumed {args.target}")
        else:
            client.restart(args.target, timeout=args.timeout)
            print(f"restarting {args.target} (now if idle or given up, else after its message)")

    return _with_client(args, control)


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """List, replay or purge dead letters; replay and purge need ids or ``--all``."""
    if args.action == "list" and (args.ids or args.all):
        return _fail(args, UsageError("list takes no ids and no --all; use --level and --limit"))
    if args.action != "list" and bool(args.ids) == bool(args.all):
        what = "ids and --all at once" if args.all else "no ids"
        return _fail(
            args,
            UsageError(
                f"{args.action} got {what}: pass the ids to {args.action} "
                f"(see tierd dead-letters list), or --all to {args.action} every dead letter"
            ),
        )
    ids = list(dict.fromkeys(args.ids)) or None

    def dead_letters(client: Client) -> None:
        if args.action == "list":
            _list_dead_letters(client, args)
        elif args.action == "replay":
            _replay_dead_letters(client, args, ids)
        else:
            _purge_dead_letters(client, args, ids)

    return _with_client(args, dead_letters)


def _list_dead_letters(client: Client, args: argparse.Namespace) -> None:
    letters = client.dead_letters(args.level, limit=args.limit, timeout=args.timeout)
    if args.json:
        print(json.dumps(letters, indent=2, default=_jsonable))
        return
    for letter in letters:
        print(
            f"{letter['id']}  {letter['recipient']}  {letter['reason']}  "
            f"attempts {letter['attempts']}  {letter['detail']}"
        )
    print(f"{len(letters)} dead letter(s)")


def _replay_dead_letters(client: Client, args: argparse.Namespace, ids: list[str] | None) -> None:
    replayed = client.replay_dead_letters(args.level, ids, timeout=args.timeout)
    missing = [i for i in ids or () if i not in replayed]
    if args.json:
        print(json.dumps({"replayed": replayed, "not_replayed": missing}, indent=2))
    else:
        for old, new in replayed.items():
            print(f"{old} -> {new}")
        print(f"{len(replayed)} replayed")
    if missing:
        raise _NotFoundError(
            f"not replayed: {', '.join(missing)}: no such dead letter"
            f"{_on_level(args)}, or its level refused it again"
        )


def _purge_dead_letters(client: Client, args: argparse.Namespace, ids: list[str] | None) -> None:
    if ids is None:
        purged, missing = client.purge_dead_letters(args.level, None, timeout=args.timeout), []
    else:  # one id at a time, so that each one not found can be named
        found = [client.purge_dead_letters(args.level, [i], timeout=args.timeout) for i in ids]
        purged = sum(found)
        missing = [i for i, n in zip(ids, found, strict=True) if n == 0]
    if args.json:
        print(json.dumps({"purged": purged, "not_found": missing}))
    else:
        print(f"{purged} purged")
    if missing:
        raise _NotFoundError(f"no dead letter {', '.join(missing)}{_on_level(args)}")


def _on_level(args: argparse.Namespace) -> str:
    return f" on level {args.level}" if args.level is not None else ""


def cmd_process(args: argparse.Namespace) -> int:
    """``tierd process …``: one line and exit 2 for a user mistake, exit 1 for a runtime error."""
    try:
        payload = parse_payload(getattr(args, "payload", None))
        with Client(
            args.endpoint, server_key=args.server_key, client_key=args.client_key
        ) as client:
            return run_process_command(args, client, payload)
    except (ConfigError, UsageError, ValueError) as error:
        return _fail(args, error, EXIT_USAGE)
    except USER_MISTAKES as error:
        return _fail(args, error, EXIT_USAGE)
    except TierdError as error:
        return _fail(args, error, EXIT_FAILED)


def cmd_schedules(args: argparse.Namespace) -> int:
    """``tierd schedules …``: one line and exit 2 for a user mistake, exit 1 for a runtime error."""
    try:
        with Client(
            args.endpoint, server_key=args.server_key, client_key=args.client_key
        ) as client:
            return run_schedule_command(args, client)
    except (ConfigError, UsageError, ValueError) as error:
        return _fail(args, error, EXIT_USAGE)
    except SCHEDULE_MISTAKES as error:
        return _fail(args, error, EXIT_USAGE)
    except TierdError as error:
        return _fail(args, error, EXIT_FAILED)
    except zmq.ZMQError as error:  # an endpoint ZeroMQ cannot connect to
        return _fail(args, UsageError(f"cannot connect to {args.endpoint}: {error}"), EXIT_USAGE)


def cmd_keys_generate(args: argparse.Namespace) -> int:
    """Write a CURVE key pair for a runtime or a client."""
    try:
        public, secret = generate_key_pair(args.dir, args.name)
    except OSError as error:
        print(f"tierd keys generate: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"public key: {public}  (give it to whoever must let you in, or connect to you)")
    print(f"secret key: {secret}  (keep it private: runtime.curve_secret_key or --client-key)")
    return EXIT_OK


# -- helpers ---------------------------------------------------------------------


def _with_client(args: argparse.Namespace, action: Callable[[Client], None]) -> int:
    """Run ``action`` with a `Client`; a failure is one line on stderr and an exit code."""
    try:
        with Client(
            args.endpoint, server_key=args.server_key, client_key=args.client_key
        ) as client:
            action(client)
    except (ConfigError, UsageError) as error:  # a key file that cannot be read...
        return _fail(args, error, EXIT_USAGE)
    except _NotFoundError as error:
        return _fail(args, error, EXIT_FAILED)
    except TierdError as error:  # timeout, remote error, unknown recipient, rejected...
        return _fail(args, error, EXIT_FAILED)
    except ValueError as error:  # a value only the client can check
        return _fail(args, error, EXIT_USAGE)
    except zmq.ZMQError as error:  # an endpoint ZeroMQ cannot connect to
        return _fail(args, UsageError(f"cannot connect to {args.endpoint}: {error}"), EXIT_USAGE)
    return EXIT_OK


def _fail(args: argparse.Namespace, error: Exception, code: int = EXIT_USAGE) -> int:
    line = " ".join(str(error).split())
    # A runtime's error is named (RequestTimeout: ...); a config's problems name their file.
    named = isinstance(error, TierdError) and not isinstance(error, ConfigError)
    kind = f"{type(error).__name__}: " if named else ""
    if isinstance(error, TierdError) and error.via:
        line += f" (via {', '.join(error.via)})"
    print(f"{_prog(args)}: {kind}{line}", file=sys.stderr)
    return code


def _prog(args: argparse.Namespace | None) -> str:
    command = getattr(args, "command", None)
    if command == "process":
        command = f"process {getattr(args, 'process_command', '')}".rstrip()
    if command == "schedules":
        command = f"schedules {getattr(args, 'schedules_command', '')}".rstrip()
    return f"tierd {command}" if command else "tierd"


class _NotFoundError(Exception):
    """What a command acts on does not exist (exit 1)."""


def _jsonable(value: object) -> object:
    """What JSON cannot hold directly: bytes as text, anything else as its repr."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return repr(value)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit 2), not a usage block."""

    def error(self, message: str) -> NoReturn:
        """Print ``tierd COMMAND: what is wrong (see ... --help)`` and exit 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


# -- the parser ------------------------------------------------------------------


def _add_client_options(parser: argparse.ArgumentParser, *, timeout: float | None) -> None:
    parser.add_argument(
        "--endpoint", type=endpoint_argument,
        default=os.environ.get("TIERD_ENDPOINT", DEFAULT_ENDPOINT),
        help=f"the runtime's endpoint, host:port or tcp://host:port "
        f"(default: $TIERD_ENDPOINT or {DEFAULT_ENDPOINT})",
    )  # fmt: skip
    parser.add_argument("--server-key", help="the runtime's CURVE public key file (.key)")
    parser.add_argument("--client-key", help="this client's CURVE key pair file (.key_secret)")
    if timeout is not None:
        parser.add_argument(
            "--timeout", type=timeout_argument, default=timeout,
            help=f"seconds to wait for the runtime's answer (default {timeout:g})",
        )  # fmt: skip


def _add_payload(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", type=target_argument, help="the recipient, daemon@level")
    parser.add_argument(
        "payload", nargs="?", metavar="PAYLOAD",
        help="JSON; @FILE reads the JSON in FILE; - reads it from standard input (default: null)",
    )  # fmt: skip
    parser.add_argument(
        "--priority", type=priority_argument, default="normal",
        help=f"{', '.join(PRIORITY_NAMES)} or 1..20, lower is more urgent (default normal)",
    )  # fmt: skip


def _add_message_commands(commands: Any) -> None:
    """``send``, ``request`` and ``status``."""
    send = commands.add_parser("send", help="send a notification; print its id")
    _add_payload(send)
    send.add_argument(
        "--wait", action="store_true",
        help="if the level's queue is full, wait for room (up to --timeout) instead of failing",
    )  # fmt: skip
    send.add_argument(
        "--lines", action="store_true",
        help="send one notification per line of stdin (newline-delimited JSON), pipelined; "
        "print each accepted id",
    )  # fmt: skip
    send.add_argument(
        "--delay", type=delay_argument, default=None, metavar="DURATION",
        help="deliver no earlier than this long from now: seconds, or 90s, 15m, 2h (at most 7 "
        "days); the runtime keeps it meanwhile (journaled on a durable level)",
    )  # fmt: skip
    _add_client_options(send, timeout=None)
    send.add_argument(
        "--timeout", type=timeout_argument, default=DEFAULT_TIMEOUT,
        help="seconds the message may wait in a queue (and for room, with --wait) before it is "
        f"dead-lettered as expired (default {DEFAULT_TIMEOUT:g}); tierd send itself returns "
        "once the runtime has accepted it",
    )  # fmt: skip
    send.set_defaults(func=cmd_send)

    request = commands.add_parser("request", help="send a request; print the reply as JSON")
    _add_payload(request)
    _add_client_options(request, timeout=None)
    request.add_argument(
        "--timeout", type=timeout_argument, default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the reply (default {DEFAULT_TIMEOUT:g})",
    )  # fmt: skip
    request.set_defaults(func=cmd_request)

    status = commands.add_parser(
        "status", help="levels, daemons, states, queues, counters, uptime, version"
    )
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.add_argument(
        "--watch", action="store_true", help="redraw the table in place until Ctrl-C"
    )
    status.add_argument(
        "--interval", type=timeout_argument, default=1.0,
        help="seconds between two redraws with --watch (default 1)",
    )  # fmt: skip
    _add_client_options(status, timeout=5.0)
    status.set_defaults(func=cmd_status)

    events = commands.add_parser("events", help="print live events as they happen")
    events.add_argument(
        "prefixes", nargs="*", metavar="PREFIX",
        help="topic prefixes: process., process.KIND., process.KIND.ID, daemon.LEVEL. "
        "(default: every event)",
    )  # fmt: skip
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.add_argument(
        "--connect", type=endpoint_argument, metavar="ENDPOINT",
        help="the runtime's events endpoint (default: ask the runtime at --endpoint)",
    )  # fmt: skip
    _add_client_options(events, timeout=5.0)
    events.set_defaults(func=cmd_events)


def _add_control_commands(commands: Any) -> None:
    """``cancel``, ``pause``, ``resume``, ``restart`` and ``dead-letters``."""
    cancel = commands.add_parser("cancel", help="cancel a queued message by id")
    cancel.add_argument("id", help="the message id (as tierd send printed it)")
    _add_client_options(cancel, timeout=5.0)
    cancel.set_defaults(func=cmd_cancel)

    for name, text in (
        ("pause", "pause a daemon"),
        ("resume", "resume a paused daemon"),
        ("restart", "give a daemon a fresh instance; brings back a given-up one"),
    ):
        control = commands.add_parser(name, help=f"{text}: daemon@level")
        control.add_argument("target", type=target_argument, help="the daemon, daemon@level")
        _add_client_options(control, timeout=5.0)
        control.set_defaults(func=cmd_pause)

    dead = commands.add_parser("dead-letters", help="list, replay or purge dead letters")
    dead.add_argument("action", choices=("list", "replay", "purge"))
    dead.add_argument("ids", nargs="*", metavar="ID", help="message ids (replay and purge)")
    dead.add_argument(
        "--all", action="store_true", help="replay or purge every dead letter (instead of ids)"
    )
    dead.add_argument("--level", type=level_argument, help="one level (default: every level)")
    dead.add_argument(
        "--limit", type=count_argument, default=100, help="list at most this many (newest)"
    )
    dead.add_argument("--json", action="store_true", help="print JSON for scripts")
    _add_client_options(dead, timeout=5.0)
    dead.set_defaults(func=cmd_dead_letters)


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--app-dir", action="append", default=[], type=app_dir_argument, metavar="DIR",
        help="a directory to import daemon classes from, before the config's directory and "
        "the current directory (repeatable)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="tierd", description="Run and talk to tierd message orchestrators.")
    parser.add_argument("--version", action="version", version=f"tierd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a topology in the foreground")
    run.add_argument(
        "config", nargs="?", type=Path, help="TOML topology (default: the built-in one)"
    )
    _add_config_options(run)
    run.add_argument("--log-level", choices=LEVELS, help="override runtime.log_level")
    run.add_argument(
        "--log-format", choices=("console", "json"), help="override runtime.log_format"
    )
    run.add_argument(
        "--metrics", metavar="HOST:PORT", help='override runtime.metrics ("" turns metrics off)'
    )
    run.add_argument(
        "--http", metavar="HOST:PORT",
        help='override runtime.http, the HTTP API and dashboard ("" turns it off)',
    )  # fmt: skip
    run.add_argument(
        "--endpoint", metavar="ENDPOINT", type=run_endpoint_argument,
        help='override runtime.endpoint: host:port or tcp://host:port ("" serves no network)',
    )  # fmt: skip
    run.add_argument(
        "--events", metavar="ENDPOINT", type=run_endpoint_argument,
        help='override runtime.events, the live events socket ("" publishes none)',
    )  # fmt: skip
    run.set_defaults(func=cmd_run)

    check = commands.add_parser("check", help="validate a topology without starting it")
    check.add_argument("config", type=Path, help="TOML topology")
    _add_config_options(check)
    check.set_defaults(func=cmd_check)

    store = commands.add_parser("store", help="the process store")
    store_commands = store.add_subparsers(dest="store_command", required=True, metavar="COMMAND")
    migrate = store_commands.add_parser(
        "migrate", help="create or migrate the process store's schema to this tierd's"
    )
    migrate.add_argument(
        "--config", type=Path, help="TOML topology naming [processes] store (default: built-in)"
    )
    _add_config_options(migrate)
    migrate.set_defaults(func=cmd_store_migrate)

    _add_message_commands(commands)
    _add_control_commands(commands)
    add_process_commands(commands, _add_client_options)
    commands.choices["process"].set_defaults(func=cmd_process)
    add_schedule_commands(commands, _add_client_options)
    commands.choices["schedules"].set_defaults(func=cmd_schedules)

    keys = commands.add_parser("keys", help="CURVE keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    generate = key_commands.add_parser("generate", help="write a new key pair into DIR")
    generate.add_argument("dir", help="the directory (made if missing)")
    generate.add_argument("--name", default="tierd", help="file name stem (default: tierd)")
    generate.set_defaults(func=cmd_keys_generate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tierd`` command; return its exit code (130 after Ctrl-C)."""
    args = None
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
    except KeyboardInterrupt:
        print(f"{_prog(args)}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (``tierd dead-letters list | head``)
        # Python flushes standard output at exit: point it at nothing, so that fails quietly too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
