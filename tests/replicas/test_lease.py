"""Service replicas (SPEC §9): each view has one active consumer at a time, through a lease in its database.

Two consumers of scoring's projection run as separate processes on one PostgreSQL schema while a writer
keeps appending students; whichever holds the lease is SIGKILLed, 20 times, and started again as the
standby. A monitor reads the lease's holders from pg_locks every few milliseconds (never more than one),
each page committed is recorded with the process that applied it (two writers at once would interleave:
each process's pages must form one run), the time from each kill to the other's taking the lease is
reported, and at the end the view equals a replay from scratch, every entry applied exactly once.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

from log_writer import LogWriter  # noqa: E402
from test_crash_recovery import (  # noqa: E402
    Database,
    applied_other_than_once,
    differences,
    log_entries,
    replay_from_scratch,
    table_contents,
)

from lease_process import LoggedCommits, commit_log  # noqa: E402
from shared.contracts.streams import StreamKeys  # noqa: E402
from shared.runtime.projection.lease import CLASSID, _objid  # noqa: E402

SERVER = Path(__file__).with_name("lease_process.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
KILLS = 20
TAKEOVER_LIMIT_S = 10.0  # the standby tries every 0.25 s; the SIGKILLed session ends at once
CATCH_UP_S = 120.0


class Consumers:
    def __init__(self, server: asyncio.subprocess.Process) -> None:
        self.server = server
        self.running: set[int] = set()

    @classmethod
    async def open(cls, redis_url: str, academie: str, url: str, schema: str) -> Consumers:
        server = await asyncio.create_subprocess_exec(
            sys.executable, str(SERVER), redis_url, academie, url, schema,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
        )
        consumers = cls(server)
        assert await consumers._answer() == "ready"
        return consumers

    async def _answer(self) -> str:
        line = await asyncio.wait_for(self.server.stdout.readline(), 60)
        assert line, "the consumers' server stopped (its stderr is above)"
        return line.decode().strip()

    async def _ask(self, command: str) -> str:
        self.server.stdin.write(command.encode() + b"\n")
        await self.server.stdin.drain()
        return await self._answer()

    async def start(self) -> int:
        pid = int((await self._ask("start")).split()[1])
        self.running.add(pid)
        return pid

    async def kill(self, pid: int) -> None:
        assert await self._ask(f"kill {pid}") == "killed"
        self.running.discard(pid)

    async def close(self) -> None:
        if self.server.returncode is None:
            self.server.stdin.close()
            await asyncio.wait_for(self.server.wait(), 30)


class Monitor:
    """Reads the lease's holders from pg_locks (with the holding process, from its session's name) every 5 ms."""

    def __init__(self, database: Database, objid: int) -> None:
        self.engine = database.engine()
        self.objid = objid
        self.most_holders = 0
        self.samples = 0
        self.holder: int | None = None
        self.stop = False

    def read(self) -> list[int]:
        with self.engine.connect() as conn:
            names = conn.execute(text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.classid::bigint = :c AND l.objid::bigint = :o"
                " AND l.objsubid = 2 AND l.granted"
                " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"), {"c": CLASSID, "o": self.objid & 0xFFFFFFFF}).scalars().all()
        return [int(name.removeprefix("lease-")) for name in names]

    async def run(self) -> None:
        while not self.stop:
            holders = await asyncio.to_thread(self.read)
            self.samples += 1
            self.most_holders = max(self.most_holders, len(holders))
            self.holder = holders[0] if holders else None
            await asyncio.sleep(0.005)

    async def holder_other_than(self, pid: int | None, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.holder is not None and self.holder != pid:
                return self.holder
            await asyncio.sleep(0.002)
        raise AssertionError(f"nobody took the lease within {timeout} s")


async def keep_writing(writer: LogWriter, done: asyncio.Event) -> int:
    students = 0
    while not done.is_set():
        await writer.students_from(students, 40)
        students += 40
        await asyncio.sleep(0.05)
    return students


async def committed_by(database: Database, pid: int, timeout: float = 60) -> None:
    """Wait until the process `pid` has committed a page."""
    engine = database.engine()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(select(commit_log.c.seq).where(commit_log.c.pid == pid).limit(1)).first():
                    return
            await asyncio.sleep(0.02)
    finally:
        engine.dispose()
    raise AssertionError(f"the lease's holder {pid} committed nothing in {timeout} s")


def commit_runs(database: Database) -> list[int]:
    """The processes that committed pages, one item per run of consecutive pages by the same process."""
    engine = database.engine()
    try:
        with engine.connect() as conn:
            pids = conn.execute(select(commit_log.c.pid).order_by(commit_log.c.seq)).scalars().all()
    finally:
        engine.dispose()
    return [pid for i, pid in enumerate(pids) if i == 0 or pids[i - 1] != pid]


async def test_two_consumers_of_a_view_the_holder_killed_20_times_never_two_holders_and_the_view_equals_the_replay(
    redis: Redis, redis_url: str, academie: str, postgres_url: str, pg_schema: str, tmp_path: Path
) -> None:

    keys = StreamKeys(academie)
    database = Database(postgres_url, pg_schema)
    database.migrate()
    view = LoggedCommits()
    engine = database.engine()
    try:
        view.create_tables(engine)
        with engine.connect() as conn:
            objid = _objid(conn.execute(text("SELECT current_schema()")).scalar_one(), view.name)
    finally:
        engine.dispose()
    writer = LogWriter(redis, keys)
    await writer.open_campaign()
    monitor = Monitor(database, objid)
    watching = asyncio.create_task(monitor.run())
    done = asyncio.Event()
    writing = asyncio.create_task(keep_writing(writer, done))
    consumers = await Consumers.open(redis_url, academie, postgres_url, pg_schema)
    takeovers: list[float] = []
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    try:
        await consumers.start()
        await consumers.start()
        holder = await monitor.holder_other_than(None, TAKEOVER_LIMIT_S)
        holders = [holder]
        for _ in range(KILLS):
            # under load (the writer goes on): once the holder has committed a page, at a random point of its work
            await committed_by(database, holder)
            await asyncio.sleep(rng.uniform(0, 0.5))
            killed_at = time.monotonic()
            await consumers.kill(holder)
            holder = await monitor.holder_other_than(holder, TAKEOVER_LIMIT_S)
            takeovers.append(time.monotonic() - killed_at)
            holders.append(holder)
            await consumers.start()  # the new standby
        done.set()
        students = await writing
        logged = await log_entries(redis, keys)
        deadline = time.monotonic() + CATCH_UP_S
        while len(database.applied()) < len(logged) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        for pid in list(consumers.running):
            await consumers.kill(pid)
    finally:
        done.set()
        monitor.stop = True
        await watching
        monitor.engine.dispose()
        await consumers.close()
        if not writing.done():
            writing.cancel()

    print(f"\nlease takeover after SIGKILL over {len(takeovers)} kills: median {statistics.median(takeovers):.3f} s,"
          f" max {max(takeovers):.3f} s; {students} students, {len(logged)} entries; {monitor.samples} samples of"
          f" pg_locks, at most {monitor.most_holders} holder(s)")
    assert len(takeovers) == KILLS
    assert max(takeovers) < TAKEOVER_LIMIT_S
    assert monitor.most_holders == 1
    runs = commit_runs(database)
    # each holder in turn applied pages, and only while it held the lease: two at once would interleave
    assert runs == holders, f"seed {seed}: pages committed by {runs}, lease held by {holders}"
    assert applied_other_than_once(database.applied(), logged) == {}
    replay = Database(f"sqlite:///{tmp_path / 'replay.sqlite3'}")
    await replay_from_scratch(redis, keys, replay)
    got, want = table_contents(database), table_contents(replay)
    assert got == want, differences(got, want)
