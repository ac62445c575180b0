"""`Runtime`: builds a topology from its config, runs it and stops it in order."""

from __future__ import annotations

import functools
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import structlog

from ._control import control_operation
from ._daemon_classes import resolve_class
from ._outcome import Outcome
from ._status import status_report
from ._version import __version__
from .config import Config, ProcessesConfig, load_config
from .errors import ConfigError, RequestTimeout, TierdError, UnknownRecipient
from .logging import configure as configure_logging
from .logging import get_logger
from .messaging._transport.bridge import Bridge
from .messaging.events import EventFanOut
from .messaging.link import Router, settle, unwrap_reply
from .messaging.message import (
    DEFAULT_TIMEOUT,
    Address,
    Message,
    not_before_of,
    parse_priority,
)
from .metrics import NetworkStatistics, RuntimeMetrics
from .orchestrators._deadlock import WaitForGraph
from .orchestrators._journal import Journal
from .orchestrators._level import Level
from .orchestrators._orchestrator import SWEEP, Orchestrator
from .orchestrators._slot import DaemonSpec
from .processes._open import open_store
from .processes._runner import ProcessRunner
from .processes._schedule_driver import ScheduleDriver

if TYPE_CHECKING:
    import pykka

    from ._http import HttpServer
    from .actors.daemon import Daemon
    from .config import DaemonConfig
    from .orchestrators._dead_letters import DeadLetter
    from .orchestrators._stats import LevelStatistics
    from .processes._stats import ProcessStatistics
    from .processes._store import ProcessStore


RUNTIME_SENDER: Final = Address("runtime", 0)
"""The sender of messages made by `Runtime.send` and `Runtime.request`."""

_STOP_TIMEOUT: Final = 10.0
"""Seconds to wait for a thread or an actor to stop."""


