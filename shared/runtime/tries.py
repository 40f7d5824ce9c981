"""Tries counted per key in a service's database, locked past a number: the one count behind every rate-limited
way in — wrong access codes per INE (services/registration/access_codes.py, in its own table), sign-ins started
from one browser address without a verified answer (EduConnect's /saml/login; the académie's /auth/login on
each service's pages, shared/web/oidc.py, in `sign_in_starts`).

A table of tries has its key as primary key and the columns `failures`, `last_failure_at` and `locked_until`.
A row lives only while it matters (KEPT_SECONDS after its last try, or while its lock runs): deleted at the next
try, and by each service's task every FORGET_EVERY_SECONDS (forget_old_tries). In the database,
so that the limit holds across a service's processes; `now` is always given (aware), so tests move the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Column, Connection, DateTime, Engine, Index, Integer, MetaData, String, Table, delete, select, update,
)
from sqlalchemy.dialects import postgresql, sqlite

from shared.runtime.db import new_metadata

LOCK_SECONDS = 15 * 60
KEPT_SECONDS = 3600  # tries older than this, with no lock running, are forgotten
# How often each service deletes the tries past KEPT_SECONDS without waiting for another try (forget_old_tries, run by
# shared/runtime/http/app.py): a row outlives its hour by at most this much.
FORGET_EVERY_SECONDS = 60
# Sign-ins started from one browser address without a verified answer, before the address is locked: a whole class
# or staff room signing in at once from its establishment's one address stays under it.
STARTS_PER_ADDRESS = 30
# Derives the key of the address digests from the service's master key (Runtime.address_secret): every process
# sharing the master key counts an address under the same key.
ADDRESS_KEY_INFO = b"passpro-sign-in-address-v1"


def sign_in_starts_table(metadata: MetaData) -> Table:
    """Sign-ins started per browser address (`address_key`). Each page service's migration creates it
    (`create_sign_in_starts_table`)."""
    return Table(
        "sign_in_starts",
        metadata,
        Column("address", String(16), primary_key=True),
        Column("failures", Integer, nullable=False),
        Column("last_failure_at", DateTime(timezone=True), nullable=False),
        Column("locked_until", DateTime(timezone=True)),
        Index("ix_sign_in_starts_last_failure_at", "last_failure_at"),
    )


# The services' connections see their own schema (db.make_engine), so one Table object serves them all.
sign_in_starts = sign_in_starts_table(new_metadata())


def create_sign_in_starts_table() -> None:
    """For a page service's migration. Frozen: a later change to the table is a new migration, never an edit."""
    import sqlalchemy as sa
    from alembic import op

    op.create_table(
        "sign_in_starts",
        sa.Column("address", sa.String(16), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_sign_in_starts_last_failure_at", "sign_in_starts", ["last_failure_at"])


def drop_sign_in_starts_table() -> None:
    from alembic import op

    op.drop_index("ix_sign_in_starts_last_failure_at", "sign_in_starts")
    op.drop_table("sign_in_starts")


def address_key(secret: bytes, host: str | None) -> str:
    """The sign-in starts' count key of a browser's address: `@` and 10 hex digits of its HMAC-SHA256 under
    `secret` — never the address itself, nor a digest anyone can reverse by trying IPv4's 2^32 addresses without
    the key; never an INE's shape either, as registration counts EduConnect's starts beside the INEs' wrong codes.
    (The unkeyed digests written before are never matched again and go with the other old rows.)"""
    return "@" + hmac.new(secret, (host or "").encode(), hashlib.sha256).hexdigest()[:10]


def _key(table: Table) -> Column:
    (column,) = table.primary_key.columns
    return column


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they were stored in UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def lock_left(conn: Connection, table: Table, key: str, now: datetime) -> int | None:
    """The seconds left of `key`'s lock, None when it is not locked."""
    row = conn.execute(select(table.c.locked_until).where(_key(table) == key)).first()
    locked_until = aware(row.locked_until) if row else None
    if locked_until is not None and locked_until > now:
        return max(1, math.ceil((locked_until - now).total_seconds()))
    return None


def count_failure(conn: Connection, table: Table, key: str, now: datetime, most: int) -> None:
    """One more try for `key`, in one statement (two processes counting at once both count); the `most`-th
    locks it for LOCK_SECONDS and starts the count again."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values({_key(table).name: key, "failures": 1, "last_failure_at": now,
                                         "locked_until": None})
    stmt = stmt.on_conflict_do_update(
        index_elements=[_key(table).name],
        set_={"failures": table.c.failures + 1, "last_failure_at": now},
    ).returning(table.c.failures)
    failures = conn.execute(stmt).scalar_one()
    if failures >= most:
        conn.execute(
            update(table).where(_key(table) == key).values(failures=0, locked_until=now + timedelta(seconds=LOCK_SECONDS))
        )


def forget_old_failures(conn: Connection, table: Table, now: datetime) -> None:
    old = now - timedelta(seconds=KEPT_SECONDS)
    conn.execute(
        delete(table).where(
            table.c.last_failure_at < old, (table.c.locked_until.is_(None)) | (table.c.locked_until < now)
        )
    )


def forget_old_tries(engine: Engine, tables: Iterable[Table], now: datetime) -> None:
    """Every table's tries past KEPT_SECONDS with no lock running deleted at `now`: the service's periodic task, so
    that the last rows go although no one tries again."""
    with engine.begin() as conn:
        for table in tables:
            forget_old_failures(conn, table, now.astimezone(UTC))


def count_try(conn: Connection, table: Table, key: str, now: datetime, most: int) -> int | None:
    """One more try under `key`, the `most`-th locking it for LOCK_SECONDS. Returns the seconds left when `key`
    is locked (this try not counted), else None."""
    now = now.astimezone(UTC)
    if (left := lock_left(conn, table, key, now)) is not None:
        return left
    forget_old_failures(conn, table, now)
    count_failure(conn, table, key, now, most)
    return None


def forget_tries(conn: Connection, table: Table, key: str) -> None:
    """`key`'s count cleared (a right code, a verified answer)."""
    conn.execute(delete(table).where(_key(table) == key))
