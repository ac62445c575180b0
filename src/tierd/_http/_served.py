"""`Served`: what the HTTP API needs of a runtime (a `tierd.Runtime` is one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..messaging.message import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from ..config import Config


class Served(Protocol):
    """What the HTTP API serves: a `tierd.Runtime`."""

    @property
    def config(self) -> Config:
        """The topology."""

    def send(
        self, target: str, payload: Any = None, *, priority: int | str = "normal",
        timeout: float = DEFAULT_TIMEOUT, wait: bool = False, delay: float | None = None,
        not_before: float | None = None,
    ) -> str:  # fmt: skip
        """Send a notification; its id."""

    def request(
        self, target: str, payload: Any = None, *, timeout: float = DEFAULT_TIMEOUT,
        priority: int | str = "normal",
    ) -> Any:  # fmt: skip
        """Send a request; the reply's payload."""

    def status(self) -> dict[str, Any]:
        """The status document of ``tierd status --json``."""

    def control(self, operation: str, arguments: dict[str, Any]) -> Any:
        """Run one control operation (`tierd._control`)."""
