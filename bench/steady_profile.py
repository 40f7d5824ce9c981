"""The steady phase of `passpro bench` alone (issue 16's end to end at half saturation): registration and scoring
started as the bench starts them, the open-loop load of `bench/load.py` (2 processes, each 201 read back from
scoring with `min_position`) at each `--rate` for `--seconds`, and where the CPU went.

    python bench/steady_profile.py --rate 40 --rate 80 --seconds 15 [--py-spy DIR] [--keystore postgres]

For each rate, on its own académie and fresh services: accepted, write p50/p99, e2e p50/p99 (every read counted),
not visible, and the CPU seconds per accepted write of registration, scoring, each load process, the log server
and PostgreSQL (all of its backends: others' work on a shared machine counts too). With `--py-spy`, both services
and the first load process are recorded (`--idle --threads`, raw collapsed stacks) during the load. Ports 9100 and up (`--port`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import load
from bench.harness import DEFAULT_DATABASE_URL, QUICK, Bench
from bench.log_client import log_client
from bench.workers import worker_pool
from bench.write_path import cpu_seconds
from shared.contracts.streams import StreamKeys
from shared.runtime.keys.crypto import MasterKey, parse_master_key
from shared.runtime.keys.store import KeyStore

LOAD_PROCESSES = 2  # as the bench's steady phase
IDLE_S = 3.0  # the services' CPU with no load, measured before it


def pids_named(*names: str) -> list[int]:
    """The processes whose command name is one of `names` (the log server, PostgreSQL's backends)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def own_cpu_seconds(pid: int) -> float:
    """User and system CPU of the process alone (PostgreSQL's backends are counted each, not in their parent)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_pid(names: tuple[str, ...]) -> dict[int, float]:
    return {pid: own_cpu_seconds(pid) for pid in pids_named(*names)}


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two readings by the processes seen at the second (a backend that ended is missed)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def spy(pid: int, seconds: float, output: Path, idle: bool) -> subprocess.Popen:
    return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--format", "raw", *(["--idle"] if idle else []), "--threads",
                             "--rate", "200", "--duration", str(int(seconds)), "--output", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def one_rate(bench: Bench, rate: float, order: int, profile: Path | None, idle: bool) -> dict:
    redis = log_client(bench.redis_url)
    try:
        registration, scoring = await bench.start_steady_services(redis, f"{bench.steady_academie}{order}",
                                                                  f"profile{order}")
    finally:
        await redis.aclose()
    loaders = [p.pid for p in bench.pool._processes.values()]  # the pool's processes, the load's
    others = {"log_server": ("redis-server", "valkey-server"), "postgresql": ("postgres",)}

    def cpu_now() -> tuple[dict[str, float], dict[str, dict[int, float]]]:
        mine = {"registration": cpu_seconds(registration.process.pid), "scoring": cpu_seconds(scoring.process.pid),
                **{f"load{n}": cpu_seconds(p) for n, p in enumerate(loaders)}}
        return mine, {k: cpu_by_pid(names) for k, names in others.items()}

    idle_before, _ = cpu_now()
    time.sleep(IDLE_S)  # what the services burn with nothing to do (consumers' polls, leases), per second
    idle_after, _ = cpu_now()
    spies = []
    if profile is not None:
        # py-spy's own sampling takes CPU too (three processes at 200 Hz): compare CPU figures of runs without it.
        recorded = {"registration": registration.process.pid, "scoring": scoring.process.pid, "load0": loaders[0]}
        spies = [spy(pid, bench.sizes.steady_seconds + 1, profile / f"{order}-{name}-{rate:.0f}.txt", idle)
                 for name, pid in recorded.items()]
    (before, others_before), wall = cpu_now(), time.monotonic()
    report = bench.steady_load(registration, scoring, rate, LOAD_PROCESSES)
    (after, others_after), wall = cpu_now(), time.monotonic() - wall
    used = {k: after[k] - before[k] for k in before} | {k: cpu_used(others_before[k], others_after[k]) for k in others}
    for s in spies:
        s.wait(60)
    bench.stop_service(registration)
    bench.stop_service(scoring)
    accepted = max(report.accepted, 1)
    return {
        "offered_per_s": rate, "accepted": report.accepted, "refused": report.refused,
        "write_ms_p50": load.percentile(report.write_ms, 50), "write_ms_p99": load.percentile(report.write_ms, 99),
        "e2e_ms_p50": load.percentile(report.e2e_ms, 50), "e2e_ms_p99": load.percentile(report.e2e_ms, 99),
        "e2e_reads": len(report.e2e_ms), "e2e_not_visible": report.e2e_not_visible,
        "late_starts": report.late_starts, "unanswered_at_cutoff": report.unanswered,
        "wall_s": round(wall, 1),
        # CPU milliseconds per accepted write (a write is a POST and its read-back GET for the load processes)
        "cpu_ms_per_write": {k: round(v * 1000 / accepted, 2) for k, v in used.items()},
        "cpu_share_of_2_cores": round(sum(used.values()) / (2 * wall), 2),
        "idle_cpu_ms_per_s": {k: round((idle_after[k] - idle_before[k]) * 1000 / IDLE_S, 1)
                              for k in ("registration", "scoring")},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", action="append", type=float, required=True, help="writes/s offered (repeatable)")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--keystore", choices=("sqlite", "postgres"), default="sqlite",
                        help="the bench's SQLite file (as `passpro bench`) or PostgreSQL")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--redis-url", default=os.environ.get("PASSPRO_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--py-spy", metavar="DIR", type=Path)
    parser.add_argument("--cpu-only", action="store_true", help="py-spy without --idle: the shares of CPU, not of time")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="passpro-steady-"))
    sizes = QUICK.__class__(**{**QUICK.__dict__, "steady_seconds": args.seconds})
    bench = Bench(sizes, args.redis_url, args.database_url, workdir)
    bench.services.ports = iter(range(args.port, args.port + 100))
    if args.keystore == "postgres":
        bench.keystore.close()
        bench.keystore_url = args.database_url
        bench.keystore = KeyStore.open(args.database_url, MasterKey(parse_master_key(bench.master_key)))
    if args.py_spy:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    bench.pool = worker_pool(LOAD_PROCESSES, warm=("bench.load",))
    runs = []
    try:
        for order, rate in enumerate(args.rate):
            result = asyncio.run(one_rate(bench, rate, order, args.py_spy, not args.cpu_only))
            runs.append(result)
            print(json.dumps(result, ensure_ascii=False), flush=True)
    finally:
        bench.pool.shutdown(cancel_futures=True)
        bench.services.stop_all()

        async def clean() -> None:
            redis = log_client(args.redis_url)
            for order in range(len(args.rate)):
                prefix = StreamKeys(f"{bench.steady_academie}{order}").prefix
                async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
                    await redis.unlink(key)
            await redis.aclose()

        asyncio.run(clean())
        bench.keystore.close()
        bench._drop_schemas()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "keystore": args.keystore}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
