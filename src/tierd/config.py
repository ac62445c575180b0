"""The topology config: a TOML file read with `tomllib`, checked with pydantic.

`load_config` refuses a bad config before anything starts, with one line per
problem naming the file, the key and what is wrong. Types are strict: a
string where a number or a boolean belongs is an error, never a coercion (an
integer is fine where a float is expected).

Daemon classes are imported while the config is checked (see
`tierd._daemon_classes`). `load_config` and `parse_config` take an
``import_path``: directories put at the front of `sys.path` first, so that
``class = "mypkg.mod:Class"`` imports a package that sits next to the config
(``tierd run`` and ``tierd check`` pass every ``--app-dir``, the config's
directory and the current directory).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from ._daemon_classes import (
    address_options,
    extend_import_path,
    import_class,
    one_line,
    resolve_class,
)
from ._durations import parse_duration
from .errors import ConfigError
from .messaging.message import Address
from .orchestrators._retries import DEFAULT_POISON_AFTER, RetryPolicy
from .orchestrators._supervision import RestartPolicy, SupervisionPolicy
from .processes._batch import Batch, request_items
from .processes._definition import (
    DEFAULT_MAX_CONCURRENT,
    Definition,
    Process,
    Retry,
    check_fail_policy,
    request_steps,
)
from .processes._runner import DEFAULT_STUCK_AFTER
from .processes._schedules import Cron, Every, Overlap, ScheduleSpec, zone

if TYPE_CHECKING:
    from collections.abc import Iterable

DEFAULT_TOPOLOGY = Path(__file__).with_name("default.toml")
"""The topology `tierd run` runs when it is given no config."""
MAX_INSTANCES = 64
"""The most instances one daemon may have: they are threads, and metric label values."""

_ENDPOINT = re.compile(
    r"^(tcp://(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):(?P<port>\d{1,5})|ipc://\S+|inproc://\S+)$"
)
_IMPORT_PATH: Final = "import_path"
"""The validation context's key for the directories put on `sys.path`, named in hints."""


class _Section(BaseModel):
    # strict: "2" is no number and "yes" no boolean; field docstrings feed docs/configuration.md.
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True
    )


class RestartConfig(_Section):
    """How a daemon is restarted after a crash: a backoff, and giving up after too many.

    The ``restart`` table of a daemon; see `RestartPolicy`.
    """

    initial_delay: Annotated[float, Field(ge=0)] = 0.1
    """Seconds before the first restart after a crash."""
    multiplier: Annotated[float, Field(ge=1)] = 2.0
    """Each further restart within ``window`` waits this many times longer."""
    max_delay: Annotated[float, Field(ge=0)] = 5.0
    """The longest wait before a restart, in seconds."""
    max_restarts: Annotated[int, Field(ge=0)] = 5
    """Restarts allowed within ``window``; the next crash gives the daemon up."""
    window: Annotated[float, Field(gt=0)] = 60.0
    """Seconds over which restarts are counted."""

    def policy(self) -> RestartPolicy:
        """The `RestartPolicy` these values describe."""
        return RestartPolicy(**self.model_dump())


