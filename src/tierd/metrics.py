"""Prometheus metrics of one runtime: every ``tierd_*`` family, and the HTTP exporter.

The orchestrators count in plain ints in their own threads (see
`tierd.orchestrators._stats`), so nothing on the hot path takes a lock or
touches prometheus-client. At scrape time `RuntimeCollector` asks the runtime
for its statistics snapshots and turns them into metric families. Each
runtime has its own `CollectorRegistry`, so two runtimes in one process never
clash, and nothing is registered in prometheus-client's global registry.

Example::

    rt = tierd.Runtime.from_config("configs/two-levels.toml")
    rt.start()                       # serves http://127.0.0.1:9464/metrics
    print(rt.metrics.exposition().decode())
"""

from __future__ import annotations

import dataclasses
import socket
import socketserver
import threading
from typing import TYPE_CHECKING, Any, Final, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector

from ._version import __version__
from .actors.states import DaemonState
from .errors import MetricsServerError
from .logging import get_logger
from .messaging.message import PRIORITY_NAMES
from .orchestrators._stats import LATENCY_BUCKETS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.metrics_core import Metric

    from .orchestrators._stats import HistogramSnapshot, LevelStatistics
    from .processes._stats import ProcessStatistics

KINDS: Final = ("request", "notification")
"""Kinds given ``tierd_messages_received_total`` series from the start (replies are not queued)."""
OUTCOMES: Final = ("ok", "error", "timeout")
"""Outcomes of ``tierd_messages_completed_total``."""
DEAD_LETTER_REASONS: Final = (
    "expired",
    "handler_error",
    "retries_exhausted",
    "poison",
    "daemon_gave_up",
    "unknown_recipient",
    "stopped",
)
"""Reasons given a ``tierd_dead_letters_total`` series from the start; others appear when seen."""
REJECTION_REASONS: Final = ("queue_full", "unknown_recipient")
"""Reasons given a ``tierd_messages_rejected_total`` series from the start."""


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkStatistics:
    """What the runtime's ZeroMQ side has seen."""

    rejected_frames: dict[str, int]
    """Inbound frames refused, by reason (malformed, oversized, bad_version...)."""
    peers_up: dict[str, bool]
    """Each peer's endpoint, and whether its heartbeats arrive."""
    events_published: int = 0
    """Live events sent on the ``runtime.events`` socket."""
    events_dropped: int = 0
    """Live events dropped before the socket: its queue was full, or one could not be sent."""


class StatisticsSource(Protocol):
    """What the collector reads: a `tierd.Runtime`, or anything shaped like one."""

    def statistics(self) -> list[LevelStatistics]:
        """A snapshot of every local level."""
        ...

    def network_statistics(self) -> NetworkStatistics:
        """Frames refused and peers' liveness."""
        ...

    def unknown_recipients(self) -> dict[int | None, int]:
        """Messages refused for an unknown recipient: by local level, None for no such level."""
        ...

    def process_statistics(self) -> ProcessStatistics | None:
        """The process runner's counters; None if the runtime runs no processes."""
        ...

    def schedule_statistics(self) -> dict[tuple[str, str], int]:
        """Schedule fires since the start, by (schedule, outcome)."""
        ...


class RuntimeCollector(Collector):
    """Turns a runtime's statistics snapshots into Prometheus metric families at scrape time.

    Args:
        source: the runtime to read.
        name: the runtime's name, for ``tierd_runtime_info``.
        version: tierd's version, for ``tierd_runtime_info``.
    """

    def __init__(self, source: StatisticsSource, name: str, version: str) -> None:
        self.source = source
        self.name = name
        self.version = version

    def describe(self) -> list[Metric]:
        """Nothing: the families depend on the topology, and each registry holds one collector."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Read the snapshots once and yield every ``tierd_*`` family."""
        info = InfoMetricFamily("tierd_runtime", "The runtime this process runs.")
        info.add_metric([], {"name": self.name, "version": self.version})
        yield info
        yield from _level_families(self.source.statistics(), self.source.unknown_recipients())
        yield from _network_families(self.source.network_statistics())
        yield from _process_families(
            self.source.process_statistics(), self.source.schedule_statistics()
        )


