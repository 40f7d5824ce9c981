"""`passpro rebuild`: the scoring projection rebuilt from the start of the log, then swapped in.

Build: a fresh database beside the live one (a SQLite file, or a PostgreSQL
schema in the same database), migrated, then filled from position 0-0 by the
very Consumer and BonusProjection the service runs, page by page.
Swap: one transaction on the live database replaces the projection's tables
(positions, student files, campaigns, vœux, totals) by the rebuilt rows.
Exports and checkpoints are records, not projection: they are kept. Readers
see the old rows until the commit (SQLite WAL, PostgreSQL MVCC), then the new.
The service's own consumer, if it runs, sees before its next read (and, under
a lock, at its next commit) that the stored positions moved, and reads on from
the swapped-in ones: nothing it applied to the old rows after the build read
the log is lost. A `passpro dlq retry` run during a rebuild writes to the live
rows only: run the retry again after the swap.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import Engine, text

from services.scoring.app import MIGRATIONS
from services.scoring.views import BonusProjection, campaigns, positions, student_files, student_totals, voeux
from shared.contracts.streams import StreamKeys
from shared.runtime.projection.consumer import Consumer
from shared.runtime.db import is_sqlite, make_engine
from shared.runtime.keys.store import KeyStore
from shared.runtime.log.client import Replication
from shared.runtime.migrations import upgrade

# Children before parents does not matter (no foreign keys); positions last, like a consumer's commit.
PROJECTION_TABLES = [student_files, campaigns, voeux, student_totals, positions]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Rebuilt:
    entries: int
    students: int
    voeux: int


@dataclass(frozen=True)
class Workspace:
    """Where the new projection is built: a URL and schema, and how the live database reaches its tables."""

    url: str
    schema: str | None
    qualifier: str  # prefix of the rebuilt tables as seen from the live connection
    sqlite_path: Path | None = None


def workspace_for(live_url: str, live_schema: str | None) -> Workspace:
    tag = uuid.uuid4().hex[:8]
    if is_sqlite(live_url):
        live_path = Path(live_url.removeprefix("sqlite:///"))
        path = live_path.with_name(f"{live_path.stem}.rebuild-{tag}.sqlite3")
        return Workspace(f"sqlite:///{path}", None, "rebuild.", path)
    schema = f"{live_schema or 'scoring'}_rebuild_{tag}"
    return Workspace(live_url, schema, f'"{schema}".')


async def _total_entries(redis: Redis, keys: StreamKeys) -> int:
    total = await redis.xlen(keys.rectorat)
    for _, fields in await redis.xrange(keys.rectorat):
        fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in fields.items()}
        campaign = fields.get("campaign")
        campaign = campaign.decode() if isinstance(campaign, bytes) else campaign
        for key in keys.campaign_streams(campaign):
            total += await redis.xlen(key)
    return total


async def build(
    redis: Redis, keys: StreamKeys, keystore: KeyStore, workspace: Workspace, progress: Progress,
    replication: Replication | None = None,
) -> int:
    """Fill the workspace from the start of the log; return the number of entries read. With `replication`
    (SPEC §9), as the live consumer: no entry applied before it is on the replicas."""
    upgrade(MIGRATIONS, workspace.url, workspace.schema)
    engine = make_engine(workspace.url, workspace.schema)
    try:
        consumer = Consumer(redis, engine, keys, BonusProjection(), keystore=keystore, page_size=2000,
                            replication=replication)
        total = await _total_entries(redis, keys)
        read = 0
        progress(read, total)
        while n := await consumer.poll(None):
            read += n
            progress(read, max(total, read))
        return read
    finally:
        engine.dispose()


def swap(live: Engine, workspace: Workspace) -> Rebuilt:
    """Replace the live projection's rows by the rebuilt ones, in one transaction."""
    with live.connect() as conn:
        if workspace.sqlite_path is not None:
            conn.exec_driver_sql("ATTACH DATABASE ? AS rebuild", (str(workspace.sqlite_path),))
            conn.commit()  # ATTACH may not run inside a transaction: close the one SQLAlchemy began
        try:
            with conn.begin():
                for table in PROJECTION_TABLES:
                    conn.execute(text(f"DELETE FROM {table.name}"))
                    conn.execute(text(f"INSERT INTO {table.name} SELECT * FROM {workspace.qualifier}{table.name}"))
                students = conn.execute(text(f"SELECT count(*) FROM {student_totals.name}")).scalar_one()
                rows = conn.execute(text(f"SELECT count(*) FROM {voeux.name}")).scalar_one()
        finally:
            if workspace.sqlite_path is not None:
                conn.exec_driver_sql("DETACH DATABASE rebuild")
                conn.commit()
        if workspace.sqlite_path is None:
            # The planner's statistics of the swapped-in rows now, not when autovacuum gets to them: without
            # them the summary report sorts every vœu (265 ms instead of 46 at 128,000 students, BENCHMARKS.md).
            conn.exec_driver_sql("ANALYZE " + ", ".join(table.name for table in PROJECTION_TABLES))
            conn.commit()
    return Rebuilt(entries=0, students=students, voeux=rows)


def discard(live: Engine, workspace: Workspace) -> None:
    if workspace.sqlite_path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{workspace.sqlite_path}{suffix}").unlink(missing_ok=True)
        return
    with live.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{workspace.schema}" CASCADE'))


async def rebuild(
    redis: Redis, keys: StreamKeys, keystore: KeyStore, live_url: str, live_schema: str | None, progress: Progress,
    replication: Replication | None = None,
) -> Rebuilt:
    workspace = workspace_for(live_url, live_schema)
    live = make_engine(live_url, live_schema)
    try:
        entries = await build(redis, keys, keystore, workspace, progress, replication)
        rebuilt = swap(live, workspace)
        return Rebuilt(entries=entries, students=rebuilt.students, voeux=rebuilt.voeux)
    finally:
        discard(live, workspace)
        live.dispose()
