"""A running consumer survives a restart of Redis: it reconnects, reads on from the positions in its own
database (there is no consumer group to lose), and applies every entry exactly once.

Each test starts its own `redis-server` (append-only file, fsync at every write) on a free port and
restarts it, on the same port and directory, while a consumer task runs against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from entries_view import EntriesApplied
from log_writer import CAMPAIGN, LogWriter
from test_consumer import running  # tests/shared: the consumer run in a task
from shared.contracts.streams import StreamKeys
from shared.runtime.projection.consumer import Consumer
from shared.runtime.db import make_engine

REDIS_SERVER = "/usr/bin/redis-server"


class OwnRedis:
    """A redis-server of this test's own, which the test may kill and start again."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        with contextlib.closing(socket.socket()) as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            assert self.process.poll() is None and time.monotonic() < deadline, (self.data_dir / "redis.log").read_text()
            time.sleep(0.02)

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
        return False

    def stop(self, how: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(how)
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if not Path(REDIS_SERVER).exists():
        pytest.skip(f"{REDIS_SERVER} is not installed")
    server = OwnRedis(tmp_path / "redis")
    server.data_dir.mkdir()
    server.start()
    yield server
    server.stop(signal.SIGKILL)


async def log_entries(redis: Redis, keys: StreamKeys) -> set[tuple[str, str]]:
    entries = set()
    for key in [keys.rectorat, *keys.campaign_streams(CAMPAIGN)]:
        entries |= {(key, entry_id.decode()) for entry_id, _ in await redis.xrange(key)}
    return entries


async def last_position(redis: Redis, keys: StreamKeys) -> str:
    ids = [entry_id for key in keys.campaign_streams(CAMPAIGN) for entry_id, _ in await redis.xrevrange(key, count=1)]
    return max(ids, key=lambda i: tuple(map(int, i.split(b"-")))).decode()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_running_consumer_applies_everything_exactly_once_across_a_redis_restart(
    own_redis: OwnRedis, tmp_path: Path, how: signal.Signals
) -> None:
    keys = StreamKeys("restart")
    writer_redis, consumer_redis = Redis.from_url(own_redis.url), Redis.from_url(own_redis.url)
    engine = make_engine(f"sqlite:///{tmp_path / 'view.sqlite3'}")
    view = EntriesApplied()
    view.metadata.create_all(engine)
    writer = LogWriter(writer_redis, keys)
    try:
        await writer.open_campaign()
        await writer.students_from(0, 200)  # about 1,200 events
        async with running(Consumer(consumer_redis, engine, keys, view, page_size=200, block_ms=100, keystore=None), 10) as live:
            await asyncio.sleep(0.2)  # mid catch-up, most likely: either way nothing may be lost or doubled
            own_redis.stop(how)
            await asyncio.sleep(0.5)  # the consumer meets the closed connection
            own_redis.start()
            await writer_redis.connection_pool.disconnect()  # the writer's pipelines do not reconnect by themselves
            await writer.students_from(200, 50)
            await writer.corrections(list(range(0, 250, 7)))
            assert await live.wait_for(await last_position(writer_redis, keys), timeout=60)

        written = await log_entries(writer_redis, keys)
        assert len(written) == writer.written
        assert view.read(engine) == dict.fromkeys(written, 1)
    finally:
        with contextlib.suppress(RedisError):
            await writer_redis.aclose()
            await consumer_redis.aclose()
        engine.dispose()
