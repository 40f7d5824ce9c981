"""Scoring's projection catching up in this process, timed in wall time and in CPU (the event loop's thread and
the others apart), for profiling and for comparing two versions of the code on a busy machine.

    python -m bench.catchup_inprocess [--events 30000] [--db sqlite|postgres|both] [--rounds 1] [--redis URL]
                                      [--postgres URL] [--page 1000] [--keep-log]

Writes the bench's sealed log (`bench/workload.py`, its own académie tag, a key store in a temporary
directory) once, then per round and database a fresh projection (scoring's `Consumer` and
`BonusProjection`, as `passpro rebuild` builds one) catches up from the start. Prints entries, seconds,
events/s, and microseconds of CPU per event: of the whole process, of the event loop's thread (reading,
keys, parsing) and of the others (the commits, in worker threads). On a loaded machine CPU per event
moves much less than wall time: compare versions by it, alternating them (`PYTHONPATH` at each tree).
Everything it wrote (log keys, dead letters, schema, files) is deleted at the end unless `--keep-log`.
Profile it with `py-spy record --format raw -- python -m bench.catchup_inprocess …`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import create_engine, text

from bench.harness import DEFAULT_DATABASE_URL
from bench.log_client import log_client
from bench.workload import LogWriter
from services.scoring.app import MIGRATIONS
from services.scoring.views import BonusProjection
from shared.contracts.streams import StreamKeys
from shared.runtime.db import ensure_schema, make_engine
from shared.runtime.keys.crypto import MasterKey, new_key
from shared.runtime.keys.store import KeyStore
from shared.runtime.migrations import upgrade
from shared.runtime.projection.consumer import Consumer


async def catch_up(redis: Redis, keys: StreamKeys, keystore: KeyStore, url: str, schema: str | None, page: int) -> dict:
    upgrade(MIGRATIONS, url, schema)
    engine = make_engine(url, schema)
    consumer = Consumer(redis, engine, keys, BonusProjection(), keystore=keystore, page_size=page)
    started, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    try:
        entries = await consumer.catch_up()
    finally:
        engine.dispose()
    wall, cpu, loop_cpu = time.perf_counter() - started, time.process_time() - cpu, time.thread_time() - loop_cpu
    return {"entries": entries, "seconds": wall, "per_s": entries / wall, "cpu_us": cpu / entries * 1e6,
            "loop_us": loop_cpu / entries * 1e6, "others_us": (cpu - loop_cpu) / entries * 1e6,
            "read_ahead_pages": consumer.read_ahead_used, "file_hits": consumer.files.hits}


async def main(args: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:8]
    keys = StreamKeys(f"bench-inproc-{run}")
    workdir = Path(tempfile.mkdtemp(prefix="passpro-catchup-inproc-"))
    redis = log_client(args.redis, decode_responses=True)  # as the services' consumers read
    keystore = KeyStore.open(f"sqlite:///{workdir / 'keys.sqlite3'}", MasterKey(new_key()))
    admin = create_engine(args.postgres)
    try:
        writer = LogWriter(redis, keys, "2027", keystore)
        await writer.open_campaign()
        await writer.write(args.events)
        print(f"log: {writer.events} events, {writer.students} students (académie {keys.academie})")
        for round_ in range(args.rounds):
            for db in (["sqlite", "postgres"] if args.db == "both" else [args.db]):
                if db == "sqlite":
                    url, schema = f"sqlite:///{workdir / f'view-{round_}.sqlite3'}", None
                else:
                    url, schema = args.postgres, f"bench_inproc_{run}_{round_}"
                    ensure_schema(url, schema)
                r = await catch_up(redis, keys, keystore, url, schema, args.page)
                print(f"{db:<9} {r['entries']} entries in {r['seconds']:.2f} s, {r['per_s']:,.0f} events/s; CPU "
                      f"{r['cpu_us']:.0f} µs per event (event loop {r['loop_us']:.0f}, other threads {r['others_us']:.0f}); "
                      f"pages read ahead {r['read_ahead_pages']}, files kept and reused {r['file_hits']} "
                      f"(load {os.getloadavg()[0]:.1f})")
    finally:
        if not args.keep_log:
            async for key in redis.scan_iter(f"{keys.prefix}*"):
                await redis.delete(key)
            with admin.begin() as conn:
                for round_ in range(args.rounds):
                    conn.execute(text(f"DROP SCHEMA IF EXISTS bench_inproc_{run}_{round_} CASCADE"))
            shutil.rmtree(workdir, ignore_errors=True)
        admin.dispose()
        keystore.close()
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--redis", default=os.environ.get("PASSPRO_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--postgres", default=os.environ.get("PASSPRO_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--keep-log", action="store_true")
    asyncio.run(main(parser.parse_args()))
