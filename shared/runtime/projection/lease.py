"""One active consumer per view among a service's replicas (SPEC §9): a lease in the view's database.

- **PostgreSQL**: a session-level advisory lock (`pg_try_advisory_lock(classid, objid)`, the key made of
  the schema the connection sees and the view's name), held by a connection the lease keeps open for as
  long as it holds it. PostgreSQL itself never grants it to two sessions; when the holder dies (SIGKILL,
  a lost machine whose socket is closed) its backend ends and the lock with it, so a standby takes it at
  its next try (`STANDBY_POLL_S`). A holder checks its connection every `CHECK_S` and steps down if it is
  gone. `holders()` reads who holds it from `pg_locks` (the tests check there is never more than one).
- **SQLite** (`passpro up`: one process is the norm): an exclusive `flock` on a file beside the database
  (`<file>.lease`), released by the kernel when its holder dies; an in-memory database needs none.

A lease is the first guard only: a holder that lost its lock without knowing yet (a connection cut, not
yet checked) could still commit a page, and the consumer's "one writer per view" check (the stored
positions locked and compared at each commit, `consumer.Consumer._claim`) stays as the safety net.
"""

from __future__ import annotations

import fcntl
import os
import zlib
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text

CLASSID = 0x5050  # "PP": Passpro's advisory locks
STANDBY_POLL_S = 0.25  # a standby tries to take the lease (and reloads the positions it serves reads at) this often
CHECK_S = 1.0  # a holder checks that it still holds the lease this often


class Lease(Protocol):
    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True if this process holds it now."""

    def still_held(self) -> bool:
        """Whether this process still holds it (False once its connection or file is gone)."""

    def release(self) -> None:
        """Let it go (idempotent)."""


def _objid(schema: str, view: str) -> int:
    """A signed 32-bit key for the view in its schema."""
    n = zlib.crc32(f"{schema}.{view}".encode())
    return n - (1 << 32) if n >= 1 << 31 else n


class AdvisoryLease:
    """The view's lease as a PostgreSQL session-level advisory lock on a connection of its own."""

    def __init__(self, engine: Engine, view: str) -> None:
        self.engine = engine
        self.view = view
        self._conn: Connection | None = None
        self.objid: int | None = None

    def _key(self, conn: Connection) -> dict[str, int]:
        if self.objid is None:
            self.objid = _objid(conn.execute(text("SELECT current_schema()")).scalar_one() or "public", self.view)
        return {"c": CLASSID, "o": self.objid}

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return self.still_held()
        conn = self.engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:c, :o)"), self._key(conn)).scalar_one()
            conn.commit()  # the lock is the session's: it outlives the transaction
        except Exception:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            held = self._conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = :c AND objid::bigint = :o"
                     " AND objsubid = 2 AND pid = pg_backend_pid() AND granted"),
                {"c": CLASSID, "o": self.objid & 0xFFFFFFFF},
            ).scalar_one()
            self._conn.commit()
        except Exception:  # noqa: BLE001 - a connection gone is a lease gone
            self._drop(invalidate=True)
            return False
        if not held:
            self._drop(invalidate=True)
        return bool(held)

    def _drop(self, *, invalidate: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if invalidate:
                conn.invalidate()  # never back to the pool with a lock it might still hold
            else:
                conn.execute(text("SELECT pg_advisory_unlock(:c, :o)"), {"c": CLASSID, "o": self.objid})
                conn.commit()
        except Exception:  # noqa: BLE001 - closing anyway: the session's end releases it
            conn.invalidate()
        finally:
            conn.close()

    def release(self) -> None:
        self._drop(invalidate=False)


def holders(conn: Connection, view: str) -> list[int]:
    """The backend pids holding the view's lease in the schema `conn` sees (PostgreSQL): never more than one."""
    objid = _objid(conn.execute(text("SELECT current_schema()")).scalar_one() or "public", view)
    return list(conn.execute(
        text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = :c AND objid::bigint = :o"
             " AND objsubid = 2 AND granted"
             " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
        {"c": CLASSID, "o": objid & 0xFFFFFFFF},
    ).scalars())


class FileLease:
    """The view's lease as an exclusive flock on `<database file>.<view>.lease` (SQLite)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock


class NoLease:
    """An in-memory database: only this process can see it, so it always holds the lease."""

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        pass


def view_lease(engine: Engine, view: str) -> Lease:
    """The lease fit for the view's database."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLease(engine, view)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in view)
        return FileLease(Path(f"{database}.{safe}.lease"))
    return NoLease()
