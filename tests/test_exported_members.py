"""The public names: what `import tierd` offers, pinned so that a change is deliberate."""

from __future__ import annotations

import tierd

PUBLIC = [
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


def test_all_lists_the_public_names_sorted():
    """`tierd.__all__` is exactly the public API, in order."""
    assert tierd.__all__ == PUBLIC
    assert tierd.__all__ == sorted(tierd.__all__)


def test_every_public_name_is_importable_and_says_where_it_lives():
    """Each name resolves, and lives in a tierd module."""
    for name in tierd.__all__:
        member = getattr(tierd, name)
        assert member.__module__.startswith("tierd."), name


def test_the_version_is_exposed():
    """`tierd.__version__` is the package's version."""
    assert tierd.__version__.count(".") == 2