class RetryConfig(_Section):
    """How a message whose handler raised a listed exception is delivered again.

    The ``retry`` table of a daemon; see `RetryPolicy`. ``backoff_multiplier``
    is accepted as another name for ``multiplier``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 3
    """Deliveries in all, the first one included; 1 means no retry."""
    initial_delay: Annotated[float, Field(ge=0)] = 0.5
    """Seconds before the second delivery."""
    multiplier: Annotated[float, Field(ge=1, validation_alias=pydantic.AliasChoices(
        "multiplier", "backoff_multiplier"))] = 2.0  # fmt: skip
    """Each further retry waits this many times longer (``backoff_multiplier`` is another name)."""
    max_delay: Annotated[float, Field(ge=0)] = 30.0
    """The longest wait before a retry, in seconds."""
    on: Annotated[list[Annotated[str, Field(pattern=r"^\w+$")]], Field(min_length=1)]
    """Exception class names that are retried (a subclass of one matches); others fail at once."""

    def policy(self) -> RetryPolicy:
        """The `RetryPolicy` these values describe."""
        return RetryPolicy(
            self.max_attempts, self.initial_delay, self.multiplier, self.max_delay, tuple(self.on)
        )


class SupervisionConfig(_Section):
    """What becomes of a daemon whose handler raised, by the exception's type.

    A raise always fails its message. The daemon itself resumes, keeping its
    instance and its state, unless the exception's class (or a base of it)
    is listed here. tierd's own errors (a downstream `RemoteError`,
    `RequestTimeout`, `Deadlock`...) always resume.
    """

    restart: list[Annotated[str, Field(pattern=r"^\w+$")]] = Field(default_factory=list)
    """Exception class names that give the daemon a fresh instance, after its `restart` backoff."""
    stop: list[Annotated[str, Field(pattern=r"^\w+$")]] = Field(default_factory=list)
    """Exception class names that give the daemon up at once, until `tierd restart`."""

    @pydantic.model_validator(mode="after")
    def _not_both(self) -> SupervisionConfig:
        both = sorted(set(self.restart) & set(self.stop))
        if both:
            raise ValueError(f"{', '.join(both)} cannot be both in restart and in stop")
        return self

    def policy(self) -> SupervisionPolicy:
        """The `SupervisionPolicy` these values describe."""
        return SupervisionPolicy(tuple(self.restart), tuple(self.stop))


class DaemonConfig(_Section):
    """A daemon of the level: its class, its options and how failures are handled.

    One ``[[levels.daemons]]`` table; in Python, pass ``class_path=`` for ``class``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: Annotated[str, Field(min_length=1, pattern=r"^[^@\s]+$")]
    """The daemon's id, unique within its level: ``echo`` in the address ``echo@2``."""
    class_path: Annotated[str, Field(alias="class")]
    """The daemon's class, ``module:Class``, e.g. ``"mypkg.greeter:Greeter"``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the class's constructor, checked by its ``check_options``."""
    prefetch: Annotated[int, Field(ge=1)] = 1
    """Messages the daemon may hold at once; 1 hands it a message only when it is IDLE."""
    instances: Annotated[int, Field(ge=1, le=MAX_INSTANCES, strict=True)] = 1
    """Copies of the daemon behind its one address: a message goes to any idle one."""
    restart: RestartConfig = RestartConfig()
    """How the daemon is restarted after a crash: a ``restart`` table."""
    supervision: SupervisionConfig = SupervisionConfig()
    """Which exceptions restart or stop the daemon; any other resumes it, state kept."""
    retry: RetryConfig | None = None
    """How a message whose handler raised is delivered again: a ``retry`` table; none if absent."""
    poison_after: Annotated[int, Field(ge=1)] = DEFAULT_POISON_AFTER
    """Deliveries without completion after which a message is dead-lettered as ``poison``."""

    @pydantic.field_validator("class_path")
    @classmethod
    def _class_exists(cls, value: str, info: pydantic.ValidationInfo) -> str:
        context = info.context or {}
        resolve_class(value, context.get(_IMPORT_PATH, ()))
        return value

    @pydantic.model_validator(mode="after")
    def _options_fit(self) -> DaemonConfig:
        daemon_class = resolve_class(self.class_path)
        try:
            daemon_class.check_options(self.options)
        except (TypeError, ValueError) as error:
            raise ValueError(f"options do not fit {self.class_path}: {error}") from None
        except Exception as error:  # noqa: BLE001 - a user's check that breaks: one line, no trace
            raise ValueError(f"{self.class_path}: check_options raised {one_line(error)}") from None
        return self


class LevelConfig(_Section):
    """A level served by this runtime: its queue and its daemons.

    One ``[[levels]]`` table.
    """

    level: Annotated[int, Field(ge=1)]
    """The level's number, from 1; the ``2`` in the address ``echo@2``."""
    daemons: Annotated[list[DaemonConfig], Field(min_length=1)]
    """The level's daemons: ``[[levels.daemons]]`` tables, at least one."""
    queue_limit: Annotated[int, Field(ge=1)] = 100_000
    """Messages the level may hold queued; a send beyond is refused (``Rejected("queue full")``)."""
    dead_letter_limit: Annotated[int, Field(ge=1)] = 10_000
    """Dead letters the level keeps; the oldest fall out."""
    waiting_room_limit: Annotated[int, Field(ge=0)] = 1000
    """Senders that may wait for room in a full queue at once (``send --wait``)."""
    aging: Annotated[float, Field(ge=0)] = 0.0
    """Seconds of waiting that move a message up one priority step; 0 is strict priority."""
    durable: bool = False
    """Journal every accepted message in ``runtime.data_dir``, so that it survives ``kill -9``."""

    @pydantic.field_validator("daemons", mode="before")
    @classmethod
    def _unique_ids(cls, daemons: Any) -> Any:
        # Before validation, so a duplicate is reported even when a daemon is otherwise bad.
        if isinstance(daemons, list):
            ids = [d.get("id") if isinstance(d, dict) else getattr(d, "id", None) for d in daemons]
            for position, daemon_id in enumerate(ids):
                if daemon_id is not None and daemon_id in ids[:position]:
                    raise ValueError(f"duplicate daemon id {daemon_id!r}")
        return daemons


def check_endpoint(value: str) -> str:
    """Return ``value`` if it is a ZeroMQ endpoint tierd can use: ``tcp://host:port``, ipc, inproc.

    Raises:
        ValueError: it is not; the message names it and shows one that is.
    """
    match = _ENDPOINT.match(value)
    if match is None:
        raise ValueError(f"bad endpoint {value!r}: expected e.g. 'tcp://127.0.0.1:5555'")
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port} in endpoint {value!r}")
    return value