PROCESS_STATUSES: Final = ("pending", "running", "paused")
"""Statuses of ``tierd_processes`` (the finished ones are ``tierd_processes_finished_total``)."""
FINISHED_STATUSES: Final = ("completed", "failed", "cancelled", "timeout")


def _process_families(
    stats: ProcessStatistics | None, fire_counts: dict[tuple[str, str], int]
) -> Iterator[Metric]:
    current = GaugeMetricFamily(
        "tierd_processes",
        "Processes pending, running or paused now, by kind and status.",
        labels=["kind", "status"],
    )
    finished = CounterMetricFamily(
        "tierd_processes_finished",
        "Processes finished since the runtime started, by kind and final status.",
        labels=["kind", "status"],
    )
    duration = HistogramMetricFamily(
        "tierd_process_duration_seconds",
        "Seconds from a process's start to its finish.",
        labels=["kind"],
    )
    step_duration = HistogramMetricFamily(
        "tierd_process_step_duration_seconds",
        "Seconds of each completed step attempt.",
        labels=["kind", "step"],
    )
    retries = CounterMetricFamily(
        "tierd_process_step_retries",
        "Step attempts that failed and were tried again.",
        labels=["kind", "step"],
    )
    recovered = CounterMetricFamily(
        "tierd_processes_recovered",
        "Processes taken over after a crash, and steps run again after stuck_after.",
        labels=["kind"],
    )
    fires = CounterMetricFamily(
        "tierd_schedule_fires",
        "Schedule fires this runtime ran, by outcome: fired, skipped (overlap), failed.",
        labels=["schedule", "outcome"],
    )
    for (schedule, outcome), count in sorted(fire_counts.items()):
        fires.add_metric([schedule, outcome], count)
    if stats is not None:
        for kind in stats.kinds:
            for status in PROCESS_STATUSES:
                current.add_metric([kind, status], stats.current.get((kind, status), 0))
            for status in FINISHED_STATUSES:
                finished.add_metric([kind, status], stats.finished.get((kind, status), 0))
            recovered.add_metric([kind], stats.recovered.get(kind, 0))
        for kind, snap in sorted(stats.durations.items()):
            _add_histogram(duration, [kind], snap)
        for (kind, step), snap in sorted(stats.step_durations.items()):
            _add_histogram(step_duration, [kind, step], snap)
        for (kind, step), count in sorted(stats.step_retries.items()):
            retries.add_metric([kind, step], count)
    yield from (current, finished, duration, step_duration, retries, recovered, fires)