class Runtime:
    """A running topology: one orchestrator per local level, and their daemons.

    Use it as a context manager, or call `start` and `stop`::

        with tierd.Runtime.from_config("configs/two-levels.toml") as rt:
            rt.request("relay@1", {"x": 1}, timeout=5)

    Args:
        config: the topology.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        if not structlog.is_configured():
            configure_logging(config.runtime.log_format, config.runtime.log_level)
        self.router = Router()
        self.wait_graph = WaitForGraph()
        self.levels: dict[int, Level] = {}
        self.orchestrators: dict[int, pykka.ActorRef[Orchestrator]] = {}
        self.log = get_logger(runtime=config.runtime.name)
        self.bridge: Bridge | None = None
        """The ZeroMQ side: clients and peers; None while the runtime serves no network."""
        self.metrics = RuntimeMetrics(self, config.runtime.name)
        """The runtime's own Prometheus registry; served on ``runtime.metrics`` while running."""
        self.http: HttpServer | None = None
        """The HTTP API and dashboard, served on ``runtime.http`` while running; None if off."""
        self.journals: dict[int, Journal] = {}
        """The journal of each durable level, open while the runtime runs."""
        self.events = EventFanOut()
        """Every event of the runtime (DESIGN §12) goes here; `add` a sink to follow them."""
        self._processes: ProcessRunner | None = None
        self._process_store: ProcessStore | None = None
        self._schedules: ScheduleDriver | None = None
        self._sweeper: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = False
        self._started_at: float | None = None
        """`time.monotonic` when `start` returned, for the uptime."""

    @classmethod
    def from_config(cls, path: str | Path) -> Runtime:
        """Make a runtime from a TOML file.

        The file's directory is put at the front of `sys.path` first (if it
        is not there already), so that a ``class = "mypkg.mod:Class"`` whose
        package sits next to the config imports.

        Raises:
            ConfigError: the file is not a valid topology.
        """
        return cls(load_config(path, import_path=[Path(path).parent]))

    def __enter__(self) -> Runtime:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start every level and its daemons; return when they are running.

        Raises:
            RuntimeError: the runtime was started already.
            BindError: ``runtime.endpoint`` cannot be bound; nothing is left running.
            ConfigError: a CURVE key cannot be read, or ``runtime.data_dir``
                cannot hold a durable level's journal; nothing is left running.
            MetricsServerError: the metrics address is in use; nothing is left running.
            HttpServerError: the ``runtime.http`` address is in use; nothing is left running.
            Exception: whatever a daemon's constructor raised, with a note (PEP 678)
                naming the daemon: ``levels[0].daemons[1] (relay@1): cannot start``;
                nothing is left running.
        """
        if self._started:
            raise RuntimeError("this runtime was started already; make a new one")
        self._started = True
        if self.config.runtime.metrics:
            # First, so that a second runtime on the same address fails before starting anything.
            self.metrics.serve(self.config.runtime.metrics)
        factories: list[_DaemonFactory] = []
        try:
            self._bind_http()
            self._make_bridge()
            for level_index, section in enumerate(self.config.levels):
                specs = []
                for index, daemon in enumerate(section.daemons):
                    factory = _DaemonFactory(
                        daemon, f"levels[{level_index}].daemons[{index}]", section.level
                    )
                    factories.append(factory)
                    specs.append(_daemon_spec(daemon, factory))
                journal = self._open_journal(section) if section.durable else None
                level = Level(
                    section.level,
                    specs,
                    self.router,
                    self.wait_graph,
                    queue_limit=section.queue_limit,
                    dead_letter_capacity=section.dead_letter_limit,
                    runtime_name=self.config.runtime.name,
                    waiting_room=section.waiting_room_limit,
                    aging=section.aging,
                    store=journal,
                    events=self.events,
                )
                self.levels[section.level] = level
                if journal is not None:
                    self._recover(level, journal)
                self.router.add_local(section.level, level, frozenset(spec.id for spec in specs))
            for number, level in self.levels.items():
                self.orchestrators[number] = Orchestrator.start(level)
            self._start_processes()
            if self.bridge is not None:
                self.bridge.start()  # after the levels, so the network finds them running
            if self.http is not None:
                self.http.start()  # what connected since the bind waited in the backlog
        except BaseException:
            self._undo_start()
            raise
        finally:
            for factory in factories:
                factory.starting = False  # a restart's constructor error goes to supervision as is
        self._started_at = time.monotonic()
        self._sweeper = threading.Thread(
            target=self._sweep_forever,
            name=f"tierd-sweeper-{self.config.runtime.name}",
            daemon=True,
        )
        self._sweeper.start()
        self.log.info("runtime_started", levels=self.config.local_levels)

    def _undo_start(self) -> None:
        """Close whatever a half-done start opened."""
        if self.http is not None:
            self.http.close()
        if self.bridge is not None:
            self.bridge.stop()
        self._stop_orchestrators()
        self._close_journals()
        self._close_process_store()
        self.metrics.close()

    def _bind_http(self) -> None:
        """Listen on ``runtime.http`` (served once the rest has started), if it is set."""
        if not self.config.runtime.http:
            return
        # Here, not at the top: a runtime without HTTP never loads the web stack.
        from ._http import HttpServer  # noqa: PLC0415

        self.http = HttpServer(self, self.events)
        self.http.bind(self.config.runtime.http)

    def _start_processes(self) -> None:
        """Open the process store, recover what it says was running, start pending work.

        The schedules keep their fires in the same store: a config with
        ``[[schedules]]`` and no ``[processes]`` table gets the default store.
        """
        section = self.config.processes
        if section is None and self.config.schedules:
            section = ProcessesConfig()
        if section is None:
            return
        self._process_store = open_store(
            section.store,
            self.config.runtime.data_dir,
            name=self.config.runtime.name,
            poll_interval=self.config.runtime.sweep_interval,
        )
        retention = section.retention
        self._processes = ProcessRunner(
            [kind.definition() for kind in section.kinds],
            self._process_store,
            requester=self,
            events=self.events,
            owner=self.config.runtime.name,
            stuck_after=section.stuck_after,
            retention={
                "completed": retention.completed,
                "failed": retention.failed,
                "cancelled": retention.cancelled,
                "timeout": retention.timeout,
            },
        )
        self._processes.start()
        if self.config.schedules:
            self._schedules = ScheduleDriver(
                [schedule.spec() for schedule in self.config.schedules],
                self._process_store,
                runner=self._processes,
                send=self._send_scheduled,
                events=self.events,
                owner=self.config.runtime.name,
                keep_fires=max(
                    retention.completed, retention.failed, retention.cancelled, retention.timeout
                ),
            )
            self._schedules.start()

    def _send_scheduled(self, target: str, payload: Any) -> str:
        """A schedule's notification: sent like `send`, never waiting for room."""
        return self.send(target, payload)

    def _close_process_store(self) -> None:
        if self._process_store is not None:
            self._process_store.close()

    @property
    def processes(self) -> ProcessRunner:
        """Submit, query and control processes (DESIGN §9): ``submit``, ``get``, ``list``...

        Raises:
            ConfigError: the config has no ``[processes]`` table, or the runtime is not started.
        """
        if self._processes is None:
            raise ConfigError(
                "this runtime runs no processes: add a [processes] table with "
                "[[processes.kinds]] to its config (and start it)"
            )
        return self._processes

    @property
    def schedules(self) -> ScheduleDriver:
        """List, pause, resume and run schedules now (DESIGN §11): ``list``, ``pause``...

        Raises:
            ConfigError: the config has no ``[[schedules]]``, or the runtime is not started.
        """
        if self._schedules is None:
            raise ConfigError(
                "this runtime has no schedules: add [[schedules]] tables to its config "
                "(and start it)"
            )
        return self._schedules

    def schedule_statistics(self) -> dict[tuple[str, str], int]:
        """Schedule fires since the start, by (schedule, outcome); empty without schedules."""
        return self._schedules.statistics() if self._schedules is not None else {}

    def _open_journal(self, section: Any) -> Journal:
        """Open the journal of a durable level: one SQLite file per runtime name and level."""
        name = re.sub(r"[^\w.-]", "_", self.config.runtime.name)
        path = Path(self.config.runtime.data_dir) / f"{name}-level{section.level}.sqlite3"
        journal = Journal(
            path,
            dedup_window=self.config.runtime.dedup_window,
            dead_letter_limit=section.dead_letter_limit,
            level=section.level,
        )
        self.journals[section.level] = journal
        return journal

    def _recover(self, level: Level, journal: Journal) -> None:
        """Requeue what the journal kept, remember the ids it handled, start its writer."""
        recovered = journal.recover()
        bridge = self.bridge
        level.recover(recovered, bridge.recovered_reply_route if bridge is not None else None)
        if bridge is not None:
            # A peer that resends a message already handled (its ack was lost
            # in the crash) gets an ack, not a second delivery.
            now = time.time()
            bridge.remember_ids([*recovered.handled, *((m.id, now) for m, _ in recovered.messages)])
        journal.start()

    def _close_journals(self) -> None:
        for journal in self.journals.values():
            journal.close()

    def _make_bridge(self) -> None:
        """Make the bridge, if there is an endpoint or a peer, and route remote levels to it."""
        if not (self.config.runtime.endpoint or self.config.peers or self.config.runtime.events):
            return
        durable = frozenset(section.level for section in self.config.levels if section.durable)
        self.bridge = Bridge(
            self.config, self.router, self.status, self.control,
            durable_levels=durable, followers=self.events,
        )  # fmt: skip
        for level, link in self.bridge.remote_links():
            self.router.add_remote(level, link)

    def stop(self, grace_period: float | None = None) -> None:
        """Stop taking messages, let the daemons finish, fail what is left, stop.

        Args:
            grace_period: seconds to let queued and in-flight messages finish;
                the config's ``grace_period`` by default.
        """
        if self._stopping.is_set() or not self._started:
            return
        if self.http is not None:
            self.http.close()  # first, with the network: no new work, live streams ended
        if self.bridge is not None:
            self.bridge.stop_input()  # first: no new work from clients and peers
        if self._processes is not None:
            self._processes.stop_accepting()
        if self._schedules is not None:
            self._schedules.stop()  # no fire after this; a held one is recorded skipped
        grace = self.config.runtime.grace_period if grace_period is None else grace_period
        deadline = time.monotonic() + grace
        while True:
            left = sum(level.stop_accepting() for level in self.levels.values())
            if left == 0 or time.monotonic() >= deadline:
                break
            time.sleep(min(0.02, max(deadline - time.monotonic(), 0)))  # polling a count
        if self._processes is not None:
            # Steps left are interrupted, not failed: the next start runs them again.
            self._processes.stop(timeout=max(deadline - time.monotonic(), 0.5))
        for level in self.levels.values():
            level.fail_everything("runtime stopped before the message was handled")
        if self.bridge is not None:
            self.bridge.stop()  # after the last replies and refusals were handed to it
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=_STOP_TIMEOUT)
        self._stop_orchestrators()
        self._close_journals()
        self._close_process_store()
        self.metrics.close()
        self.log.info("runtime_stopped", unfinished=left)

    def _stop_orchestrators(self) -> None:
        for ref in self.orchestrators.values():
            ref.stop(block=True, timeout=_STOP_TIMEOUT)

    def _sweep_forever(self) -> None:
        interval = self.config.runtime.sweep_interval
        while not self._stopping.wait(interval):
            for ref in self.orchestrators.values():
                ref.tell(SWEEP)
            if self._processes is not None:
                try:
                    self._processes.sweep()
                except Exception:  # the sweeper must outlive a failing store
                    self.log.exception("process_sweep_failed")
            if self._schedules is not None:
                try:
                    self._schedules.tick()
                except Exception:  # a failing store: the fire is tried again next tick
                    self.log.exception("schedule_tick_failed")

    # -- messages ------------------------------------------------------------

    def send(
        self,
        target: str | Address,
        payload: Any = None,
        *,
        priority: int | str = "normal",
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = False,
        delay: float | None = None,
        not_before: float | None = None,
    ) -> str:
        """Send a notification; return its id once it is handed to its level.

        For a durable level, this blocks until the message is committed to the
        level's journal (a group commit: typically well under a millisecond).

        Args:
            target: the recipient, ``"daemon@level"``.
            payload: any value.
            priority: a name (critical, high, normal, low, background) or 1..20.
            timeout: seconds the message may wait, for room and then in the queue.
            wait: if the level's queue is full, wait (blocking, for up to
                ``timeout``) until there is room instead of failing at once.
            delay: seconds (0 to 7 days) before the level hands it to its daemon;
                accepted (journaled, on a durable level) now, never delivered early.
            not_before: instead of ``delay``, an epoch time.

        Raises:
            Rejected: the level's queue is full (with ``wait``: it stayed full
                for ``timeout``, or too many senders wait already), or a
                durable level could not journal it.
            UnknownRecipient: no level or daemon answers to ``target``.
            ValueError: a bad address, priority or delay.
        """
        recipient = Address.parse(target)
        message = Message.notification(
            RUNTIME_SENDER, recipient, payload, priority=parse_priority(priority), timeout=timeout,
            not_before=not_before_of(delay, not_before, time.time()),
        )  # fmt: skip
        accepted = self.router.check(recipient).submit(message, None, wait=wait)
        # A level answers a wait by the message's timeout (its sweep); the margin guards a stop.
        settle(accepted, timeout + max(1.0, 10 * self.config.runtime.sweep_interval))
        return message.id

    def request(
        self,
        target: str | Address,
        payload: Any = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        priority: int | str = "normal",
    ) -> Any:
        """Send a request and wait for its reply's payload.

        Raises:
            RequestTimeout: no reply within ``timeout``.
            RemoteError: the recipient's handler raised.
            UnknownRecipient: no level or daemon answers to ``target``.
            Deadlock, Cancelled, Rejected: as their names say.
            ValueError: a bad address or priority.
        """
        recipient = Address.parse(target)
        self.router.check(recipient)
        message = Message.request(
            RUNTIME_SENDER, recipient, payload, priority=parse_priority(priority), timeout=timeout
        )
        waiter: Outcome[Message | TierdError] = Outcome()
        correlator = self.levels.get(recipient.level) or next(iter(self.levels.values()))
        settle(correlator.submit(message, None, waiter=waiter))
        # The orchestrator's sweep answers on time; the margin only guards a stopped runtime.
        outcome = waiter.wait(timeout + max(1.0, 10 * self.config.runtime.sweep_interval))
        if outcome is None:
            raise RequestTimeout(message.id, str(recipient), timeout)
        if isinstance(outcome, TierdError):
            raise outcome
        return unwrap_reply(outcome)

    # -- control -------------------------------------------------------------

    def statistics(self) -> list[LevelStatistics]:
        """A snapshot of every local level, in level order."""
        return [self.levels[number].statistics() for number in sorted(self.levels)]

    def unknown_recipients(self) -> dict[int | None, int]:
        """Messages refused for an unknown recipient: by local level, None for no such level."""
        return dict(self.router.unknown_recipients)

    def process_statistics(self) -> ProcessStatistics | None:
        """The process runner's counters; None if the runtime runs no processes."""
        return self._processes.statistics() if self._processes is not None else None

    def network_statistics(self) -> NetworkStatistics:
        """Frames refused and peers' liveness; empty while the runtime serves no network."""
        if self.bridge is None:
            return NetworkStatistics(rejected_frames={}, peers_up={})
        events = self.bridge.events
        return NetworkStatistics(
            rejected_frames=self.bridge.rejections.snapshot(),
            peers_up={peer.endpoint: peer.up for peer in self.bridge.peers},
            events_published=events.published if events is not None else 0,
            events_dropped=events.dropped if events is not None else 0,
        )

    def status(self) -> dict[str, Any]:
        """Levels, daemons, states, queues, counters and peers, as plain data.

        This is what `tierd.Client.status` and ``tierd status --json`` return.
        """
        peers = [
            {"endpoint": p.endpoint, "levels": p.config.levels, "up": p.up, "held": p.held_count}
            for p in (self.bridge.peers if self.bridge is not None else [])
        ]
        network = self.network_statistics()
        started = self._started_at
        kept = {number: len(level.dead_letter_list()) for number, level in self.levels.items()}
        return status_report(
            self.config.runtime.name, self.statistics(), network.rejected_frames, peers,
            version=__version__, endpoint=self.config.runtime.endpoint,
            events=self.events_address,
            uptime=time.monotonic() - started if started is not None else 0.0,
            dead_letters_kept=kept,
        )  # fmt: skip

    @property
    def events_address(self) -> str:
        """Where the runtime publishes its live events (the bound address); "" if nowhere."""
        publisher = self.bridge.events if self.bridge is not None else None
        return publisher.address if publisher is not None else ""

    def pause(self, target: str | Address) -> bool:
        """Pause a local daemon: it receives nothing until resumed; False if unknown."""
        return self._set_paused(Address.parse(target), paused=True)

    def resume(self, target: str | Address) -> bool:
        """Resume a paused local daemon; False if unknown."""
        return self._set_paused(Address.parse(target), paused=False)

    def restart(self, target: str | Address) -> bool:
        """Give a local daemon a fresh instance; False if unknown.

        A given-up daemon comes back (its crash window cleared); a live one
        is replaced once it has finished the message in hand. Its queue is kept.
        """
        address = Address.parse(target)
        level = self.levels.get(address.level)
        return level is not None and level.restart_daemon(address.daemon)

    def _set_paused(self, address: Address, *, paused: bool) -> bool:
        level = self.levels.get(address.level)
        return level is not None and level.set_paused(address.daemon, paused=paused)

    def cancel(self, message_id: str) -> bool:
        """Cancel a queued message (its requester gets `Cancelled`); False if not found.

        A message already being handled is not interrupted: its reply is discarded.
        """
        return any(level.cancel(message_id) for level in self.levels.values())

    def dead_letters(self, level: int) -> list[DeadLetter]:
        """The dead letters a local level keeps, oldest first.

        Raises:
            KeyError: the runtime serves no level ``level``.
        """
        return self.levels[level].dead_letter_list()

    def replay_dead_letters(
        self, level: int | None = None, ids: list[str] | None = None
    ) -> dict[str, str]:
        """Send dead letters again as new messages (see `Level.replay_dead_letters`).

        Args:
            level: one local level, or None for every level.
            ids: the message ids to replay; None replays every letter.

        Returns:
            Each replayed message's old id and its new id.
        """
        replayed: dict[str, str] = {}
        for chosen in self.levels_for(level):
            replayed.update(chosen.replay_dead_letters(ids))
        return replayed

    def purge_dead_letters(self, level: int | None = None, ids: list[str] | None = None) -> int:
        """Forget dead letters (those in ``ids``, or all) of one level or every level; how many."""
        return sum(chosen.purge_dead_letters(ids) for chosen in self.levels_for(level))

    def levels_for(self, level: int | None) -> list[Level]:
        """One local level, or every one (None), in level order.

        Raises:
            UnknownRecipient: the runtime serves no level ``level``.
        """
        if level is None:
            return [self.levels[number] for number in sorted(self.levels)]
        if level not in self.levels:
            raise UnknownRecipient(f"level {level}", f"this runtime serves no level {level}")
        return [self.levels[level]]

    def control(self, operation: str, arguments: dict[str, Any]) -> Any:
        """Run one control operation a client asked for over the wire (see `tierd.Client`).

        Runs in the bridge's worker thread, where waiting on levels is fine.

        Raises:
            UnknownRecipient: no such daemon or level.
            ValueError: an unknown operation or a bad argument.
        """
        return control_operation(self, operation, arguments)


class _DaemonFactory:
    """Makes one daemon's instances; while the runtime starts, a failure notes the daemon."""

    __slots__ = ("_address", "_key", "_make", "starting")

    def __init__(self, daemon: DaemonConfig, key: str, level: int) -> None:
        self._make = functools.partial(resolve_class(daemon.class_path), **daemon.options)
        self._key = key
        self._address = f"{daemon.id}@{level}"
        self.starting = True
        """True until `Runtime.start` returns: a constructor error then fails the start."""

    def __call__(self) -> Daemon:
        try:
            return self._make()
        except Exception as error:
            if self.starting:  # the type stays the constructor's; the note says whose it is
                error.add_note(f"{self._key} ({self._address}): cannot start")
            raise


def _daemon_spec(daemon: DaemonConfig, factory: _DaemonFactory) -> DaemonSpec:
    return DaemonSpec(
        id=daemon.id,
        factory=factory,
        class_path=daemon.class_path,
        prefetch=daemon.prefetch,
        instances=daemon.instances,
        restart=daemon.restart.policy(),
        supervision=daemon.supervision.policy(),
        retry=daemon.retry.policy() if daemon.retry is not None else None,
        poison_after=daemon.poison_after,
    )