Endpoint = Annotated[str, pydantic.AfterValidator(check_endpoint)]


def _check_own_endpoint(value: str) -> str:
    return value if value == "" else check_endpoint(value)


class PeerConfig(_Section):
    """Levels served by another runtime, reached over ZeroMQ.

    One ``[[peers]]`` table.
    """

    endpoint: Endpoint
    """The peer runtime's ``runtime.endpoint``, e.g. ``"tcp://127.0.0.1:5557"``."""
    levels: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]
    """The level numbers the peer serves; messages for them are sent there."""
    server_key: str = ""
    """The peer's CURVE public key file (``.key``); "" talks to it in the clear."""
    heartbeat_interval: Annotated[float, Field(gt=0, le=60)] = 1.0
    """Seconds between heartbeats sent to the peer."""
    heartbeat_liveness: Annotated[int, Field(ge=1, le=100)] = 3
    """Heartbeat intervals without a word from the peer before it is marked down."""
    buffer_limit: Annotated[int, Field(ge=1)] = 10_000
    """Messages held for the peer while it is down or has not acknowledged them."""
    reconnect_interval: Annotated[float, Field(gt=0, le=60)] = 0.1
    """Seconds before the first reconnection attempt; doubled after each failure."""
    reconnect_interval_max: Annotated[float, Field(gt=0, le=600)] = 5.0
    """The longest wait between reconnection attempts."""


def _check_metrics(value: str) -> str:
    """``host:port`` (port 0 picks a free one), ``[v6 host]:port``, or "" for no metrics."""
    if value == "":
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"bad metrics address {value!r}: expected 'host:port' or ''")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"bad metrics address {value!r}: write an IPv6 host in brackets")
    return value


def check_http_address(value: str) -> str:
    """``host:port`` for the HTTP API (port 0 picks a free one), or "" for none.

    Raises:
        ValueError: it is neither; the message shows one that is.
    """
    if value == "":
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"bad HTTP address {value!r}: expected 'host:port' or ''")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"bad HTTP address {value!r}: write an IPv6 host in brackets")
    return value


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name, an IPv4 address or a bracketed IPv6 one) is only loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HttpToken(_Section):
    """One entry of ``runtime.http_tokens``: a bearer token and its role.

    Give the token itself (``token``) or a file that holds it (``token_file``,
    read when the runtime starts; surrounding whitespace is ignored), not both.
    """

    token: Annotated[str, Field(min_length=16, max_length=512, pattern=r"^[!-~]+$")] | None = None
    """The token, at least 16 printable characters with no spaces (``openssl rand -hex 32``)."""
    token_file: Annotated[str, Field(min_length=1)] | None = None
    """A file whose content is the token: keeps the secret out of the config."""
    role: Literal["send", "operate"] = "send"
    """``send``: submit, read, send and request; ``operate``: also cancel, pause, resume, retry,
    restart, replay and purge."""

    @pydantic.model_validator(mode="after")
    def _one_source(self) -> HttpToken:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give either token = '...' or token_file = 'path', not both")
        return self


class AllowedClient(_Section):
    """One entry of ``runtime.curve_allowed_clients``: public keys and their role."""

    key: Annotated[str, Field(min_length=1)]
    """A ``.key`` public key file, or a directory of them."""
    role: Literal["send", "operate"] = "send"
    """``send``: messages, requests, status; ``operate``: also control operations."""


