"""tierd: an actor-based message orchestrator.

Daemons are Pykka actors grouped into levels; each level's orchestrator
queues messages by priority and hands one to a daemon only when it is IDLE.
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
    ItemRefusal,
    MetricsServerError,
    Rejected,
    RemoteError,
    RequestTimeout,
    TierdError,
    UnknownRecipient,
)
from .messaging._transport.async_client import AsyncClient
from .messaging._transport.client import Client
from .messaging.message import Address, Message
from .runtime import Runtime

__all__ = [
    "Address",
    "AsyncClient",
    "BatchRejected",
    "BindError",
    "Cancelled",
    "Client",
    "Config",
    "ConfigError",
    "Daemon",
    "DaemonState",
    "Deadlock",
    "ItemRefusal",
    "Message",
    "MetricsServerError",
    "Rejected",
    "RemoteError",
    "RequestTimeout",
    "Runtime",
    "TierdError",
    "UnknownRecipient",
    "load_config",
]