def _level_families(
    levels: list[LevelStatistics], unknown: dict[int | None, int]
) -> Iterator[Metric]:
    received = CounterMetricFamily(
        "tierd_messages_received",
        "Messages accepted into a level's queue, by kind and priority (1 is most urgent).",
        labels=["level", "kind", "priority"],
    )
    dispatched = CounterMetricFamily(
        "tierd_messages_dispatched", "Messages handed to a daemon.", labels=["level"]
    )
    completed = CounterMetricFamily(
        "tierd_messages_completed",
        "Requests finished, by outcome: ok, error (the handler raised), timeout.",
        labels=["level", "outcome"],
    )
    timeouts = CounterMetricFamily(
        "tierd_message_timeouts",
        "Requests from the level that got no reply in time, and queued messages that expired.",
        labels=["level"],
    )
    late = CounterMetricFamily(
        "tierd_late_replies",
        "Replies dropped because their request had already timed out.",
        labels=["level"],
    )
    depth = GaugeMetricFamily(
        "tierd_queue_depth", "Messages waiting in a level's queue.", labels=["level", "priority"]
    )
    inflight = GaugeMetricFamily(
        "tierd_inflight_requests",
        "Requests made from the level still waiting for their reply.",
        labels=["level"],
    )
    states = GaugeMetricFamily(
        "tierd_daemon_state",
        "1 for each daemon's current state, 0 for the others.",
        labels=["level", "daemon", "state"],
    )
    latency = HistogramMetricFamily(
        "tierd_dispatch_latency_seconds",
        "Seconds from queued to handed to a daemon.",
        labels=["level"],
    )
    duration = HistogramMetricFamily(
        "tierd_handle_duration_seconds",
        "Seconds a daemon's handler took per message.",
        labels=["level", "daemon"],
    )
    restarts = CounterMetricFamily(
        "tierd_daemon_restarts",
        "Times a daemon was restarted after a crash.",
        labels=["level", "daemon"],
    )
    dead = CounterMetricFamily(
        "tierd_dead_letters",
        "Messages that could not be delivered, by reason.",
        labels=["level", "reason"],
    )
    rejected = CounterMetricFamily(
        "tierd_messages_rejected",
        "Messages refused on arrival and never kept, by reason (queue_full); the sender was told.",
        labels=["level", "reason"],
    )
    retries = CounterMetricFamily(
        "tierd_message_retries",
        "Failed deliveries scheduled for another attempt by a daemon's retry policy.",
        labels=["level"],
    )
    waiting = GaugeMetricFamily(
        "tierd_waiting_for_room",
        "Senders waiting for room in a level's full queue.",
        labels=["level"],
    )
    paused = GaugeMetricFamily(
        "tierd_daemon_paused", "1 while a daemon is paused, else 0.", labels=["level", "daemon"]
    )
    errors = CounterMetricFamily(
        "tierd_handler_errors",
        "Messages whose handler raised, whatever became of the daemon.",
        labels=["level", "daemon"],
    )
    given_up = GaugeMetricFamily(
        "tierd_daemon_given_up",
        "1 while a daemon is given up (until `tierd restart`), else 0.",
        labels=["level", "daemon"],
    )
    for stats in levels:
        level = str(stats.level)
        refused = dict.fromkeys(REJECTION_REASONS, 0) | stats.rejected
        refused["unknown_recipient"] = unknown.get(stats.level, 0)
        for reason, count in refused.items():
            rejected.add_metric([level, reason], count)
        retries.add_metric([level], stats.retries)
        waiting.add_metric([level], stats.waiting_for_room)
        received_counts = {(kind, p): 0 for kind in KINDS for p in PRIORITY_NAMES.values()}
        received_counts.update(stats.received)
        for (kind, priority), count in sorted(received_counts.items()):
            received.add_metric([level, kind, str(priority)], count)
        dispatched.add_metric([level], stats.dispatched)
        for outcome in OUTCOMES:
            completed.add_metric([level, outcome], stats.completed.get(outcome, 0))
        timeouts.add_metric([level], stats.timeouts)
        late.add_metric([level], stats.late_replies)
        depths = dict.fromkeys(PRIORITY_NAMES.values(), 0)
        depths.update(stats.queue_depth)
        for priority, count in sorted(depths.items()):
            depth.add_metric([level, str(priority)], count)
        inflight.add_metric([level], stats.in_flight_requests)
        _add_histogram(latency, [level], stats.dispatch_latency)
        reasons = dict.fromkeys(DEAD_LETTER_REASONS, 0)
        reasons.update(stats.dead_letters)
        for reason, count in reasons.items():
            dead.add_metric([level, reason], count)
        for daemon in stats.daemons:
            for state in DaemonState:
                current = 1 if daemon.state == state.name else 0
                states.add_metric([level, daemon.daemon, state.value], current)
            _add_histogram(duration, [level, daemon.daemon], daemon.handle_duration)
            restarts.add_metric([level, daemon.daemon], daemon.restarts)
            paused.add_metric([level, daemon.daemon], 1 if daemon.paused else 0)
            errors.add_metric([level, daemon.daemon], daemon.errors)
            given_up.add_metric([level, daemon.daemon], 1 if daemon.given_up else 0)
    rejected.add_metric(["none", "unknown_recipient"], unknown.get(None, 0))
    yield from (received, dispatched, completed, timeouts, late, depth, _queue_limits(levels))
    yield from (inflight, states, latency, duration, restarts, dead, rejected, retries, waiting)
    yield from (paused, errors, given_up, _delayed(levels))


def _delayed(levels: list[LevelStatistics]) -> Metric:
    delayed = GaugeMetricFamily(
        "tierd_messages_delayed",
        "Messages accepted with a delay still to run: held, not yet queued.",
        labels=["level"],
    )
    for stats in levels:
        delayed.add_metric([str(stats.level)], stats.delayed)
    return delayed


