"""The write path alone, in one run: the append script's rate from 16 clients (`append_per_s_concurrent`) and the
HTTP writes at saturation of `passpro serve registration` (`http_writes_per_s`), as `passpro bench` measures them,
for several configurations of the service — a source tree (e.g. an older commit exported with `git archive`, to
compare before and after on the same busy machine) and a number of `--workers` — each on its own académie, run
one after the other, then again in the reverse order (the machine's load drifts: compare the ratios).

    python bench/write_path.py --config new:1 --config new:2 --config old=/tmp/base:1 [--keystore postgres]

Each configuration's figure is its writes/s at saturation and its share of the append rate measured in the same
run. The key store is PostgreSQL (schema `keystore`, the rows this run made deleted at the end) or the bench's
SQLite file. Ports 19240 and up (`--port`).
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import create_engine, text

from bench import limits, load
from bench.harness import DEFAULT_DATABASE_URL, QUICK, Bench
from bench.log_client import log_client
from bench.processes import Service
from bench.workers import run_workers, worker_pool
from bench.workload import LogWriter, Places
from shared.contracts.streams import StreamKeys
from shared.runtime.keys.crypto import MasterKey, parse_master_key
from shared.runtime.keys.store import KeyStore

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Config:
    name: str
    tree: Path
    workers: int

    @classmethod
    def parse(cls, text_: str) -> Config:
        """`name[=tree]:workers`; `new` is this checkout."""
        head, workers = text_.rsplit(":", 1)
        name, _, tree = head.partition("=")
        return cls(name, Path(tree) if tree else REPO, int(workers))

    @property
    def label(self) -> str:
        return f"{self.name}, {self.workers} worker{'s' if self.workers > 1 else ''}"


def start(bench: Bench, config: Config, academie: str, port: int) -> Service:
    url, schema = bench.database("postgres", f"registration_wp_{port}")
    bench.migrate("registration", url, schema)
    env = bench.env(academie, url, schema)
    env["PYTHONPATH"] = str(config.tree)  # the tree's code, before the installed checkout
    log_path = bench.workdir / f"registration-{port}.log"
    command = [sys.executable, "-m", "services.cli", "serve", "registration", "--port", str(port)]
    if config.workers > 1:
        command += ["--workers", str(config.workers)]
    with log_path.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=bench.workdir, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    service = Service("registration", port, process, log_path)
    service.wait_ready(120)
    return service


async def saturate(bench: Bench, pool, config: Config, order: int, port: int, profile: Path | None = None) -> dict:
    academie = f"{bench.http_academie}{order}"
    redis = log_client(bench.redis_url)
    await LogWriter(redis, StreamKeys(academie), bench.campaign, bench.keystore).open_campaign()
    await redis.aclose()
    service = start(bench, config, academie, port)
    try:
        principals, rectorat = bench.tokens()
        voeux = Places.from_reference().voeux
        workers, clients = bench.sizes.load_workers, bench.sizes.saturation_clients // bench.sizes.load_workers
        start_at = time.time() + 1
        # Worker numbers offset per run: each configuration registers its own students (INEs), keys included.
        plans = [load.ClientPlan(service.url, None, principals, rectorat, voeux, 10 * order + w, workers, clients,
                                 start_at, bench.sizes.http_seconds) for w in range(workers)]
        spy = None
        if profile is not None and config.workers == 1:  # py-spy on the service for the saturation, idle included
            spy = subprocess.Popen(
                ["py-spy", "record", "--pid", str(service.process.pid), "--format", "raw", "--idle", "--threads",
                 "--rate", "200", "--duration", str(int(bench.sizes.http_seconds)),
                 "--output", str(profile / f"{order}-{config.name}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu_before = cpu_seconds(service.process.pid)
        report = load.merge(run_workers(pool, load.saturation_worker, plans))
        cpu = cpu_seconds(service.process.pid) - cpu_before
        if spy is not None:
            spy.wait(30)
    finally:
        bench.services.running.append(service)
        bench.stop_service(service)
    return {"config": config.label, "http_writes_per_s": round(report.accepted / bench.sizes.http_seconds, 1),
            "write_ms_p50": load.percentile(report.write_ms, 50), "write_ms_p99": load.percentile(report.write_ms, 99),
            "refused": report.refused,
            "service_cpu_ms_per_write": round(cpu * 1000 / report.accepted, 2) if report.accepted else None}


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children (the workers of --workers N), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(c) for c in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def use_postgres_keystore(bench: Bench, database_url: str) -> None:
    """The bench's key store on PostgreSQL (schema `keystore`) instead of its SQLite file, for every process it
    starts: the key store of production (`deploy/`)."""
    bench.keystore.close()
    bench.keystore_url = database_url
    bench.keystore = KeyStore.open(database_url, MasterKey(parse_master_key(bench.master_key)))


async def clean_redis(bench: Bench, academies: list[str]) -> None:
    """The bench's own keys, and every key of the académies this run wrote to."""
    redis = log_client(bench.redis_url)
    await bench._clean_redis(redis)
    for academie in academies:
        async for key in redis.scan_iter(match=f"{StreamKeys(academie).prefix}*", count=1000):
            await redis.unlink(key)
    await redis.aclose()


