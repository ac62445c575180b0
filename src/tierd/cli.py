"""The ``tierd`` command line.

Each subcommand is one function taking the parsed arguments and returning the
exit code. User mistakes (a bad config, a refused message) print one line per
problem to standard error and exit non-zero, never with a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from ._status import format_status
from .config import DEFAULT_TOPOLOGY, load_config, override_runtime
from .errors import BatchRejected, ConfigError, TierdError
from .logging import LEVELS
from .logging import configure as configure_logging
from .messaging._transport.client import DEFAULT_ENDPOINT, Client
from .messaging._transport.security import generate_key_pair
from .messaging.message import DEFAULT_TIMEOUT, PRIORITY_NAMES
from .runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import FrameType

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran and failed: a timeout, a remote error, an invalid config."""
EXIT_USAGE = 2
"""The command could not run: bad arguments, unreadable config."""


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a config without starting anything."""
    try:
        config = load_config(args.config)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return EXIT_FAILED
    daemons = sum(len(level.daemons) for level in config.levels)
    print(
        f"{args.config}: ok: {len(config.levels)} level(s), {daemons} daemon(s), "
        f"{len(config.peers)} peer(s)"
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run a topology in the foreground until SIGINT or SIGTERM."""
    path = args.config or DEFAULT_TOPOLOGY
    overrides = {
        key: value
        for key, value in (("metrics", args.metrics), ("endpoint", args.endpoint))
        if value is not None
    }
    try:
        config = load_config(path)
        if overrides:
            config = override_runtime(config, f"{path} (command line)", **overrides)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return EXIT_FAILED
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
    except (ConfigError, OSError) as error:
        print(f"{path}: cannot start: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - a daemon's constructor raised: one line, no trace
        print(f"{path}: cannot start: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    _print_banner(runtime, "the default topology" if args.config is None else str(path))
    # A timed wait: a signal delivered to another thread only runs its Python handler
    # once the main thread executes bytecode, which an untimed lock wait never lets it do.
    while not stop_requested.wait(0.2):
        pass
    print("tierd: stopping: draining (Ctrl-C again to exit at once)", file=sys.stderr, flush=True)
    runtime.stop()
    return EXIT_OK


def _print_banner(runtime: Runtime, what: str) -> None:
    section = runtime.config.runtime
    levels = ", ".join(str(level) for level in runtime.config.local_levels)
    print(f"tierd {section.name!r} running {what}: levels {levels}", flush=True)
    if section.endpoint:
        print(f"  clients and peers: {section.endpoint}", flush=True)
    if runtime.metrics.address:
        print(f"  metrics:           http://{runtime.metrics.address}/metrics", flush=True)
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


def cmd_send(args: argparse.Namespace) -> int:
    """Send a notification and print its id once the runtime accepted it."""
    if args.lines:
        return _send_lines(args)

    def send(client: Client) -> None:
        print(
            client.send(
                args.target, _payload(args.json), priority=args.priority, wait=args.wait,
                timeout=args.timeout,
            )
        )  # fmt: skip

    return _with_client(args, send)


def _send_lines(args: argparse.Namespace) -> int:
    """``tierd send TARGET --lines``: one notification per JSON line of stdin, pipelined.

    Every line is read and parsed before anything is sent, so a bad line
    sends nothing. Prints the id of each accepted line, in order; a refused
    line is one line on stderr with its line number, and the exit code is 1.
    """
    if args.json is not None:
        return _fail(args, _UsageError("give a PAYLOAD or --lines, not both"), EXIT_USAGE)
    payloads: list[tuple[int, object]] = []
    for number, line in enumerate(sys.stdin, start=1):
        if line.strip():
            try:
                payloads.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                return _fail(args, _UsageError(f"line {number} is not JSON ({error})"), EXIT_USAGE)
    refused: list[tuple[int, TierdError]] = []

    def send(client: Client) -> None:
        items = ((args.target, payload) for _, payload in payloads)
        try:
            ids = client.send_many(items, priority=args.priority, timeout=args.timeout)
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

    def request(client: Client) -> None:
        reply = client.request(args.target, _payload(args.json), timeout=args.timeout)
        print(json.dumps(reply, default=_jsonable))

    return _with_client(args, request)


def cmd_status(args: argparse.Namespace) -> int:
    """Print a runtime's levels, daemons and counters: a table, or JSON with --json."""

    def status(client: Client) -> None:
        report = client.status(timeout=args.timeout)
        print(
            json.dumps(report, indent=2, default=_jsonable) if args.json else format_status(report)
        )

    return _with_client(args, status)


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a queued message; exit 1 if no level holds it."""

    def cancel(client: Client) -> None:
        if not client.cancel(args.id, timeout=args.timeout):
            raise _NotFoundError(f"no level holds message {args.id} (handled already, or unknown)")
        print(f"cancelled {args.id}")

    return _with_client(args, cancel)


def cmd_pause(args: argparse.Namespace) -> int:
    """Pause or resume a daemon."""

    def pause(client: Client) -> None:
        if args.command == "pause":
            client.pause(args.target, timeout=args.timeout)
            print(f"paused {args.target}")
        else:
            client.resume(args.target, timeout=args.timeout)
            print(f"resumed {args.target}")

    return _with_client(args, pause)


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """List, replay or purge dead letters."""

    def dead_letters(client: Client) -> None:
        ids = args.ids or None
        if args.action == "list":
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
        elif args.action == "replay":
            replayed = client.replay_dead_letters(args.level, ids, timeout=args.timeout)
            if args.json:
                print(json.dumps(replayed, indent=2))
                return
            for old, new in replayed.items():
                print(f"{old} -> {new}")
            print(f"{len(replayed)} replayed")
        else:
            purged = client.purge_dead_letters(args.level, ids, timeout=args.timeout)
            print(json.dumps({"purged": purged}) if args.json else f"{purged} purged")

    return _with_client(args, dead_letters)


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


def _with_client(args: argparse.Namespace, action: Callable[[Client], None]) -> int:
    """Run ``action`` with a `Client`; a failure is one line on stderr and an exit code."""
    try:
        with Client(
            args.endpoint, server_key=args.server_key, client_key=args.client_key
        ) as client:
            action(client)
    except (ConfigError, _UsageError) as error:
        return _fail(args, error, EXIT_USAGE)
    except TierdError as error:  # timeout, remote error, unknown recipient, rejected...
        return _fail(args, error, EXIT_FAILED)
    except ValueError as error:  # a bad address or priority
        return _fail(args, error, EXIT_USAGE)
    return EXIT_OK


def _fail(args: argparse.Namespace, error: Exception, code: int) -> int:
    line = " ".join(str(error).split())
    kind = f"{type(error).__name__}: " if isinstance(error, TierdError) else ""
    print(f"tierd {args.command}: {kind}{line}", file=sys.stderr)
    return code


class _UsageError(Exception):
    """A command-line value that is wrong before anything is sent."""


class _NotFoundError(TierdError):
    """What a command acts on does not exist (exit 1)."""


def _payload(text: str | None) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _UsageError(
            f"the payload is not JSON ({error}); quote it, e.g. '{{\"x\": 1}}'"
        ) from None


def _jsonable(value: object) -> object:
    """What JSON cannot hold directly: bytes as text, anything else as its repr."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return repr(value)


def _add_client_options(parser: argparse.ArgumentParser, *, timeout: float | None) -> None:
    parser.add_argument(
        "--endpoint", default=os.environ.get("TIERD_ENDPOINT", DEFAULT_ENDPOINT),
        help=f"the runtime's endpoint (default: $TIERD_ENDPOINT or {DEFAULT_ENDPOINT})",
    )  # fmt: skip
    parser.add_argument("--server-key", help="the runtime's CURVE public key file (.key)")
    parser.add_argument("--client-key", help="this client's CURVE key pair file (.key_secret)")
    if timeout is not None:
        parser.add_argument(
            "--timeout", type=float, default=timeout, help=f"seconds to wait (default {timeout:g})"
        )


def _add_control_commands(commands: Any) -> None:
    """``cancel``, ``pause``, ``resume`` and ``dead-letters``."""
    cancel = commands.add_parser("cancel", help="cancel a queued message by id")
    cancel.add_argument("id", help="the message id (as tierd send printed it)")
    _add_client_options(cancel, timeout=5.0)
    cancel.set_defaults(func=cmd_cancel)

    for name, text in (("pause", "pause a daemon"), ("resume", "resume a paused daemon")):
        control = commands.add_parser(name, help=f"{text}: daemon@level")
        control.add_argument("target", help="the daemon, daemon@level")
        _add_client_options(control, timeout=5.0)
        control.set_defaults(func=cmd_pause)

    dead = commands.add_parser("dead-letters", help="list, replay or purge dead letters")
    dead.add_argument("action", choices=("list", "replay", "purge"))
    dead.add_argument("ids", nargs="*", help="message ids (replay and purge; default: all)")
    dead.add_argument("--level", type=int, help="one level (default: every level)")
    dead.add_argument("--limit", type=int, default=100, help="list at most this many (newest)")
    dead.add_argument("--json", action="store_true", help="print JSON for scripts")
    _add_client_options(dead, timeout=5.0)
    dead.set_defaults(func=cmd_dead_letters)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tierd", description="Run and talk to tierd message orchestrators."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a topology in the foreground")
    run.add_argument("config", nargs="?", help="TOML topology (default: the built-in one)")
    run.add_argument("--log-level", choices=LEVELS, help="override runtime.log_level")
    run.add_argument(
        "--log-format", choices=("console", "json"), help="override runtime.log_format"
    )
    run.add_argument(
        "--metrics", metavar="HOST:PORT", help='override runtime.metrics ("" turns metrics off)'
    )
    run.add_argument(
        "--endpoint", metavar="ENDPOINT", help='override runtime.endpoint ("" serves no network)'
    )
    run.set_defaults(func=cmd_run)

    check = commands.add_parser("check", help="validate a topology without starting it")
    check.add_argument("config", help="TOML topology")
    check.set_defaults(func=cmd_check)

    send = commands.add_parser("send", help="send a notification; print its id")
    send.add_argument("target", help="the recipient, daemon@level")
    send.add_argument("json", nargs="?", help="the payload as JSON (default: null)")
    send.add_argument(
        "--priority",
        default="normal",
        help=f"{', '.join(PRIORITY_NAMES)} or 1..20 (default normal)",
    )
    send.add_argument(
        "--wait", action="store_true",
        help="if the level's queue is full, wait for room (up to --timeout) instead of failing",
    )  # fmt: skip
    send.add_argument(
        "--lines", action="store_true",
        help="send one notification per line of stdin (newline-delimited JSON), pipelined; "
        "print each accepted id",
    )  # fmt: skip
    _add_client_options(send, timeout=DEFAULT_TIMEOUT)
    send.set_defaults(func=cmd_send)

    request = commands.add_parser("request", help="send a request; print the reply as JSON")
    request.add_argument("target", help="the recipient, daemon@level")
    request.add_argument("json", nargs="?", help="the payload as JSON (default: null)")
    _add_client_options(request, timeout=DEFAULT_TIMEOUT)
    request.set_defaults(func=cmd_request)

    status = commands.add_parser("status", help="levels, daemons, states, queues and counters")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    _add_client_options(status, timeout=5.0)
    status.set_defaults(func=cmd_status)

    _add_control_commands(commands)

    keys = commands.add_parser("keys", help="CURVE keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    generate = key_commands.add_parser("generate", help="write a new key pair into DIR")
    generate.add_argument("dir", help="the directory (made if missing)")
    generate.add_argument("--name", default="tierd", help="file name stem (default: tierd)")
    generate.set_defaults(func=cmd_keys_generate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tierd`` command; return its exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
