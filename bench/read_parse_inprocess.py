"""The projection's reading limit alone (`bench.limits.read_parse_rate`, the consumer's own functions) on a sealed
bench log, in wall time and in the process's CPU time, to compare two versions of the read on a busy machine.

    python -m bench.read_parse_inprocess write [--events 60000] [--state /tmp/read-parse.json]
    python -m bench.read_parse_inprocess measure [--state /tmp/read-parse.json] [--page 2000]
    python -m bench.read_parse_inprocess delete [--state /tmp/read-parse.json]

`write` appends the bench's sealed log (`bench/workload.py`, an académie of its own, a SQLite key store beside
the state file) and keeps it; `measure` runs `read_parse_rate` over it twice, once timed by `perf_counter` (what
the bench reports) and once with `process_time` in its place (CPU, the key store's thread included), and prints
µs per entry of the bare read, the read, the keys and the parse, and the ratio the target asks (read-parse
limit / bare read limit, ≥ 0.5). Alternate two trees (`PYTHONPATH`) on the same state: A B A B.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path

from bench import limits
from bench.log_client import log_client
from bench.workload import LogWriter
from shared.contracts.streams import StreamKeys
from shared.runtime.keys.crypto import MasterKey, format_master_key, new_key, parse_master_key
from shared.runtime.keys.store import KeyStore

CAMPAIGN = "2027"


def _keystore(state: Path, master: bytes) -> KeyStore:
    return KeyStore.open(f"sqlite:///{state.with_suffix('.keys.sqlite3')}", MasterKey(master))


async def write(args: argparse.Namespace) -> None:
    master, academie = new_key(), f"bench-readparse-{uuid.uuid4().hex[:8]}"
    keystore = _keystore(args.state, master)
    redis = log_client(args.redis, decode_responses=True)
    try:
        writer = LogWriter(redis, StreamKeys(academie), CAMPAIGN, keystore)
        await writer.open_campaign()
        await writer.write(args.events)
    finally:
        await redis.aclose()
        keystore.close()
    args.state.write_text(json.dumps({"academie": academie, "master_key": format_master_key(master)}))
    print(f"log: {writer.events} events, {writer.students} students (académie {academie}); state {args.state}")


async def measure(args: argparse.Namespace) -> None:
    state = json.loads(args.state.read_text())
    keystore = _keystore(args.state, parse_master_key(state["master_key"]))
    try:
        for clock_name, clock in (("wall", time.perf_counter), ("CPU", time.process_time)):
            limits.time.perf_counter = clock  # the module's clock: read_parse_rate times every step with it
            try:
                r = await limits.read_parse_rate(args.redis, StreamKeys(state["academie"]), CAMPAIGN, keystore,
                                                 max_seconds=3600, page=args.page)
            finally:
                limits.time.perf_counter = time.perf_counter
            us = [s / r.entries * 1e6 for s in (r.bare_read_seconds, r.read_seconds, r.keys_seconds, r.parse_seconds,
                                                 r.parse_ignoring_sealing_seconds)]
            print(f"{clock_name:<4} {r.entries} entries, µs per entry: bare read {us[0]:.1f} / read {us[1]:.1f} / "
                  f"keys {us[2]:.1f} / parse {us[3]:.1f} (sealing ignored {us[4]:.1f}); read-parse / bare read "
                  f"{r.events_per_s / r.bare_read_events_per_s:.3f} (load {os.getloadavg()[0]:.1f})")
    finally:
        keystore.close()


async def delete(args: argparse.Namespace) -> None:
    state = json.loads(args.state.read_text())
    redis = log_client(args.redis)
    try:
        async for key in redis.scan_iter(f"{StreamKeys(state['academie']).prefix}*"):
            await redis.delete(key)
    finally:
        await redis.aclose()
    args.state.with_suffix(".keys.sqlite3").unlink(missing_ok=True)
    args.state.unlink()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("write", "measure", "delete"))
    parser.add_argument("--state", type=Path, default=Path("/tmp/read-parse.json"))
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--page", type=int, default=2000)
    parser.add_argument("--redis", default=os.environ.get("PASSPRO_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    asyncio.run({"write": write, "measure": measure, "delete": delete}[args.action](args))
