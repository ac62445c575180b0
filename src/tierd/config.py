"""The topology config: a TOML file read with `tomllib`, checked with pydantic.

`load_config` refuses a bad config before anything starts, with one line per
problem naming the file, the key and what is wrong.
"""

from __future__ import annotations

import importlib
import inspect
import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from .actors.daemon import Daemon
from .errors import ConfigError
from .orchestrators._retries import DEFAULT_POISON_AFTER, RetryPolicy
from .orchestrators._supervision import RestartPolicy, SupervisionPolicy

DEFAULT_TOPOLOGY = Path(__file__).with_name("default.toml")
MAX_INSTANCES = 64
"""The most instances one daemon may have: they are threads, and metric label values."""
"""The topology `tierd run` runs when it is given no config."""

_ENDPOINT = re.compile(
    r"^(tcp://(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):(?P<port>\d{1,5})|ipc://\S+|inproc://\S+)$"
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RestartConfig(_Section):
    """``restart = {...}`` of a daemon: see `RestartPolicy`."""

    initial_delay: Annotated[float, Field(ge=0)] = 0.1
    multiplier: Annotated[float, Field(ge=1)] = 2.0
    max_delay: Annotated[float, Field(ge=0)] = 5.0
    max_restarts: Annotated[int, Field(ge=0)] = 5
    window: Annotated[float, Field(gt=0)] = 60.0

    def policy(self) -> RestartPolicy:
        """The `RestartPolicy` these values describe."""
        return RestartPolicy(**self.model_dump())


class RetryConfig(_Section):
    """``retry = {...}`` of a daemon: see `RetryPolicy`.

    ``backoff_multiplier`` is accepted as another name for ``multiplier``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 3
    initial_delay: Annotated[float, Field(ge=0)] = 0.5
    multiplier: Annotated[float, Field(ge=1, validation_alias=pydantic.AliasChoices(
        "multiplier", "backoff_multiplier"))] = 2.0  # fmt: skip
    max_delay: Annotated[float, Field(ge=0)] = 30.0
    on: Annotated[list[Annotated[str, Field(pattern=r"^\w+$")]], Field(min_length=1)]

    def policy(self) -> RetryPolicy:
        """The `RetryPolicy` these values describe."""
        return RetryPolicy(
            self.max_attempts, self.initial_delay, self.multiplier, self.max_delay, tuple(self.on)
        )


class SupervisionConfig(_Section):
    """``supervision = {...}`` of a daemon: see `SupervisionPolicy`.

    Exception class names (a subclass of one matches) whose raise restarts
    the daemon or gives it up; any other exception resumes it, keeping its
    instance and its state. tierd's own errors always resume.
    """

    restart: list[Annotated[str, Field(pattern=r"^\w+$")]] = Field(default_factory=list)
    stop: list[Annotated[str, Field(pattern=r"^\w+$")]] = Field(default_factory=list)

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
    """One ``[[levels.daemons]]`` table; in Python, pass ``class_path=`` for ``class``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: Annotated[str, Field(min_length=1, pattern=r"^[^@\s]+$")]
    class_path: Annotated[str, Field(alias="class", pattern=r"^[\w.]+:\w+$")]
    options: dict[str, Any] = Field(default_factory=dict)
    prefetch: Annotated[int, Field(ge=1)] = 1
    instances: Annotated[int, Field(ge=1, le=MAX_INSTANCES, strict=True)] = 1
    restart: RestartConfig = RestartConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    retry: RetryConfig | None = None
    poison_after: Annotated[int, Field(ge=1)] = DEFAULT_POISON_AFTER

    @pydantic.field_validator("class_path")
    @classmethod
    def _class_exists(cls, value: str) -> str:
        resolve_class(value)
        return value

    @pydantic.model_validator(mode="after")
    def _options_fit(self) -> DaemonConfig:
        daemon_class = resolve_class(self.class_path)
        try:
            daemon_class.check_options(self.options)
        except (TypeError, ValueError) as error:
            raise ValueError(f"options do not fit {self.class_path}: {error}") from None
        return self


class LevelConfig(_Section):
    """One ``[[levels]]`` table."""

    level: Annotated[int, Field(ge=1)]
    daemons: Annotated[list[DaemonConfig], Field(min_length=1)]
    queue_limit: Annotated[int, Field(ge=1)] = 100_000
    dead_letter_limit: Annotated[int, Field(ge=1)] = 10_000
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


def _check_endpoint(value: str) -> str:
    match = _ENDPOINT.match(value)
    if match is None:
        raise ValueError(f"bad endpoint {value!r}: expected e.g. 'tcp://127.0.0.1:5555'")
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port} in endpoint {value!r}")
    return value


