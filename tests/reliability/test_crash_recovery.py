"""Exactly-once effect: scoring's projection, killed with SIGKILL at random points while it catches up on
tens of thousands of events (and while the log goes on without it), ends equal to a replay from scratch.

The same log feeds two projections at once, one on SQLite and one on PostgreSQL (a schema of its own),
each in processes of its own that are killed again and again; both must end equal, row for row, to a
replay of the whole log into a fresh database by a process never interrupted, and to what the writer
knows every student's bonus must be. The projection's fold is idempotent by design (an event applied
twice changes no row), so the rows alone cannot see a double apply: each projection also counts, in the
same transaction, how many times it applied each entry, and every entry of the log must count once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import Engine, select

from entries_view import CountedBonuses
from log_writer import CAMPAIGN, LogWriter
from services.scoring.app import MIGRATIONS
from services.scoring.views import metadata, student_totals
from shared.contracts.streams import StreamKeys
from shared.runtime.projection.consumer import Consumer
from shared.runtime.db import make_engine
from shared.runtime.migrations import upgrade

SERVER = Path(__file__).with_name("projection_process.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
# Small in the suite; `bash tests/soak` runs the same test large (PASSPRO_SOAK_STUDENTS, PASSPRO_SOAK_KILLS).
STUDENTS = int(os.environ.get("PASSPRO_SOAK_STUDENTS", 3300))  # about 6 events each: 20,000 events
MIN_KILLS = int(os.environ.get("PASSPRO_SOAK_KILLS", 12))  # of each projection
KILL_AFTER_S = (0.0, 0.5)  # after the process is forked
WRITTEN_WHILE_DOWN = 15  # new students, and as many corrections, while both projections are down
# How long a projection process may take to catch up on what is left at the end: the soak's 300,000 events
# take minutes on a loaded machine (a process started later than that has failed anyway).
FINAL_CATCH_UP_S = max(120, STUDENTS * 0.03)
MIN_WRITES_WHILE_DOWN = 4


@dataclass(frozen=True)
class Database:
    url: str
    schema: str | None = None

    def migrate(self) -> None:
        upgrade(MIGRATIONS, self.url, self.schema)
        engine = self.engine()
        try:
            CountedBonuses().create_count_table(engine)
        finally:
            engine.dispose()

    def applied(self) -> dict[tuple[str, str], int]:
        """How many times the projection applied each entry, by (stream, entry id)."""
        engine = self.engine()
        try:
            return CountedBonuses().read(engine)
        finally:
            engine.dispose()

    def engine(self) -> Engine:
        return make_engine(self.url, self.schema)

    def server_args(self) -> list[str]:
        return [self.url, *([self.schema] if self.schema else [])]


class ProjectionProcesses:
    """Drives projection_process.py: starts a projection process, kills it or waits for it."""

    def __init__(self, server: asyncio.subprocess.Process) -> None:
        self.server = server
        self.kills = 0

    @classmethod
    async def open(cls, redis_url: str, academie: str, database: Database) -> ProjectionProcesses:
        server = await asyncio.create_subprocess_exec(
            sys.executable, str(SERVER), redis_url, academie, *database.server_args(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
        )
        processes = cls(server)
        assert await processes._answer() == "ready"
        return processes

    async def _answer(self, timeout: float = 120) -> str:
        line = await asyncio.wait_for(self.server.stdout.readline(), timeout)
        assert line, "the projection process server stopped (its stderr is above)"
        return line.decode().strip()

    async def _ask(self, command: str, timeout: float = 120) -> str:
        self.server.stdin.write(command.encode() + b"\n")
        await self.server.stdin.drain()
        return await self._answer(timeout)

    async def start(self) -> None:
        assert (await self._ask("start")).startswith("started ")

    async def kill_after(self, seconds: float) -> None:
        """Start a projection process and SIGKILL it after `seconds` unless it has caught up by then."""
        await self.start()
        await asyncio.sleep(seconds)
        ended = await self._ask("kill")
        assert ended in ("killed", "exited 0"), ended
        self.kills += ended == "killed"

    async def run_to_the_end(self) -> None:
        await self.start()
        assert await self._ask("wait", FINAL_CATCH_UP_S) == "exited 0"

    async def close(self) -> None:
        if self.server.returncode is None:
            self.server.stdin.close()  # the server ends; a child still running goes with it
            await asyncio.wait_for(self.server.wait(), 30)


async def kill_while_catching_up(projections: list[ProjectionProcesses], writer: LogWriter, rng: random.Random) -> None:
    """Kill projection processes at random points until each died mid-work at least MIN_KILLS times. The first
    ones catch up on a log still being written, the later ones also on what was written while all were down."""
    writing = asyncio.create_task(writer.students_from(0, STUDENTS))
    students, written_while_down = STUDENTS, 0
    while min(p.kills for p in projections) < MIN_KILLS or written_while_down < MIN_WRITES_WHILE_DOWN:
        await asyncio.gather(*(p.kill_after(rng.uniform(*KILL_AFTER_S)) for p in projections))
        if writing.done():
            await writer.students_from(students, WRITTEN_WHILE_DOWN)
            await writer.corrections(rng.sample(range(students), WRITTEN_WHILE_DOWN))
            students += WRITTEN_WHILE_DOWN
            written_while_down += 1
    await writing


async def replay_from_scratch(redis: Redis, keys: StreamKeys, database: Database) -> None:
    database.migrate()
    engine = database.engine()
    try:
        await Consumer(redis, engine, keys, CountedBonuses(), page_size=2000, keystore=None).catch_up()
    finally:
        engine.dispose()


def table_contents(database: Database) -> dict[str, set[tuple]]:
    """Every row of every table of the projection, every column (student files compared as parsed JSON)."""
    engine = database.engine()
    try:
        with engine.connect() as conn:
            contents = {}
            for table in metadata.sorted_tables:
                rows = set()
                for row in conn.execute(select(table)):
                    values = dict(row._mapping)
                    if "file" in values:
                        values["file"] = json.dumps(json.loads(values["file"]), sort_keys=True)
                    rows.add(tuple(sorted(values.items())))
                contents[table.name] = rows
            return contents
    finally:
        engine.dispose()


def differences(got: dict[str, set[tuple]], want: dict[str, set[tuple]]) -> dict[str, dict[str, list]]:
    return {
        name: {
            "only_after_kills": sorted(got[name] - want[name], key=repr)[:3],
            "only_in_replay": sorted(want[name] - got[name], key=repr)[:3],
        }
        for name in want
        if got[name] != want[name]
    }


async def log_entries(redis: Redis, keys: StreamKeys) -> set[tuple[str, str]]:
    """(stream, entry id) of every entry the projection follows: the rectorat's and the campaign's service streams.
    Read by pages: the soak's streams (150,000 entries each) in one reply outlast the client's socket timeout."""
    entries = set()
    for stream in [keys.rectorat, *keys.campaign_streams(CAMPAIGN)]:
        after = "-"
        while page := await redis.xrange(stream, after, "+", count=10_000):
            entries |= {(stream, entry_id.decode()) for entry_id, _ in page}
            after = f"({page[-1][0].decode()}"
    return entries


def applied_other_than_once(applied: dict[tuple[str, str], int], log: set[tuple[str, str]]) -> dict[str, object]:
    """Entries applied twice or more, and entries of the log never applied (the first few of each)."""
    doubled = {f"{stream} {entry_id}": n for (stream, entry_id), n in applied.items() if n != 1}
    missing = sorted(log - set(applied))
    return {key: value for key, value in (
        ("applied_more_than_once", (len(doubled), sorted(doubled.items())[:5])),
        ("never_applied", (len(missing), missing[:5])),
        ("not_in_the_log", (len(set(applied) - log), sorted(set(applied) - log)[:5])),
    ) if value[0]}


def bonus_totals(database: Database) -> dict[str, int]:
    engine = database.engine()
    try:
        with engine.connect() as conn:
            return dict(conn.execute(select(student_totals.c.ine, student_totals.c.total_bonus_points)).all())
    finally:
        engine.dispose()


async def test_projections_killed_at_random_points_on_sqlite_and_postgresql_end_equal_to_a_replay_from_scratch(
    redis: Redis, redis_url: str, academie: str, postgres_url: str, pg_schema: str, tmp_path: Path
) -> None:
    keys = StreamKeys(academie)
    killed = {"sqlite": Database(f"sqlite:///{tmp_path / 'killed.sqlite3'}"), "postgresql": Database(postgres_url, pg_schema)}
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    writer = LogWriter(redis, keys)
    await writer.open_campaign()
    for database in killed.values():
        database.migrate()
    projections = [await ProjectionProcesses.open(redis_url, academie, database) for database in killed.values()]
    try:
        await kill_while_catching_up(projections, writer, rng)
        replay = Database(f"sqlite:///{tmp_path / 'replay.sqlite3'}")
        await asyncio.gather(replay_from_scratch(redis, keys, replay), *(p.run_to_the_end() for p in projections))
    finally:
        for p in projections:
            await p.close()

    assert writer.written > 20_000
    assert all(p.kills >= MIN_KILLS for p in projections)
    logged = await log_entries(redis, keys)
    assert len(logged) == writer.written  # each event once in the streams followed (its student's is not)
    assert applied_other_than_once(replay.applied(), logged) == {}, f"the replay, seed {seed}"
    replayed = table_contents(replay)
    assert bonus_totals(replay) == writer.expected_totals(), f"seed {seed}"
    for kind, database in killed.items():
        assert applied_other_than_once(database.applied(), logged) == {}, f"{kind}, seed {seed}"
        after_kills = table_contents(database)
        assert after_kills == replayed, f"{kind}, seed {seed}: {differences(after_kills, replayed)}"
    print(f"\ncrash test, seed {seed}: {writer.written:,} events logged, each applied once; kills "
          + ", ".join(f"{kind} {p.kills}" for kind, p in zip(killed, projections)) + "; both equal to the replay")
