"""The Celery app of the Celery baseline: one echo task, broker and results in Redis.

The broker address comes from ``TIERD_BENCH_REDIS`` (``redis://127.0.0.1:PORT/0``).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

redis_url = os.environ.get("TIERD_BENCH_REDIS", "redis://127.0.0.1:6379/0")
app = Celery("tierd_bench", broker=redis_url, backend=redis_url)
app.conf.update(task_serializer="msgpack", result_serializer="msgpack", accept_content=["msgpack"])


@app.task(name="echo")
def echo(payload: Any) -> Any:
    """Return the payload unchanged."""
    return payload
