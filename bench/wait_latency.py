"""How long a read with `min_position` waits for the view, alone: `Consumer.wait_for` under a steady write rate.

    python bench/wait_latency.py [--rate 100] [--writes 1000] [--redis URL]

One process: scoring's projection (its Consumer on SQLite, with a key store)
follows a fresh log under its own académie tag; registrations are appended
through `EventLog` at a steady rate, and right after each append a waiter asks
`wait_for` the write's service position, as a read with `min_position` does.
Prints the waits' p50/p99 and how many XRANGE calls the log server answered
per write (its `INFO commandstats`), then deletes what it wrote. The HTTP
stack is left out on purpose: `passpro bench` measures the whole path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis

from bench.load import percentile
from bench.log_client import log_client
from bench.workload import LogWriter, Places, entry_fields, student_history
from services.scoring.app import MIGRATIONS
from services.scoring.views import BonusProjection
from shared.contracts.events import event_from_fields
from shared.contracts.streams import StreamKeys
from shared.runtime.projection.consumer import Consumer
from shared.runtime.keys.crypto import MasterKey, new_key
from shared.runtime.db import make_engine
from shared.runtime.keys.store import KeyStore
from shared.runtime.log.client import EventLog
from shared.runtime.migrations import upgrade
from shared.runtime.settings import campaign_in_force, paris_today, sqlite_url


async def _xrange_calls(redis: Redis) -> int:
    return int((await redis.info("commandstats")).get("cmdstat_xrange", {}).get("calls", 0))


async def measure(redis_url: str, workdir: Path, rate: float, writes: int, consumer_class: type[Consumer] = Consumer) -> dict:
    campaign = campaign_in_force(paris_today())  # the services' own default, at Paris's date
    keys = StreamKeys(f"bench-wait-{uuid.uuid4().hex[:8]}")
    keystore = KeyStore.open(sqlite_url(workdir, "keys"), MasterKey(new_key()))
    url = sqlite_url(workdir, "scoring")
    upgrade(MIGRATIONS, url, None)
    engine = make_engine(url)
    redis, writer_redis = log_client(redis_url), log_client(redis_url)
    try:
        await LogWriter(writer_redis, keys, campaign, keystore).open_campaign()
        consumer = consumer_class(redis, engine, keys, BonusProjection(), keystore=keystore)
        stop = asyncio.Event()
        loop_task = asyncio.create_task(consumer.run(stop))
        places, rng, now = Places.from_reference(), random.Random(5), datetime.now(UTC).replace(microsecond=0)
        events = []
        for n in range(writes):
            ine, steps = student_history(n, places, rng, now, "WL")
            events.append(event_from_fields(entry_fields(steps[0], ine, campaign, now.isoformat(), str(uuid.uuid4()))))
        log = EventLog(writer_redis, keys, keystore)
        waits: list[float] = []
        timed_out = 0

        async def wait(position: str, appended_at: float) -> None:
            nonlocal timed_out
            if await consumer.wait_for(position, timeout=10):
                waits.append((time.perf_counter() - appended_at) * 1000)
            else:
                timed_out += 1

        await asyncio.sleep(1)  # the consumer has loaded its positions and follows the campaign
        before = await _xrange_calls(writer_redis)
        tasks, began = [], time.perf_counter()
        for n, event in enumerate(events):
            await asyncio.sleep(max(0.0, began + n / rate - time.perf_counter()))
            appended = await log.append(event, "registration", 0, "bench")
            tasks.append(asyncio.create_task(wait(appended.positions.service, time.perf_counter())))
        await asyncio.gather(*tasks)
        xranges = await _xrange_calls(writer_redis) - before
        stop.set()
        await loop_task
        return {"writes": writes, "rate": rate, "wait_ms_p50": percentile(waits, 50), "wait_ms_p99": percentile(waits, 99),
                "timed_out": timed_out, "xrange_per_write": round(xranges / writes, 1)}
    finally:
        async for key in writer_redis.scan_iter(match=f"{keys.prefix}*"):
            await writer_redis.unlink(key)
        await redis.aclose()
        await writer_redis.aclose()
        engine.dispose()
        keystore.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--redis", default=os.environ.get("PASSPRO_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="passpro-wait-"))
    try:
        print(asyncio.run(measure(args.redis, workdir, args.rate, args.writes)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
