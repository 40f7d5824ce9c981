"""SQL engines for the local views: SQLite by default, PostgreSQL in production (one schema per service)."""

from __future__ import annotations

import re

from sqlalchemy import Engine, MetaData, create_engine, event, text

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# Without the ping, a pooled PostgreSQL connection is replaced once this old: before a proxy's or a firewall's
# idle cut-off would drop it unseen (SQLAlchemy's "optimistic" disconnect handling).
POOL_RECYCLE_SECONDS = 300


def make_engine(url: str, schema: str | None = None, *, pre_ping: bool = True) -> Engine:
    """An engine whose connections see the service's own schema (PostgreSQL) or file (SQLite).

    `pre_ping=False` spares the round trip that tests each PostgreSQL connection at checkout: for a caller
    that runs its statement again once when it fails on a dropped connection (`DBAPIError.connection_invalidated`;
    SQLAlchemy then replaces every connection the pool held), as the key store does."""
    if is_sqlite(url):
        # hide_parameters: a failing statement's error (logged, dead-lettered) never carries a row's values.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            # WAL lets the API read while the consumer writes; NORMAL is durable enough with WAL.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Freed space is zeroed: a name replaced by "[effacé]" in a view row leaves no copy in the file.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    return create_engine(
        url, connect_args=connect_args, pool_pre_ping=pre_ping, pool_recycle=-1 if pre_ping else POOL_RECYCLE_SECONDS,
        pool_size=10, max_overflow=10, hide_parameters=True,
    )


def ensure_schema(url: str, schema: str | None) -> None:
    """Create the service's PostgreSQL schema if it does not exist yet (migrations then fill it)."""
    if is_sqlite(url) or not schema:
        return
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()