class RuntimeConfig(_Section):
    """The runtime itself: its name, network, metrics, logs, timings and keys.

    The ``[runtime]`` table.
    """

    name: Annotated[str, Field(min_length=1)] = "tierd"
    """The instance name in logs, metrics and journal file names."""
    endpoint: Annotated[str, pydantic.AfterValidator(_check_own_endpoint)] = "tcp://127.0.0.1:5555"
    """ZeroMQ ROUTER for clients and peers; "" serves no network (in-process use only)."""
    events: Annotated[str, pydantic.AfterValidator(_check_own_endpoint)] = ""
    """ZeroMQ PUB for live events (``tierd events``), e.g. ``"tcp://127.0.0.1:5556"``; "" is off.

    Off unless set, so that two runtimes on one host never fight over a port
    nobody chose; the shipped configs set it. CURVE beyond loopback, as
    ``endpoint``."""
    metrics: Annotated[str, pydantic.AfterValidator(_check_metrics)] = "127.0.0.1:9464"
    """Prometheus exporter, ``host:port``; port 0 picks a free port; "" turns it off."""
    http: Annotated[str, pydantic.AfterValidator(check_http_address)] = ""
    """HTTP API and web dashboard, ``host:port``; port 0 picks a free port; "" turns it off."""
    http_tokens: list[HttpToken] = Field(default_factory=list)
    """Bearer tokens the HTTP API accepts, each with a role; none: open, but only on loopback.

    A list of ``{ token = "...", role = "operate" }`` or ``{ token_file = "secrets/ops.token",
    role = "send" }`` entries. Once any is given, every request needs one, on loopback too.
    Beyond loopback (``http = "0.0.0.0:8080"``) at least one is required."""
    log_format: Literal["console", "json"] = "console"
    """Log lines for people (``console``) or one JSON object per line (``json``)."""
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    """The lowest log level written; ``debug`` adds an event per message."""
    sweep_interval: Annotated[float, Field(gt=0, le=60)] = 0.1
    """Seconds between timeout sweeps: how late, at most, an expiry is noticed."""
    grace_period: Annotated[float, Field(ge=0)] = 5.0
    """Seconds a stopping runtime lets queued and in-flight messages finish."""
    data_dir: Annotated[str, Field(min_length=1)] = "./tierd-data"
    """Where durable levels keep their journals (relative to the working directory)."""
    max_message_bytes: Annotated[int, Field(ge=1024, le=1 << 30)] = 1 << 20
    """The largest frame accepted from or sent to the network, in bytes."""
    dedup_window: Annotated[float, Field(gt=0)] = 600.0
    """Seconds a network message id is remembered, so that a resend is not handled twice."""
    curve_secret_key: str = ""
    """This runtime's CURVE key pair (a ``.key_secret`` file from ``tierd keys generate``)."""
    curve_allowed_clients: str | list[AllowedClient] = ""
    """The public keys allowed to connect (clients and peers), each with a role.

    A list of ``{ key = "keys/ops.key", role = "operate" }`` entries, where ``key``
    is a ``.key`` file or a directory of them and ``role`` is ``send`` (the
    default: messages, requests, status) or ``operate`` (also cancel, pause,
    resume, restart, dead letters). A plain directory, the form before roles,
    still works: every key in it gets ``operate``."""
    insecure: bool = False
    """Allow binding a non-loopback endpoint without CURVE: anyone who reaches it can send."""


class StepConfig(_Section):
    """One step of a ``[[processes.kinds]]`` of requests: ``{name, target, timeout, retry}``."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][\w-]{0,99}$")]
    """The step's name, unique within its kind."""
    target: Annotated[str, Field(pattern=r"^[^@\s]+@\d+$")]
    """The daemon that handles the step, ``daemon@level``: it gets the step's input as a request."""
    timeout: Annotated[float, Field(gt=0)] = 30.0
    """Seconds one attempt of the step may take."""
    retry: RetryConfig | None = None
    """How a failed attempt is tried again: a ``retry`` table; none if absent."""

    def retry_policy(self) -> Retry | None:
        """The step's `tierd.Retry`, if it has one."""
        if self.retry is None:
            return None
        r = self.retry
        return Retry(r.max_attempts, r.initial_delay, r.multiplier, r.max_delay, tuple(r.on))


def _duration(value: Any) -> float:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError(f"not a duration: {value!r}; write seconds or e.g. '30d'")


Duration = Annotated[float, pydantic.BeforeValidator(_duration)]
"""Seconds, or a string with a unit: ``90s``, ``15m``, ``2h``, ``30d``, ``1w``."""


class RetentionConfig(_Section):
    """``[processes] retention``: how long finished processes are kept, by final status."""

    completed: Duration = 30 * 86400.0
    """How long a completed process is kept: seconds, or a duration such as ``"30d"``."""
    failed: Duration = 90 * 86400.0
    """How long a failed process is kept."""
    cancelled: Duration = 30 * 86400.0
    """How long a cancelled process is kept."""
    timeout: Duration = 90 * 86400.0
    """How long a process that ran out of time is kept."""


class BatchConfig(_Section):
    """A batch's limits: the ``batch`` table of a ``[[processes.kinds]]``.

    For a kind with an ``item_target``, or to change a `tierd.Batch` class's
    limits (a key left out keeps the class's value; for an ``item_target``
    kind, the default below).
    """

    batch_size: Annotated[int | None, Field(ge=1)] = None
    """Items per batch (default 10)."""
    max_concurrent: Annotated[int | None, Field(ge=1)] = None
    """Items in flight at once, within one batch (default 1). The kind's own
    ``max_concurrent`` is the batches running at once."""
    delay_between_batches: Annotated[float | None, Field(ge=0)] = None
    """Seconds from the end of one batch to the start of the next (default 0): a rate limit."""
    retry_failed_batches: Annotated[int | None, Field(ge=0)] = None
    """Times a batch with failed items runs again, for those items only (default 0)."""
    fail_policy: str | float | None = None
    """``"collect"`` (the default), ``"fail_fast"``, or a failed fraction in (0, 1] that
    fails the batch."""
    item_timeout: Annotated[float | None, Field(gt=0)] = None
    """Seconds one item may take (for an ``item_target``: the request's timeout; default 30)."""

    @pydantic.field_validator("fail_policy")
    @classmethod
    def _fail_policy(cls, value: str | float | None) -> str | float | None:
        return None if value is None else check_fail_policy(value)

    def options(self) -> dict[str, Any]:
        """The limits given, as `BatchSpec` fields."""
        return {key: value for key, value in self.model_dump().items() if value is not None}


