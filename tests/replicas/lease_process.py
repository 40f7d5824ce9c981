"""Consumers of scoring's projection run as replicas of one service: each holds the view's lease
(shared/runtime/projection/lease.py) or stands by, and each commit it makes is recorded with its pid.

    python tests/replicas/lease_process.py REDIS_URL ACADEMIE DATABASE_URL SCHEMA

A fork server (a process starts in milliseconds): it prints `ready`, then obeys one command per line:
`start` forks a consumer running `Consumer.run` with the lease (answers `started <pid>`); `kill <pid>`
SIGKILLs that child and reaps it (answers `killed`). Each child names its PostgreSQL sessions
`lease-<pid>` (PGAPPNAME), so the test reads from pg_stat_activity which process holds the lease.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import traceback
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import Column, Connection, Integer, MetaData, Table, insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

from entries_view import CountedBonuses  # noqa: E402

from shared.contracts.streams import LoggedEvent, StreamKeys  # noqa: E402
from shared.runtime.db import make_engine  # noqa: E402
from shared.runtime.projection.consumer import Consumer  # noqa: E402
from shared.runtime.projection.lease import view_lease  # noqa: E402

PAGE_SIZE = 100  # many commits, so that two writers at once would interleave in the commit log

commit_log = Table(
    "lease_commits", MetaData(),
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("pid", Integer, nullable=False),
    Column("entries", Integer, nullable=False),
)


class LoggedCommits(CountedBonuses):
    """Scoring's projection with each entry's count, and one row per page naming the process that applied it."""

    def create_tables(self, engine) -> None:  # noqa: ANN001
        self.create_count_table(engine)
        commit_log.create(engine, checkfirst=True)

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        super().apply(conn, events)
        conn.execute(insert(commit_log).values(pid=os.getpid(), entries=len(events)))


async def consume(redis_url: str, academie: str, database_url: str, schema: str) -> None:
    redis = Redis.from_url(redis_url)
    engine = make_engine(database_url, schema)
    view = LoggedCommits()
    consumer = Consumer(redis, engine, StreamKeys(academie), view, keystore=None, page_size=PAGE_SIZE, block_ms=200,
                        lease=view_lease(engine, view.name))
    await consumer.run(asyncio.Event())  # until killed


def run_child(args: list[str]) -> None:
    code = 0
    try:
        os.environ["PGAPPNAME"] = f"lease-{os.getpid()}"
        asyncio.run(consume(*args))
    except BaseException:  # noqa: BLE001 - reported through stderr and the exit code
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def serve(args: list[str]) -> None:
    print("ready", flush=True)
    children: set[int] = set()
    try:
        for command in sys.stdin:
            word, *rest = command.split()
            if word == "start":
                child = os.fork()
                if child == 0:
                    run_child(args)
                children.add(child)
                print(f"started {child}", flush=True)
            elif word == "kill":
                pid = int(rest[0])
                if pid in children:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    children.discard(pid)
                print("killed", flush=True)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


if __name__ == "__main__":
    serve(sys.argv[1:])
