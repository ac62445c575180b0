"""tierd: an actor-based message orchestrator.

Daemons are Pykka actors grouped into levels; each level's orchestrator
queues messages by priority and hands one to a daemon only when it is IDLE.
Processes (`Process`, `step`) are durable multi-step work on top of them.
"""

from ._version import __version__ as __version__
from .actors.daemon import Daemon
from .actors.states import DaemonState
from .config import Config, load_config
from .errors import (
    BatchRejected,
    BindError,
    Cancelled,
    ConfigError,
    Deadlock,
    HttpServerError,
    ItemRefusal,
    MetricsServerError,
    ProcessFailed,
    ProcessNotFound,
    Rejected,
    RemoteError,
    RequestTimeout,
    ScheduleNotFound,
    StepError,
    TierdError,
    UnknownRecipient,
)
from .messaging._transport.async_client import AsyncClient
from .messaging._transport.client import Client
from .messaging.message import Address, Message
from .processes._batch import Batch
from .processes._context import StepContext
from .processes._definition import Process, Retry, step
from .runtime import Runtime

__all__ = [
    "Address",
    "AsyncClient",
    "Batch",
    "BatchRejected",
    "BindError",
    "Cancelled",
    "Client",
    "Config",
    "ConfigError",
    "Daemon",
    "DaemonState",
    "Deadlock",
    "HttpServerError",
    "ItemRefusal",
    "Message",
    "MetricsServerError",
    "Process",
    "ProcessFailed",
    "ProcessNotFound",
    "Rejected",
    "RemoteError",
    "RequestTimeout",
    "Retry",
    "Runtime",
    "ScheduleNotFound",
    "StepContext",
    "StepError",
    "TierdError",
    "UnknownRecipient",
    "load_config",
    "step",
]