class ProcessKindConfig(_Section):
    """One ``[[processes.kinds]]`` table: a `tierd.Process` class, or ``steps`` to daemons.

    Or an ``item_target``: a batch whose items (``params["items"]``) are requests.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, strict=True,
        use_attribute_docstrings=True,
    )  # fmt: skip

    kind: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.-]{0,99}$")]
    """The kind's name, as `submit` and `tierd process submit KIND` give it."""
    class_path: Annotated[str | None, Field(alias="class", pattern=r"^[\w.]+:\w+$")] = None
    """A `tierd.Process` subclass, ``module:Class``; or give ``steps`` instead."""
    steps: Annotated[list[StepConfig] | None, Field(min_length=1)] = None
    """Steps that are requests to daemons, in order: ``{name, target, timeout, retry}``."""
    item_target: Annotated[str | None, Field(pattern=r"^[^@\s]+@\d+$")] = None
    """A batch whose items are requests to this daemon, ``daemon@level``: submit it with
    ``{"items": [...]}`` as params, and each item is one request's payload."""
    batch: BatchConfig | None = None
    """A batch's limits (``batch_size``, ``max_concurrent`` items in flight...), for an
    ``item_target`` kind or a `tierd.Batch` class."""
    timeout: Annotated[float | None, Field(gt=0)] = None
    """Seconds the whole process may take (default: the class's, or none)."""
    max_concurrent: Annotated[int | None, Field(ge=1)] = None
    """Processes of the kind running at once (default: the class's, or 10); for a batch, the
    batches running at once (its items in flight are ``batch.max_concurrent``)."""

    @pydantic.field_validator("class_path")
    @classmethod
    def _process_class(cls, value: str | None) -> str | None:
        if value is not None:
            resolve_process_class(value)
        return value

    @pydantic.model_validator(mode="after")
    def _one_source(self) -> ProcessKindConfig:
        sources = [self.class_path, self.steps, self.item_target]
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                "give one of class = 'module:Class', steps = [...] or item_target = 'daemon@level'"
            )
        is_batch = self.item_target is not None or (
            self.class_path is not None
            and issubclass(resolve_process_class(self.class_path), Batch)
        )
        if self.batch is not None and not is_batch:
            raise ValueError("batch applies to a batch: an item_target or a tierd.Batch class")
        if self.batch is not None and self.class_path is not None:
            definition = resolve_process_class(self.class_path).definition()
            assert definition.batch is not None
            dataclasses.replace(definition.batch, **self.batch.options())  # checks the limits
        if self.steps is not None:
            names = [step.name for step in self.steps]
            if len(set(names)) != len(names):
                raise ValueError(f"step names must be distinct: {names}")
        return self

    def definition(self) -> Definition:
        """The `Definition` this table declares."""
        if self.class_path is not None:
            definition = resolve_process_class(self.class_path).definition()
            changes: dict[str, Any] = {"kind": self.kind}
            if self.timeout is not None:
                changes["timeout"] = self.timeout
            if self.max_concurrent is not None:
                changes["max_concurrent"] = self.max_concurrent
            if self.batch is not None and definition.batch is not None:
                changes["batch"] = dataclasses.replace(definition.batch, **self.batch.options())
            return definition.replace(**changes)
        if self.item_target is not None:
            options = self.batch.options() if self.batch is not None else {}
            return request_items(
                self.kind,
                self.item_target,
                options,
                timeout=self.timeout,
                max_concurrent=self.max_concurrent or DEFAULT_MAX_CONCURRENT,
            )
        assert self.steps is not None
        return request_steps(
            self.kind,
            [(s.name, s.target, s.timeout, s.retry_policy()) for s in self.steps],
            timeout=self.timeout,
            max_concurrent=self.max_concurrent or DEFAULT_MAX_CONCURRENT,
        )