Endpoint = Annotated[str, pydantic.AfterValidator(_check_endpoint)]


def _check_own_endpoint(value: str) -> str:
    return value if value == "" else _check_endpoint(value)


class PeerConfig(_Section):
    """One ``[[peers]]`` table: levels served by another runtime."""

    endpoint: Endpoint
    levels: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]
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


class RuntimeConfig(_Section):
    """The ``[runtime]`` table."""

    name: Annotated[str, Field(min_length=1)] = "tierd"
    endpoint: Annotated[str, pydantic.AfterValidator(_check_own_endpoint)] = "tcp://127.0.0.1:5555"
    """ZeroMQ ROUTER for clients and peers; "" serves no network (in-process use only)."""
    metrics: Annotated[str, pydantic.AfterValidator(_check_metrics)] = "127.0.0.1:9464"
    """Prometheus exporter, ``host:port``; port 0 picks a free port; "" turns it off."""
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    sweep_interval: Annotated[float, Field(gt=0, le=60)] = 0.1
    grace_period: Annotated[float, Field(ge=0)] = 5.0
    data_dir: Annotated[str, Field(min_length=1)] = "./tierd-data"
    """Where durable levels keep their journals (relative to the working directory)."""
    max_message_bytes: Annotated[int, Field(ge=1024, le=1 << 30)] = 1 << 20
    """The largest frame accepted from or sent to the network, in bytes."""
    dedup_window: Annotated[float, Field(gt=0)] = 600.0
    """Seconds a network message id is remembered, so that a resend is not handled twice."""
    curve_secret_key: str = ""
    """This runtime's CURVE key pair (a ``.key_secret`` file from ``tierd keys generate``)."""
    curve_allowed_clients: str = ""
    """A directory of the ``.key`` public keys allowed to connect (clients and peers)."""
    insecure: bool = False
    """Allow binding a non-loopback endpoint without CURVE: anyone who reaches it can send."""


class Config(_Section):
    """A whole topology."""

    runtime: RuntimeConfig = RuntimeConfig()
    levels: Annotated[list[LevelConfig], Field(min_length=1)]
    peers: list[PeerConfig] = Field(default_factory=list)

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
                "key pair) and curve_allowed_clients (a directory of allowed public keys)"
            )
        open_to_anyone = not runtime.curve_secret_key and not runtime.insecure
        if runtime.endpoint and open_to_anyone and not is_loopback_endpoint(runtime.endpoint):
            problems.append(
                f"runtime.endpoint: {runtime.endpoint!r} is not loopback: set curve_secret_key "
                "and curve_allowed_clients (see 'tierd keys generate'), or insecure = true "
                "to let anyone who reaches it send"
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


def resolve_class(class_path: str) -> type[Daemon]:
    """Import ``module:Class`` and check that it is a `Daemon`.

    Raises:
        ValueError: it cannot be imported, or it is not a Daemon subclass.
    """
    module_name, _, class_name = class_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"unknown class {class_path!r}: cannot import {module_name}: {error}"
        ) from None
    found = getattr(module, class_name, None)
    if not (inspect.isclass(found) and issubclass(found, Daemon)):
        raise ValueError(
            f"unknown class {class_path!r}: no Daemon subclass {class_name} in {module_name}"
        )
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


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Check a config already read into a dict.

    Raises:
        ConfigError: one problem per line, each naming ``source`` and the key.
    """
    try:
        return Config.model_validate(data)
    except pydantic.ValidationError as invalid:
        problems = []
        for error in invalid.errors():
            key = _key_path(error["loc"], data)
            text = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                text = "unknown key"
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


def load_config(path: str | Path) -> Config:
    """Read and check a TOML topology.

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
    return parse_config(data, str(path))


def is_loopback_endpoint(endpoint: str) -> bool:
    """Whether a ``tcp://`` endpoint binds only the loopback interface (ipc and inproc do)."""
    match = _ENDPOINT.match(endpoint)
    host = match.group("host") if match else None
    if host is None:
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
