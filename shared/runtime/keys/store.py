"""The key store: each student's wrapped data key, in a database of its own, outside the log.

Every service opens the same key store (`PASSPRO_KEYSTORE_DATABASE_URL`, by
default `keys.sqlite3` under the data dir): the first write about a student
makes their key, every reader unwraps it. Erasing a student (`passpro forget`)
deletes the wrapped key and keeps a row saying when: the key is gone for good,
and a later write about that student is refused instead of getting a new key.
A purged campaign's rows are deleted with it.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import (
    Column, Connection, DateTime, Engine, Executable, MetaData, String, Table, bindparam, delete, event, exists, inspect,
    select, update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.runtime.keys.crypto import MasterKey, StudentKeys, new_key
from shared.runtime.db import ensure_schema, is_sqlite, make_engine

SCHEMA = "keystore"  # the PostgreSQL schema, when the key store lives in PostgreSQL
MAX_PAIRS = 400  # (campaign, INE) pairs per query
WRITING_KEY_SECONDS = 300.0  # how long a writer keeps a student's key in memory
WRITING_KEYS_KEPT = 10_000
UNWRAPPED_KEYS_KEPT = 20_000  # a reader's unwrapped data keys kept across pages (least recently used dropped)
T = TypeVar("T")

metadata = MetaData()
student_keys = Table(
    "student_keys",
    metadata,
    Column("campaign", String(4), primary_key=True),
    Column("ine", String(11), primary_key=True),
    Column("wrapped_key", String(120), nullable=True),  # NULL once destroyed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True), nullable=True),
)


@functools.cache
def _first_key_statement(postgres: bool) -> Executable:
    """See KeyStore._key_for_writing; built once (building it cost more CPU than sending it)."""
    row = {name: bindparam(name) for name in ("campaign", "ine", "wrapped_key", "created_at")}
    insert = (postgresql if postgres else sqlite).insert(student_keys).values(row).on_conflict_do_nothing()
    insert = insert.returning(student_keys.c.wrapped_key)
    if not postgres:
        return insert
    made = insert.cte("made")
    return select(made.c.wrapped_key).union_all(
        select(student_keys.c.wrapped_key).where(
            student_keys.c.campaign == row["campaign"], student_keys.c.ine == row["ine"], ~exists(made.select())
        )
    )


class StudentErased(Exception):
    """The student's key was destroyed: nothing personal may be written about them again."""


