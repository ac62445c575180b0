"""Daemons for an import pipeline: validation → collection → conversion → integration → saving.

Each step is a daemon that does its part and then relays the result to the
next step (option ``to``) with a request, so one import is one chain of requests that shares
one trace id, and the reply to the first step is the receipt of the last.
``configs/pipeline.toml`` wires them up::

    tierd request validate@1 '{"source": "crm", "records": [{"id": 1, "email": " A@B.org "}]}'

An import is ``{"source": name, "records": [record, ...]}`` where each record
is a table with an ``id``. `RecordImporter` imports one record on its own: the
item handler of the ``import_category`` batch of ``configs/import-pipeline.toml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..messaging.message import Address
from .daemon import Daemon

if TYPE_CHECKING:
    from ..messaging.message import Message

__all__ = ["Collector", "Converter", "Integrator", "RecordImporter", "Saver", "Validator"]


class Step(Daemon):
    """One step: `process` the payload, then relay the result to ``to`` (if any), like a Relay.

    Args:
        to: the address of the next step, e.g. ``"collect@1"``; "" for the last step.
        timeout: seconds to wait for the rest of the pipeline.
    """

    def __init__(self, to: str = "", timeout: float = 30.0) -> None:
        self.to = Address.parse(to) if to else None
        self.timeout = timeout

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Check that ``to`` is an address."""
        super().check_options(options)
        if options.get("to"):
            try:
                Address.parse(options["to"])
            except ValueError as error:
                raise ValueError(f"option 'to': {error}") from None

    def handle(self, message: Message) -> Any:
        """Process the payload and hand the result to the next step; reply with its reply."""
        result = self.process(message.payload)
        if self.to is None:
            return result
        return self.request(self.to, result, timeout=self.timeout, priority=message.priority)

    def process(self, payload: Any) -> Any:
        """Do this step's work; raise ``ValueError`` to refuse the import."""
        raise NotImplementedError


class Validator(Step):
    """Refuses an import that is not ``{"source": str, "records": [{"id": ...}, ...]}``."""

    def process(self, payload: Any) -> Any:
        """Check the import's shape."""
        if not isinstance(payload, dict) or not isinstance(payload.get("source"), str):
            raise ValueError('an import is {"source": name, "records": [...]}')
        records = payload.get("records")
        if not isinstance(records, list):
            raise ValueError("'records' must be a list")
        for position, record in enumerate(records):
            if not isinstance(record, dict) or "id" not in record:
                raise ValueError(f"record {position} is not a table with an 'id'")
        return payload


class Collector(Step):
    """Collects the records: drops duplicates by ``id``; the last one wins and takes its place."""

    def process(self, payload: Any) -> Any:
        """Deduplicate the records."""
        by_id: dict[Any, dict[str, Any]] = {}
        for record in payload["records"]:
            by_id.pop(record["id"], None)
            by_id[record["id"]] = record
        return {
            **payload,
            "records": list(by_id.values()),
            "duplicates": len(payload["records"]) - len(by_id),
        }


class Converter(Step):
    """Converts values: trims strings, lower-cases ``email``, turns numeric strings into numbers."""

    def process(self, payload: Any) -> Any:
        """Normalise every record."""
        return {**payload, "records": [_convert(record) for record in payload["records"]]}


def _convert(record: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, str):
            text = value.strip()
            converted[key] = text.lower() if key == "email" else _number(text)
        else:
            converted[key] = value
    return converted


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


class Integrator(Step):
    """Integrates the records with reference data: fills ``defaults``, tags each with its source.

    Args:
        defaults: values for fields a record lacks.
    """

    def __init__(
        self, to: str = "", timeout: float = 30.0, defaults: dict[str, Any] | None = None
    ) -> None:
        super().__init__(to, timeout)
        self.defaults = dict(defaults or {})

    def process(self, payload: Any) -> Any:
        """Fill defaults and tag the records."""
        source = payload["source"]
        records = [{**self.defaults, **record, "source": source} for record in payload["records"]]
        return {**payload, "records": records}


class Saver(Step):
    """Saves each record by notifying ``store`` (a Recorder, say); replies with a receipt.

    Args:
        store: the address records are sent to, e.g. ``"store@2"``.
    """

    def __init__(self, store: str, to: str = "", timeout: float = 30.0) -> None:
        super().__init__(to, timeout)
        self.store = Address.parse(store)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Check that ``store`` is an address too."""
        super().check_options(options)
        try:
            Address.parse(options["store"])
        except ValueError as error:
            raise ValueError(f"option 'store': {error}") from None

    def process(self, payload: Any) -> Any:
        """Send every record to the store; return the receipt."""
        for record in payload["records"]:
            self.notify(self.store, record)
        return {
            "source": payload["source"],
            "saved": len(payload["records"]),
            "duplicates": payload.get("duplicates", 0),
        }


class RecordImporter(Step):
    """Imports one record: checks it, converts it, saves it to ``store``; replies with a receipt.

    The items of a batch (``item_target = "import_record@1"``) come here one by one.

    Args:
        store: the address records are sent to, e.g. ``"store@2"``.
    """

    def __init__(self, store: str, to: str = "", timeout: float = 30.0) -> None:
        super().__init__(to, timeout)
        self.store = Address.parse(store)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Check that ``store`` is an address too."""
        super().check_options(options)
        try:
            Address.parse(options["store"])
        except (KeyError, ValueError) as error:
            raise ValueError(f"option 'store': {error}") from None

    def process(self, payload: Any) -> Any:
        """Convert and save one record; refuse one that is not a table with an ``id``."""
        if not isinstance(payload, dict) or "id" not in payload:
            raise ValueError("a record is a table with an 'id'")
        record = _convert(payload)
        self.notify(self.store, record)
        return {"id": record["id"], "saved": True}
