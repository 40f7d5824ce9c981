"""How fast scoring's projection catches up on a log it has never read, alone (the rest: `passpro bench`).

    python bench/catchup.py [--events 100000] [--redis URL] [--postgres URL]

Writes the bench's realistic log under its own académie tag through the real
append script, then times `passpro rebuild` catching up from the start on
SQLite and on PostgreSQL at each size up to `--events` (10k, 100k, 1M),
prints a table, and deletes what it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from bench.harness import DEFAULT_DATABASE_URL, FULL, Bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--redis", default=os.environ.get("PASSPRO_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--postgres", default=os.environ.get("PASSPRO_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="passpro-catchup-"))
    try:
        series = asyncio.run(Bench(FULL.with_events(args.events), args.redis, args.postgres, workdir).catch_ups_only())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{'events':>9} {'students':>9} {'SQLite/s':>9} {'PostgreSQL/s':>13} {'rebuild s (SQLite, PG)':>24}")
    for p in series:
        print(f"{p['events']:>9} {p['students']:>9} {p['sqlite']:>9} {p['postgres']:>13} "
              f"{p['rebuild_seconds_sqlite']:>12} {p['rebuild_seconds_postgres']:>11}")


if __name__ == "__main__":
    main()