class KeyStore:
    def __init__(self, engine: Engine, master: MasterKey) -> None:
        self.engine = engine
        self.master = master
        self._for_writing: dict[tuple[str, str], tuple[bytes, float]] = {}  # key, until (monotonic)
        # A reader's unwrapped keys and their ciphers by (campaign, INE, wrapped key): the row is still read at
        # every keyring, so a destroyed key (NULL) is never taken from here; only the unwrapping is saved.
        # A dict in use order, under a lock: several views' consumers of a process ask for keys side by side.
        self._unwrapped: dict[tuple[str, str, str], tuple[bytes, AESGCM]] = {}
        self._unwrapped_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, master: MasterKey, schema: str = SCHEMA) -> "KeyStore":
        schema = None if is_sqlite(url) else schema
        ensure_schema(url, schema)
        engine = make_engine(url, schema, pre_ping=False)  # each statement is run again once instead (_once)
        if is_sqlite(url):

            @event.listens_for(engine, "connect")
            def _secure_delete(dbapi_connection, _record) -> None:  # a destroyed key's bytes are zeroed on disk
                dbapi_connection.execute("PRAGMA secure_delete=ON")

        try:
            metadata.create_all(engine, checkfirst=True)
        except (OperationalError, ProgrammingError):  # the services start together: another one just made it
            if not inspect(engine).has_table(student_keys.name):
                raise
        return cls(engine, master)

    def close(self) -> None:
        self.engine.dispose()

    def _once(self, statements: Callable[[Connection], T]) -> T:
        """`statements` on a pooled connection in autocommit: one statement is one round trip (no BEGIN, no
        ROLLBACK at checkin, no ping at checkout). Run again once on a fresh connection when the first was
        found dropped (the server restarted, its backend killed): SQLAlchemy has then invalidated the pool.
        Safe: a read, or an insert that does nothing the second time. A server out of reach is raised (503).
        The rare writes (destroy, restore, a purge) keep their transaction and are not run again: a dropped
        connection fails them once, with the pool renewed for the next."""
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                return statements(conn)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return statements(conn)

    # --- reading ----------------------------------------------------------------------

    def keyring(self, students: Iterable[tuple[str, str]]) -> StudentKeys:
        """The unwrapped keys of these (campaign, INE) students; a destroyed key maps to None,
        a student without a row is left out (reading their sealed entries is an error)."""
        by_campaign: dict[str, list[str]] = {}
        for campaign, ine in sorted(set(students)):
            by_campaign.setdefault(campaign, []).append(ine)
        def read(conn: Connection) -> list:
            # By campaign and INE chunks, so the primary key is used: SQLite scans the whole table for a
            # tuple IN (VALUES ...), at every page a consumer reads (BENCHMARKS.md).
            return [
                row
                for campaign, ines in by_campaign.items()
                for i in range(0, len(ines), MAX_PAIRS)
                for row in conn.execute(
                    select(student_keys.c.campaign, student_keys.c.ine, student_keys.c.wrapped_key).where(
                        student_keys.c.campaign == campaign, student_keys.c.ine.in_(ines[i : i + MAX_PAIRS])
                    )
                )
            ]

        keys: dict[tuple[str, str], bytes | None] = {}
        ciphers: dict[bytes, AESGCM] = {}
        rows = self._once(read)
        with self._unwrapped_lock:
            for campaign_, ine, wrapped in rows:
                if wrapped is None:
                    keys[(campaign_, ine)] = None  # destroyed: whatever was unwrapped before is not used
                    continue
                key, cipher = self._unwrap(campaign_, ine, wrapped)
                keys[(campaign_, ine)] = key
                ciphers[key] = cipher
        return StudentKeys(keys, ciphers)

    def _unwrap(self, campaign: str, ine: str, wrapped: str) -> tuple[bytes, AESGCM]:
        """A data key and its cipher, unwrapped once while it stays among the UNWRAPPED_KEYS_KEPT last used
        (a page of a catch-up names ~1,000 students, most of them again in the next pages)."""
        kept = self._unwrapped
        found = kept.pop((campaign, ine, wrapped), None)  # put back last: the dict stays in use order
        if found is None:
            key = self.master.unwrap(wrapped, campaign, ine)
            found = (key, AESGCM(key))
            if len(kept) >= UNWRAPPED_KEYS_KEPT:
                del kept[next(iter(kept))]  # the least recently used
        kept[(campaign, ine, wrapped)] = found
        return found

    async def keyring_async(self, students: Iterable[tuple[str, str]]) -> StudentKeys:
        students = list(students)
        if not students:
            return StudentKeys({})
        return await asyncio.to_thread(self.keyring, students)

    def is_destroyed(self, campaign: str, ine: str) -> bool:
        row = self._once(lambda conn: conn.execute(
            select(student_keys.c.destroyed_at).where(student_keys.c.campaign == campaign, student_keys.c.ine == ine)
        ).first())
        return row is not None and row.destroyed_at is not None

    def campaigns_of(self, ine: str) -> list[str]:
        return self._once(lambda conn: list(conn.scalars(select(student_keys.c.campaign).where(student_keys.c.ine == ine))))

    def wrapped_keys(self, campaign: str) -> dict[str, str | None]:
        """INE -> wrapped key (None if destroyed) of a campaign, for its archive."""
        rows = self._once(lambda conn: conn.execute(
            select(student_keys.c.ine, student_keys.c.wrapped_key).where(student_keys.c.campaign == campaign)
        ).all())
        return {ine: wrapped for ine, wrapped in rows}

    # --- writing ----------------------------------------------------------------------

    def keyring_for_writing(self, campaign: str, ine: str) -> StudentKeys:
        """The student's key, made on their first event; StudentErased if it was destroyed.

        Kept in memory for WRITING_KEY_SECONDS (a query per write cost a third of the append rate).
        A key destroyed meanwhile by another process cannot seal anything new: the erasure appends
        StudentForgotten first, so a write decided before it fails the append's version check and,
        decided again, is refused by the rule; this process's own `destroy` forgets it at once."""
        held = self.held_for_writing(campaign, ine)
        if held is not None:
            return held
        key = self._key_for_writing(campaign, ine)
        if key is None:
            raise StudentErased(ine)
        if len(self._for_writing) >= WRITING_KEYS_KEPT:
            self._for_writing.pop(next(iter(self._for_writing)))  # the oldest
        self._for_writing[(campaign, ine)] = (key, time.monotonic() + WRITING_KEY_SECONDS)
        return StudentKeys({(campaign, ine): key})

    def held_for_writing(self, campaign: str, ine: str) -> StudentKeys | None:
        """The student's key if this writer holds it in memory (see keyring_for_writing), else None."""
        cached = self._for_writing.get((campaign, ine))
        if cached is not None and cached[1] > time.monotonic():
            return StudentKeys({(campaign, ine): cached[0]})
        return None

    def _key_for_writing(self, campaign: str, ine: str) -> bytes | None:
        """The student's key, made now if they have no row (None: destroyed). The insert comes first
        (`ON CONFLICT DO NOTHING`, the first key wins); on PostgreSQL the same statement reads the row it
        did not insert, so a new student and a known one cost one round trip each. Read again only when
        nothing came back: on SQLite (no insert in a WITH), or when another writer's insert committed while
        this statement ran (visible to the insert's conflict check, not to the statement's snapshot)."""
        key = new_key()
        wrapped = self.master.wrap(key, campaign, ine)
        row = {"campaign": campaign, "ine": ine, "wrapped_key": wrapped, "created_at": datetime.now(UTC)}
        statement = _first_key_statement(self.engine.dialect.name == "postgresql")
        try:  # two services writing a student's first events at once
            found = self._once(lambda conn: conn.execute(statement, row).first())
        except IntegrityError:
            found = None
        if found is None:
            return self.keyring([(campaign, ine)]).keys[(campaign, ine)]
        if found.wrapped_key == wrapped:  # this writer's (a random nonce: no other wrapping is equal)
            return key
        return None if found.wrapped_key is None else self.master.unwrap(found.wrapped_key, campaign, ine)

    def destroy(self, campaign: str, ine: str) -> bool:
        """Destroy the student's key (a row is kept, without the key); True if a key was destroyed.
        A student without a key yet gets a destroyed row, so none is made later."""
        self._for_writing.pop((campaign, ine), None)
        with self._unwrapped_lock:  # not needed (the row says destroyed), but no copy kept longer than needed
            self._unwrapped = {k: v for k, v in self._unwrapped.items() if k[:2] != (campaign, ine)}
        now = datetime.now(UTC)
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        with self.engine.begin() as conn:
            destroyed = conn.execute(
                update(student_keys)
                .where(student_keys.c.campaign == campaign, student_keys.c.ine == ine)
                .where(student_keys.c.wrapped_key.is_not(None))
                .values(wrapped_key=None, destroyed_at=now)
            ).rowcount
            conn.execute(
                dialect.insert(student_keys)
                .values(campaign=campaign, ine=ine, wrapped_key=None, created_at=now, destroyed_at=now)
                .on_conflict_do_nothing()
            )
        self._forget_old_versions()
        return destroyed > 0

    def _forget_old_versions(self) -> None:
        """Leave no copy of a destroyed key in the database's files: SQLite zeroes freed pages
        (secure_delete) once the write-ahead log is checkpointed; PostgreSQL keeps dead row versions
        in the table until VACUUM FULL rewrites it (a small table: cheap). Its write-ahead log and any
        backup still hold them until recycled: hence short-lived key store backups (deploy/README.md)."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM FULL student_keys")

    def restore(self, campaign: str, wrapped: dict[str, str | None]) -> None:
        """Put back a campaign's wrapped keys from its archive (re-import for an audit)."""
        now = datetime.now(UTC)
        rows = [
            {"campaign": campaign, "ine": ine, "wrapped_key": key, "created_at": now,
             "destroyed_at": None if key else now}
            for ine, key in wrapped.items()
        ]
        if not rows:
            return
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        with self.engine.begin() as conn:
            conn.execute(dialect.insert(student_keys).on_conflict_do_nothing(), rows)

    def delete_campaign(self, campaign: str, ines: Iterable[str] | None = None) -> int:
        """Delete a campaign's rows; only those of `ines` if given (a key store several académies share)."""
        self._for_writing = {k: v for k, v in self._for_writing.items() if k[0] != campaign}
        chosen = sorted(set(ines)) if ines is not None else None
        with self.engine.begin() as conn:
            if chosen is None:
                deleted = conn.execute(delete(student_keys).where(student_keys.c.campaign == campaign)).rowcount
            else:
                deleted = 0
                for i in range(0, len(chosen), MAX_PAIRS):
                    deleted += conn.execute(delete(student_keys).where(
                        student_keys.c.campaign == campaign, student_keys.c.ine.in_(chosen[i : i + MAX_PAIRS])
                    )).rowcount
        self._forget_old_versions()
        return deleted