class ProcessesConfig(_Section):
    """The ``[processes]`` table: the process store and the kinds this runtime runs."""

    store: str = ""
    """``sqlite:///path/to/processes.db`` ("": ``processes.db`` in ``runtime.data_dir``), or
    ``postgresql://user@host:port/database``: one database several runtimes share
    (needs ``pip install 'tierd[postgresql]'``)."""
    stuck_after: Annotated[Duration, Field(gt=0)] = DEFAULT_STUCK_AFTER
    """Seconds a step may go without a heartbeat before it is taken as stuck and run again."""
    retention: RetentionConfig = RetentionConfig()
    """How long finished processes are kept, by final status; a pruner removes older ones."""
    kinds: list[ProcessKindConfig] = Field(default_factory=list)
    """The kinds of process this runtime runs: ``[[processes.kinds]]`` tables."""

    @pydantic.field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError(
                f"unsupported store {value[:80]!r}: use 'sqlite:///path/to/processes.db', "
                "'postgresql://user@host:port/database', or \"\" for processes.db in "
                "runtime.data_dir"
            )
        return value

    @pydantic.field_validator("kinds")
    @classmethod
    def _unique_kinds(cls, kinds: list[ProcessKindConfig]) -> list[ProcessKindConfig]:
        names = [kind.kind for kind in kinds]
        for position, name in enumerate(names):
            if name in names[:position]:
                raise ValueError(f"process kind {name!r} is declared twice")
        return kinds


class ScheduleConfig(_Section):
    """One ``[[schedules]]`` table: when a process or a notification is fired (DESIGN §11).

    Give ``cron`` or ``every``, and ``process`` or ``target``. Each fire is
    recorded in the process store under its (name, fire time) key first, so
    it runs once however many runtimes share the store.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.-]{0,99}$")]
    """The schedule's name, unique: ``tierd schedules pause NAME``, metric label, event topic."""
    cron: str | None = None
    """Five cron fields (minute, hour, day of month, month, day of week), e.g. ``"0 3 * * *"``."""
    every: Annotated[Duration, Field(gt=0)] | None = None
    """Or an interval: seconds, or e.g. ``"15m"``; fires at its multiples since the epoch."""
    timezone: str = "UTC"
    """The IANA timezone ``cron`` is read in, e.g. ``"Europe/Paris"`` (DST handled by cronsim)."""
    process: str | None = None
    """The process kind each fire submits (a ``[[processes.kinds]]`` kind); or give ``target``."""
    target: Annotated[str | None, Field(pattern=r"^[^@\s]+@\d+$")] = None
    """The daemon each fire sends a notification to, ``daemon@level``; or give ``process``."""
    params: Any = None
    """The process's params, or the notification's payload."""
    overlap: Overlap = "skip"
    """While the last run is unfinished: ``skip`` the fire, ``queue`` it (one), or ``allow`` it."""
    catch_up: Annotated[Duration, Field(ge=0)] = 0.0
    """Seconds of fires missed while no runtime ran that are run at start; 0: none."""

    @pydantic.field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        zone(value)
        return value

    @pydantic.field_validator("cron")
    @classmethod
    def _good_cron(cls, value: str | None) -> str | None:
        if value is not None:
            Cron(value)
        return value

    @pydantic.model_validator(mode="after")
    def _one_of_each(self) -> ScheduleConfig:
        if (self.cron is None) == (self.every is None):
            wrong = "not both" if self.cron is not None else "there is neither"
            raise ValueError(
                f"cron and every: give one of them (cron = '* * * * *' or every = 60), {wrong}"
            )
        if (self.process is None) == (self.target is None):
            wrong = "not both" if self.process is not None else "there is neither"
            raise ValueError(
                "process and target: give one of them (process = 'kind' or "
                f"target = 'daemon@level'), {wrong}"
            )
        if self.target is not None and self.overlap != "skip":
            raise ValueError(
                "overlap: applies to process schedules only (a notification has no run to overlap)"
            )
        return self

    def spec(self) -> ScheduleSpec:
        """The `ScheduleSpec` this table declares."""
        trigger = Cron(self.cron, self.timezone) if self.cron is not None else None
        return ScheduleSpec(
            self.name,
            trigger if trigger is not None else Every(self.every or 0.0),
            process=self.process,
            target=self.target,
            params=self.params,
            overlap=self.overlap,
            catch_up=self.catch_up,
        )


