"""Which `ProcessStore` a ``[processes] store`` URL names, opened (and migrated).

``sqlite:///path`` (or "": ``processes.db`` in ``runtime.data_dir``) is
`SqliteProcessStore`; ``postgresql://…`` (or ``postgres://…``) is
`PostgresProcessStore`, imported only then, so psycopg is needed only by
those who use it (``pip install 'tierd[postgresql]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ..errors import ConfigError
from ._sqlite import SqliteProcessStore, store_path

if TYPE_CHECKING:
    from ._store import ProcessStore

POSTGRESQL_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgresql(url: str) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) store URL."""
    return url.startswith(POSTGRESQL_SCHEMES)


def open_store(
    url: str, data_dir: str, *, name: str = "tierd", poll_interval: float = 1.0
) -> ProcessStore:
    """Open the store ``url`` names, migrating its schema to this tierd's.

    Args:
        url: the ``[processes] store`` value.
        data_dir: ``runtime.data_dir``, where "" puts ``processes.db``.
        name: the runtime's name, for logs.
        poll_interval: PostgreSQL: seconds between two checks for work other
            runtimes submitted when no notification came.

    Raises:
        ConfigError: the store cannot be opened (unreachable, locked, newer
            schema, psycopg missing); names ``[processes] store``.
    """
    if is_postgresql(url):
        try:
            from ._postgres import PostgresProcessStore  # noqa: PLC0415 - psycopg is optional
        except ImportError as error:
            raise ConfigError(
                f"[processes] store: a PostgreSQL store needs psycopg ({error}); "
                "install it with: pip install 'tierd[postgresql]'"
            ) from None
        return PostgresProcessStore(url, name=name, poll_interval=poll_interval)
    try:
        path = store_path(url, data_dir)
    except ValueError as error:
        raise ConfigError(f"[processes] store: {error}") from None
    return SqliteProcessStore(path, name=name)


def migrate_store(url: str, data_dir: str) -> tuple[int, int]:
    """Bring the store's schema to this tierd's; (version before, version after).

    Opening a store migrates it; this does only that (``tierd store migrate``).

    Raises:
        ConfigError: as `open_store`.
    """
    if is_postgresql(url):
        try:
            from ._postgres import migrate  # noqa: PLC0415 - psycopg is optional
        except ImportError as error:
            raise ConfigError(
                f"[processes] store: a PostgreSQL store needs psycopg ({error}); "
                "install it with: pip install 'tierd[postgresql]'"
            ) from None
        return migrate(url)
    try:
        path = store_path(url, data_dir)
    except ValueError as error:
        raise ConfigError(f"[processes] store: {error}") from None
    before = SqliteProcessStore.schema_of(path)
    store = SqliteProcessStore(path)
    try:
        return before, store.schema_version
    finally:
        store.close()