def _queue_limits(levels: list[LevelStatistics]) -> Metric:
    limit = GaugeMetricFamily(
        "tierd_queue_limit",
        "The most messages a level may hold queued (its queue_limit); a send beyond is refused.",
        labels=["level"],
    )
    for stats in levels:
        if stats.queue_limit is not None:
            limit.add_metric([str(stats.level)], stats.queue_limit)
    return limit


def _network_families(network: NetworkStatistics) -> Iterator[Metric]:
    rejected = CounterMetricFamily(
        "tierd_rejected_frames",
        "Inbound ZeroMQ frames refused, by reason (malformed, oversized, bad_version...).",
        labels=["reason"],
    )
    for reason, count in sorted(network.rejected_frames.items()):
        rejected.add_metric([reason], count)
    peers = GaugeMetricFamily(
        "tierd_peer_up", "1 while a peer runtime's heartbeats arrive, else 0.", labels=["peer"]
    )
    for peer, up in sorted(network.peers_up.items()):
        peers.add_metric([peer], 1 if up else 0)
    yield rejected
    yield peers
    yield CounterMetricFamily(
        "tierd_events_published",
        "Live events sent on the runtime.events PUB socket.",
        value=network.events_published,
    )
    yield CounterMetricFamily(
        "tierd_events_dropped",
        "Live events dropped before the PUB socket (its queue full), never slowing the work.",
        value=network.events_dropped,
    )


def _add_histogram(
    family: HistogramMetricFamily, labels: list[str], snap: HistogramSnapshot
) -> None:
    """Add one histogram from a snapshot's per-bucket counts, made cumulative."""
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip(LATENCY_BUCKETS, snap.counts, strict=False):
        running += count
        buckets.append((_bound_text(bound), running))
    buckets.append(("+Inf", snap.count))
    family.add_metric(labels, buckets, snap.sum)


def _bound_text(bound: float) -> str:
    """A bucket bound as Prometheus clients write it: ``1.0``, ``0.005``, ``1e-05``."""
    return repr(float(bound))


class RuntimeMetrics:
    """The registry of one runtime and, while it runs, the HTTP server that exposes it.

    Args:
        source: the runtime to read at scrape time.
        name: the runtime's name.
    """

    def __init__(self, source: StatisticsSource, name: str) -> None:

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RuntimeCollector(source, name, __version__))
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, memory, fds
        self.address = ""
        """Where the exporter listens, ``host:port``; empty while it does not."""
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._log = get_logger(runtime=name)

    def exposition(self) -> bytes:
        """The metrics in Prometheus's text format, as a scrape would get them."""
        return generate_latest(self.registry)

    def serve(self, address: str) -> None:
        """Start serving ``/metrics`` on ``host:port`` in a daemon thread.

        Port 0 picks a free port; `address` then tells which.

        Raises:
            MetricsServerError: the address cannot be bound; nothing is left running.
            RuntimeError: already serving.
        """
        if self._server is not None:
            raise RuntimeError(f"metrics are already served on {self.address}")
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        try:
            server = make_server(
                host, int(port), make_wsgi_app(self.registry), _server_class(host), _QuietHandler
            )
        except OSError as error:
            raise MetricsServerError(address, error.strerror or str(error)) from error
        bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
        if ":" in bound_host:
            bound_host = f"[{bound_host}]"
        self.address = f"{bound_host}:{bound_port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"tierd-metrics-{self.address}", daemon=True
        )
        self._thread.start()
        self._log.info("metrics_serving", address=self.address)

    def close(self) -> None:
        """Stop the HTTP server and wait for its thread; does nothing if it is not serving."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)
        self._server = self._thread = None
        self._log.info("metrics_stopped", address=self.address)
        self.address = ""


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


def _server_class(host: str) -> type[WSGIServer]:
    return _ThreadingServer6 if ":" in host else _ThreadingServer


class _QuietHandler(WSGIRequestHandler):
    """Writes no access line to standard error for every scrape."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Log nothing."""