def forget_keys(url: str, campaign: str, since: datetime, orders: int) -> int:
    """The key store rows this run made (PostgreSQL is shared): the HTTP students' (INEs ending HT, worker
    numbers of this run) and the append measurement's (its round's tags)."""
    tags = {limits._tag(SimpleNamespace(round=2, worker=w, client=c), c) for w in range(4) for c in range(4)}
    patterns = [f"%{t}" for t in tags] + [f"{10 * o + w:02d}%HT" for o in range(orders) for w in range(4)]
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            return sum(conn.execute(text("DELETE FROM keystore.student_keys WHERE campaign = :c AND created_at >= :s "
                                         "AND ine LIKE :p"), {"c": campaign, "s": since, "p": p}).rowcount
                       for p in patterns)
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", type=Config.parse, required=True)
    parser.add_argument("--keystore", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--seconds", type=float, default=QUICK.http_seconds, help="each saturation (default: --quick's)")
    parser.add_argument("--port", type=int, default=19240)
    parser.add_argument("--redis-url", default=os.environ.get("PASSPRO_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--py-spy", metavar="DIR", type=Path,
                        help="record each 1-worker service during its saturation (py-spy, raw collapsed stacks)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="passpro-write-path-"))
    since = datetime.now(UTC)
    sizes = QUICK.__class__(**{**QUICK.__dict__, "http_seconds": args.seconds})
    bench = Bench(sizes, args.redis_url, args.database_url, workdir)
    if args.keystore == "postgres":
        use_postgres_keystore(bench, args.database_url)
    pool = worker_pool(4, warm=("bench.limits", "bench.load"))
    runs: list[dict] = []
    try:
        order = [*args.config, *reversed(args.config)]
        for n, config in enumerate(order):
            append = limits.redis_rate(pool, limits.append_worker, args.redis_url, f"{bench.scratch}{n}",
                                       bench.campaign, 4, 4, sizes.limit_seconds, 2, bench.keystore_url,
                                       bench.master_key)
            result = asyncio.run(saturate(bench, pool, config, n, args.port + n, args.py_spy))
            result.update(append_per_s_concurrent=round(append, 1),
                          share=round(result["http_writes_per_s"] / append, 3) if append else None)
            runs.append(result)
            print(json.dumps(result, ensure_ascii=False), flush=True)
    finally:
        pool.shutdown(cancel_futures=True)
        bench.services.stop_all()

        asyncio.run(clean_redis(bench, [f"{tag}{n}" for n in range(2 * len(args.config))
                                        for tag in (bench.http_academie, bench.scratch)]))
        bench.keystore.close()
        bench._drop_schemas()
        if args.keystore == "postgres":
            print(f"key store rows removed: {forget_keys(args.database_url, bench.campaign, since, len(runs) + 1)}",
                  file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
    summary: dict[str, list] = {}
    for run in runs:
        summary.setdefault(run["config"], []).append((run["share"], run["service_cpu_ms_per_write"]))
    for label, figures in summary.items():
        print(f"{label}: (share of the 16-client append, service CPU ms per write) {figures}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "keystore": args.keystore}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