class Config(_Section):
    """A whole topology: the runtime, its levels, and the levels its peers serve."""

    runtime: RuntimeConfig = RuntimeConfig()
    """The ``[runtime]`` table."""
    levels: Annotated[list[LevelConfig], Field(min_length=1)]
    """The levels this runtime serves: ``[[levels]]`` tables, at least one."""
    peers: list[PeerConfig] = Field(default_factory=list)
    """Levels served by other runtimes: ``[[peers]]`` tables."""
    processes: ProcessesConfig | None = None
    """Processes this runtime runs; None (no ``[processes]`` table): none, and no store."""
    schedules: list[ScheduleConfig] = Field(default_factory=list)
    """Processes and notifications fired on time: ``[[schedules]]`` tables, kept in the store."""

    @pydantic.model_validator(mode="after")
    def _levels_unique(self) -> Config:
        # One line per problem, each starting with its key: parse_config splits them.
        problems: list[str] = []
        local: set[int] = set()
        for index, level in enumerate(self.levels):
            if level.level in local:
                problems.append(f"levels[{index}].level: level {level.level} is defined twice")
            local.add(level.level)
        remote: dict[int, str] = {}
        for index, peer in enumerate(self.peers):
            for level_number in peer.levels:
                key = f"peers[{index}].levels"
                if level_number in local:
                    problems.append(
                        f"{key}: level {level_number} is both local and served by peer "
                        f"{peer.endpoint}; serve it here or there"
                    )
                elif level_number in remote:
                    problems.append(
                        f"{key}: level {level_number} is served by two peers, "
                        f"{remote[level_number]} and {peer.endpoint}"
                    )
                remote.setdefault(level_number, peer.endpoint)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @pydantic.model_validator(mode="after")
    def _schedules_resolve(self) -> Config:
        """Refuse duplicate schedule names, unknown process kinds and unserved targets."""
        served = {level.level: {d.id for d in level.daemons} for level in self.levels}
        remote = {number for peer in self.peers for number in peer.levels}
        kinds = [kind.kind for kind in self.processes.kinds] if self.processes else []
        problems, names = [], set()
        for index, schedule in enumerate(self.schedules):
            key = f"schedules[{index}]"
            if schedule.name in names:
                problems.append(f"{key}.name: schedule {schedule.name!r} is declared twice")
            names.add(schedule.name)
            if schedule.process is not None and schedule.process not in kinds:
                runs = ", ".join(kinds) if kinds else "none (add [[processes.kinds]])"
                problems.append(
                    f"{key}.process: unknown process kind {schedule.process!r}; "
                    f"this runtime runs: {runs}"
                )
            if schedule.target is not None:
                problem = _unserved(schedule.target, served, remote)
                if problem:
                    problems.append(f"{key}.target: {problem}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def local_levels(self) -> list[int]:
        """The numbers of the levels this runtime serves itself, in config order."""
        return [level.level for level in self.levels]

    @pydantic.model_validator(mode="after")
    def _network_secure_enough(self) -> Config:
        """Refuse to listen or talk beyond loopback without CURVE, unless ``insecure`` says so."""
        # One line per problem, each starting with its key.
        runtime, problems = self.runtime, []
        if bool(runtime.curve_secret_key) != bool(runtime.curve_allowed_clients):
            problems.append(
                "runtime.curve_secret_key: CURVE needs both curve_secret_key (this runtime's "
                "key pair) and curve_allowed_clients (the allowed public keys and their roles)"
            )
        open_to_anyone = not runtime.curve_secret_key and not runtime.insecure
        if runtime.endpoint and open_to_anyone and not is_loopback_endpoint(runtime.endpoint):
            problems.append(
                f"runtime.endpoint: {runtime.endpoint!r} is not loopback: set curve_secret_key "
                "and curve_allowed_clients (see 'tierd keys generate'), or insecure = true "
                "to let anyone who reaches it send"
            )
        http_host = runtime.http.rpartition(":")[0]
        if runtime.http and not runtime.http_tokens and not is_loopback_host(http_host):
            problems.append(
                f"runtime.http_tokens: the HTTP API on {runtime.http!r} is not loopback: "
                'give bearer tokens ([{ token_file = "secrets/ops.token", role = "operate" }]) '
                "or serve it on 127.0.0.1 behind a proxy"
            )
        if runtime.events and open_to_anyone and not is_loopback_endpoint(runtime.events):
            problems.append(
                f"runtime.events: {runtime.events!r} is not loopback: set curve_secret_key "
                "and curve_allowed_clients (see 'tierd keys generate'), or insecure = true "
                "to let anyone who reaches it read every event"
            )
        if runtime.events and runtime.events == runtime.endpoint:
            problems.append(
                f"runtime.events: {runtime.events!r} is runtime.endpoint too; give it its own port"
            )
        for index, peer in enumerate(self.peers):
            if peer.server_key and not runtime.curve_secret_key:
                problems.append(
                    f"peers[{index}].server_key: talking CURVE to {peer.endpoint} needs "
                    "runtime.curve_secret_key, this runtime's key pair"
                )
            in_the_clear = not peer.server_key and not runtime.insecure
            if in_the_clear and not is_loopback_endpoint(peer.endpoint):
                problems.append(
                    f"peers[{index}].server_key: {peer.endpoint} is not loopback: set the "
                    "peer's public key file here, or runtime.insecure = true"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @pydantic.model_validator(mode="after")
    def _addresses_served(self) -> Config:
        """Refuse an address option (a Relay's ``to``) that no level of the topology serves.

        A daemon class names the options that hold an address it sends to in
        its ``address_options`` class attribute (`tierd.actors.builtin.Relay`:
        ``("to",)``). A level served by a peer is taken on trust: its daemons
        are that runtime's to check.
        """
        served = {level.level: {d.id for d in level.daemons} for level in self.levels}
        remote = {number for peer in self.peers for number in peer.levels}
        problems = []
        for level_index, level in enumerate(self.levels):
            for index, daemon in enumerate(level.daemons):
                for name in address_options(resolve_class(daemon.class_path)):
                    value = daemon.options.get(name)
                    if value is None or value == "":
                        continue  # an optional address left out
                    problem = _unserved(value, served, remote)
                    if problem:
                        key = f"levels[{level_index}].daemons[{index}].options.{name}"
                        problems.append(f"{key}: {problem}")
        if problems:
            raise ValueError("\n".join(problems))
        return self


def _unserved(value: Any, served: dict[int, set[str]], remote: set[int]) -> str:
    """Why no daemon of the topology answers to ``value``; "" if one does (or may)."""
    try:
        address = Address.parse(value)
    except ValueError as error:
        return str(error)
    if address.level in remote:
        return ""
    daemons = served.get(address.level)
    if daemons is None:
        levels = ", ".join(str(number) for number in sorted(served))
        peers = f"; its peers serve {', '.join(str(n) for n in sorted(remote))}" if remote else ""
        return (
            f"no level serves {value!r}: this runtime serves level(s) {levels}{peers}; "
            f"fix the address, or add level {address.level} under [[levels]] or [[peers]]"
        )
    if address.daemon not in daemons:
        return (
            f"level {address.level} has no daemon {address.daemon!r} "
            f"(it has {', '.join(sorted(daemons))})"
        )
    return ""


_QUOTED_TYPES: Final = {
    "int_type": "write the number without quotes",
    "float_type": "write the number without quotes",
    "bool_type": "write true or false, without quotes",
}
"""Strict-type errors for a quoted value, and how to write it instead."""


def resolve_process_class(class_path: str) -> type[Process]:
    """Import ``module:Class`` and check that it is a `tierd.Process` with steps.

    Raises:
        ValueError: it cannot be imported, is not a Process subclass, or its steps are wrong.
    """
    found = import_class(class_path, Process)
    try:
        found.definition()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{class_path}: {error}") from None
    return found


def _key_path(location: tuple[int | str, ...], data: Any) -> str:
    """``('levels', 0, 'daemons', 1, 'class')`` -> ``levels[0].daemons[1].class``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in {"function-after", "function-before"} and not part.startswith("function-"):
            text += ("." if text else "") + part
    return text


def parse_config(
    data: dict[str, Any], source: str = "<config>", *, import_path: Iterable[str | Path] = ()
) -> Config:
    """Check a config already read into a dict.

    Args:
        data: the config, as `tomllib` reads it.
        source: what to name in each problem, usually the file.
        import_path: directories to put at the front of `sys.path` (see
            `extend_import_path`) before the daemon classes are imported.

    Raises:
        ConfigError: one problem per line, each naming ``source`` and the key.
    """
    context = {_IMPORT_PATH: extend_import_path(import_path)}
    try:
        return Config.model_validate(data, context=context)
    except pydantic.ValidationError as invalid:
        problems = []
        for error in invalid.errors():
            key = _key_path(error["loc"], data)
            text = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                text = "unknown key"
            elif error["type"] in _QUOTED_TYPES and isinstance(error.get("input"), str):
                text += f", not the string {error['input']!r}: {_QUOTED_TYPES[error['type']]}"
            if key:
                problems.append(f"{source}: {key}: {text}")
            else:  # a check across keys: its lines name their own keys
                problems.extend(f"{source}: {line}" for line in text.splitlines())
        raise ConfigError(problems) from None


def override_runtime(config: Config, source: str, **changes: Any) -> Config:
    """A copy of ``config`` with some ``[runtime]`` keys changed, checked again.

    Raises:
        ConfigError: a changed value is invalid; the problem names ``source`` and the key.
    """
    data = config.model_dump(by_alias=True)
    data["runtime"].update(changes)
    return parse_config(data, source)


def load_config(path: str | Path, *, import_path: Iterable[str | Path] = ()) -> Config:
    """Read and check a TOML topology.

    Args:
        path: the TOML file.
        import_path: directories to put at the front of `sys.path` before the
            daemon classes are imported; ``tierd run`` and ``tierd check`` pass
            every ``--app-dir``, the config's directory and the current directory.

    Raises:
        ConfigError: the file is missing, is not TOML, or is not a valid topology.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: the file is not UTF-8") from None
    return parse_config(data, str(path), import_path=import_path)


def is_loopback_endpoint(endpoint: str) -> bool:
    """Whether a ``tcp://`` endpoint binds only the loopback interface (ipc and inproc do)."""
    match = _ENDPOINT.match(endpoint)
    host = match.group("host") if match else None
    return host is None or is_loopback_host(host)
