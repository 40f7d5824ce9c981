"""`passpro bench`: every figure of issue 7, measured side by side with the machine's limits in one run.

What it sets up, all of it its own and all of it removed at the end:
- a log server: `PASSPRO_REDIS_URL`, or an embedded Valkey (as `passpro up`) in a temporary directory;
- a fresh académie tag per purpose (the bench log, the scratch writes of the limits, the HTTP loads),
  so nothing meets another's keys and cleaning up is deleting the tag's keys;
- PostgreSQL schemas named after the run (`PASSPRO_BENCH_DATABASE_URL`) and SQLite files in a temporary directory;
- the services under test as separate processes (`passpro serve NAME --port P`), load from worker processes.

The projection's catch-up is measured inside a rebuild: `passpro rebuild`'s work in a process of its
own (`bench/rebuild_run.py`), whose build phase is a fresh projection (the scoring service's own
Consumer and BonusProjection) catching up from the start of the log; the process reports the
catch-up's entries and seconds as values (from the start of its reading to its last page), its wall
time is the rebuild figure, its peak memory the catch-up's. So each database's catch-up runs once per
log size.

The order keeps what is measured alone on the machine's two cores: the log server's limits, the log
and the catch-ups, the reading and writing limits, the queries, the HTTP loads, and the peer last.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import importlib.util
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import create_engine, text

from bench import limits, load
from bench.figures import NAMES
from bench.log_client import log_client
from bench.processes import Service, Services, run_rebuild
from bench.workers import run_workers, worker_pool
from bench.workload import LogWriter, Places
from shared.contracts.streams import StreamKeys
from shared.runtime.keys.crypto import MasterKey, parse_master_key
from shared.runtime.keys.store import KeyStore
from shared.runtime.settings import campaign_in_force, paris_today, sqlite_url

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DATABASES = ("sqlite", "postgres")


@dataclass(frozen=True)
class Sizes:
    events: int  # the bench log, caught up from the start
    series: tuple[int, ...]  # log sizes at which the catch-up is measured (the chart); the last is `events`
    limit_seconds: float  # each limit's measurement
    http_seconds: float  # saturation
    steady_seconds: float  # the steady 200 writes/s (HTTP p99 and end to end)
    query_requests: int  # per query
    peer_seconds: float  # the peer's catch-up is timed for this long at most
    peer_events: int  # the peer's log: the first events of the same workload (see BENCHMARKS.md)
    steady_rate: float = 200.0
    saturation_clients: int = 32
    light_load_fraction: float = 0.5  # also a steady run at this share of the saturation rate measured just before
    load_workers: int = 4  # processes that share the HTTP clients

    def with_events(self, events: int) -> Sizes:
        """The same run on a log of `events`: the series keeps its smaller sizes and ends at `events`."""
        series = tuple(s for s in self.series[:-1] if s < events) + (events,)
        return Sizes(**{**asdict(self), "events": events, "series": series})


# --quick: issue 7's 100,000 events in under 3 minutes (about 2 here, BENCHMARKS.md), with short loads.
QUICK = Sizes(events=100_000, series=(100_000,), limit_seconds=2, http_seconds=5, steady_seconds=5,
              query_requests=60, peer_seconds=10, peer_events=10_000)
FULL = Sizes(events=1_000_000, series=(10_000, 100_000, 1_000_000), limit_seconds=4, http_seconds=15,
             steady_seconds=20, query_requests=200, peer_seconds=60, peer_events=100_000)


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Bench:
    sizes: Sizes
    redis_url: str
    database_url: str
    workdir: Path
    say: Callable[[str], None] = _say
    figures: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        run = uuid.uuid4().hex[:8]
        self.academie = f"bench-{run}"  # the bench log
        self.scratch = f"bench-{run}-x"  # the limits' writes
        self.http_academie = f"bench-{run}-h"
        self.steady_academie = f"bench-{run}-s"
        self.schema_prefix = f"bench_{run}"
        self.schemas: list[str] = []
        self.campaign = campaign_in_force(paris_today())  # the services' own default, at Paris's date
        self.secret = secrets.token_urlsafe(48)
        self.master_key = base64.b64encode(secrets.token_bytes(32)).decode()  # the bench's own, for serve
        # One key store for the run, shared by the bench's writer, its readers and every process it starts
        # (as `passpro up` shares keys.sqlite3 under the data dir between the services).
        self.keystore_url = sqlite_url(self.workdir, "keys")
        self.keystore = KeyStore.open(self.keystore_url, MasterKey(parse_master_key(self.master_key)))
        self.services = Services(self.workdir)
        self.phases: dict[str, float] = {}
        self.live: dict[str, tuple[str, str | None]] = {}  # the projections caught up on the whole log, by database

    # --- plumbing ------------------------------------------------------------------------

    def schema(self, what: str) -> str:
        name = f"{self.schema_prefix}_{what}"
        self.schemas.append(name)
        return name

    def env(self, academie: str, database_url: str, schema: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PASSPRO_")}
        env.update(
            PASSPRO_REDIS_URL=self.redis_url, PASSPRO_ACADEMIE=academie, PASSPRO_CAMPAIGN=self.campaign,
            PASSPRO_JWT_SECRET=self.secret, PASSPRO_MASTER_KEY=self.master_key, PASSPRO_DATA_DIR=str(self.workdir),
            PASSPRO_KEYSTORE_DATABASE_URL=self.keystore_url, PASSPRO_DATABASE_URL=database_url,
            PYTHONUNBUFFERED="1",
        )
        if schema:
            env["PASSPRO_DATABASE_SCHEMA"] = schema
        return env

    def database(self, db: str, what: str) -> tuple[str, str | None]:
        if db == "sqlite":
            return f"sqlite:///{self.workdir / (what + '.sqlite3')}", None
        return self.database_url, self.schema(what)

    def migrate(self, name: str, database_url: str, schema: str | None) -> None:
        from services.cli.common import app_factory
        from shared.runtime.migrations import upgrade

        _, migrations = app_factory(name)
        upgrade(migrations, database_url, schema or name)

    def start_service(self, name: str, academie: str, database_url: str, schema: str | None) -> Service:
        self.migrate(name, database_url, schema)
        return self.services.start(name, self.env(academie, database_url, schema or name))

    def tokens(self) -> tuple[dict[str, str], str]:
        from shared.contracts.reference import default_reference_text, parse_reference
        from shared.runtime.http.auth import issue_token

        reference = parse_reference(default_reference_text())
        principals = {
            e.uai: issue_token(self.secret, user_id=f"principal.{e.uai.lower()}", role="principal", uai=e.uai,
                               reference=reference, ttl_seconds=6 * 3600)
            for e in reference.establishments if e.type == "college"
        }
        rectorat = issue_token(self.secret, user_id="rectorat.bench", role="rectorat", uai=None, reference=reference,
                               ttl_seconds=6 * 3600)
        return principals, rectorat

    def stop_service(self, service: Service) -> None:
        """Stop a service and keep what its log says of unexpected errors (its log goes with the run's directory)."""
        self.services.stop(service)
        errors = unexpected_errors(service.log())
        if errors:
            kept = self.context.setdefault("service_errors", [])
            kept.append({"service": service.name, "port": service.port, **errors})

    def phase(self, name: str, started: float) -> None:
        self.phases[name] = round(time.monotonic() - started, 1)

    # --- the run ---------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        redis = log_client(self.redis_url)
        self.pool = worker_pool(4, warm=("bench.limits", "bench.load", "bench.peer_eventsourcing"))
        try:
            await self._redis_limits()
            writer = LogWriter(redis, StreamKeys(self.academie), self.campaign, self.keystore)
            await writer.open_campaign()
            await self._log_and_catch_ups(writer)
            await self._read_parse_limit()
            self._upsert_limits()
            self._queries()
            await self._http(redis)
            self._peer()
        finally:
            self.pool.shutdown(cancel_futures=True)
            self.services.stop_all()
            await self._clean_redis(redis)
            await redis.aclose()
            self.keystore.close()
            self._drop_schemas()
        self.context.update(phases_seconds=self.phases)
        return self.figures

    async def catch_ups_only(self) -> list[dict[str, Any]]:
        """Only the log and the projection's catch-ups at each size of the series (`bench/catchup.py`)."""
        redis = log_client(self.redis_url)
        try:
            writer = LogWriter(redis, StreamKeys(self.academie), self.campaign, self.keystore)
            await writer.open_campaign()
            await self._log_and_catch_ups(writer)
        finally:
            await self._clean_redis(redis)
            await redis.aclose()
            self.keystore.close()
            self._drop_schemas()
        return self.context["series"]

    async def _redis_limits(self) -> None:
        started = time.monotonic()
        s = self.sizes.limit_seconds
        self.say("log server limits: XADD, append from 1 and from 16 clients, and from 1 without sealing")
        rate = functools.partial(limits.redis_rate, self.pool)
        sealed = (self.keystore_url, self.master_key)
        self.figures["raw_xadd_per_s"] = rate(limits.xadd_worker, self.redis_url, self.scratch, self.campaign, 1, 1, s, 0)
        self.figures["append_per_s"] = rate(limits.append_worker, self.redis_url, self.scratch, self.campaign, 1, 1, s, 1,
                                             *sealed)
        self.figures["append_per_s_concurrent"] = rate(
            limits.append_worker, self.redis_url, self.scratch, self.campaign, 4, 4, s, 2, *sealed)
        self.figures["append_per_s_plaintext"] = rate(
            limits.append_worker, self.redis_url, self.scratch, self.campaign, 1, 1, s, 3)
        self.phase("log server limits", started)

    async def _log_and_catch_ups(self, writer: LogWriter) -> None:
        """Grow the log to each size of the series; at each, `passpro rebuild` catches up from the start on each
        database (timed from its progress), into the live projection that the queries then read."""
        series = []
        for db in DATABASES:
            url, schema = self.database(db, f"scoring_{db}")
            self.migrate("scoring", url, schema)
            self.live[db] = (url, schema)
        for size in self.sizes.series:
            started = time.monotonic()
            self.say(f"writing the bench log up to {size:,} events")
            written_at = time.perf_counter()
            added = await writer.write(size)
            self.context.setdefault("log_write_events_per_s", []).append(
                {"events": writer.events, "rate": round(added / (time.perf_counter() - written_at))})
            self.phase(f"log to {size:,}", started)
            point: dict[str, Any] = {"events": writer.events, "students": writer.students}
            for db in DATABASES:
                started = time.monotonic()
                url, schema = self.live[db]
                self.say(f"rebuild over {writer.events:,} events, {db}")
                rebuilt = await asyncio.to_thread(run_rebuild, self.env(self.academie, url, schema), self.workdir, 7200)
                if rebuilt.entries != writer.events:
                    raise RuntimeError(f"the rebuild read {rebuilt.entries} entries of {writer.events}")
                point[db] = round(rebuilt.events_per_s)
                point[f"rebuild_seconds_{db}"] = round(rebuilt.seconds, 1)
                point[f"peak_mb_{db}"] = round(rebuilt.peak_mb, 1)
                self.phase(f"rebuild {size:,} {db}", started)
            series.append(point)
        last = series[-1]
        for db in DATABASES:
            self.figures[f"projection_events_per_s_{db}"] = last[db]
            self.figures[f"rebuild_seconds_{db}"] = last[f"rebuild_seconds_{db}"]
        self.figures["rss_mb_scoring"] = max(last["peak_mb_sqlite"], last["peak_mb_postgres"])
        self.context.update(log_events=writer.events, log_students=writer.students, series=series)

    async def _read_parse_limit(self) -> None:
        started = time.monotonic()
        self.say("reading limit: XRANGE + keys + open and parse (and the parse with sealing ignored, and the bare XRANGE)")
        read = await limits.read_parse_rate(self.redis_url, StreamKeys(self.academie), self.campaign, self.keystore,
                                            max_seconds=self.sizes.limit_seconds * 2)
        self.figures["read_parse_limit_events_per_s"] = read.events_per_s
        self.figures["read_parse_limit_events_per_s_plaintext"] = read.events_per_s_plaintext
        self.figures["read_bare_limit_events_per_s"] = read.bare_read_events_per_s
        self.context["read_parse"] = {**asdict(read), "us_per_entry": {
            what: round(getattr(read, f"{what}_seconds") / read.entries * 1e6, 1)
            for what in ("bare_read", "read", "keys", "parse", "parse_ignoring_sealing")}}
        self.phase("read-parse limit", started)

    def _upsert_limits(self) -> None:
        for db in DATABASES:
            started = time.monotonic()
            self.say(f"writing limit: bare upserts, {db}")
            url, schema = self.database(db, f"upsert_{db}")
            upserts = limits.upsert_rate(url, schema, self.sizes.limit_seconds)
            self.figures[f"upsert_limit_rows_per_s_{db}"] = upserts.rows_per_s
            # The same rate in the events those rows stand for: what the projection's events/s compares with.
            self.context.setdefault("upsert_limit_events_per_s", {})[db] = round(upserts.events_per_s)
            self.phase(f"upsert limit {db}", started)

    def _queries(self) -> None:
        """The queries, through scoring's API, on the projection `passpro rebuild` just made on PostgreSQL."""
        started = time.monotonic()
        url, schema = self.live["postgres"]
        scoring = self.services.start("scoring", self.env(self.academie, url, schema))
        scoring.wait_ready()
        self.say(f"queries on {self.context['log_students']:,} students (PostgreSQL)")
        _, rectorat = self.tokens()
        lycee, _ = Places.from_reference().voeux[0]
        filtered = {"lycee_uai": lycee, "min_points": 2500, "limit": 100}
        [times] = run_workers(self.pool, _query_plan, [(scoring.url, rectorat, self.sizes.query_requests, filtered)])
        self.figures["query_ms_p99_summary"] = load.percentile(times["summary"], 99)
        self.figures["query_ms_p99_bonuses_filtered"] = load.percentile(times["bonuses_filtered"], 99)
        self.context["query_ms_p50"] = {k: load.percentile(v, 50) for k, v in times.items()}
        self.context["scoring_service_peak_mb_serving_queries"] = round(scoring.sample_memory(), 1)
        self.stop_service(scoring)
        self.phase("queries", started)

    async def _http(self, redis: Redis) -> None:
        principals, rectorat = self.tokens()
        voeux = Places.from_reference().voeux
        started = time.monotonic()
        await LogWriter(redis, StreamKeys(self.http_academie), self.campaign, self.keystore).open_campaign()
        url, schema = self.database("postgres", "registration_http")
        registration = self.start_service("registration", self.http_academie, url, schema)
        registration.wait_ready()
        workers, clients = self.sizes.load_workers, self.sizes.saturation_clients // self.sizes.load_workers
        self.say(f"HTTP writes at saturation: {workers * clients} clients for {self.sizes.http_seconds:.0f} s")
        start_at = time.time() + 1
        plans = [load.ClientPlan(registration.url, None, principals, rectorat, voeux, w, workers, clients, start_at,
                                 self.sizes.http_seconds) for w in range(workers)]
        saturated = load.merge(run_workers(self.pool, load.saturation_worker, plans))
        self.figures["http_writes_per_s"] = saturated.accepted / self.sizes.http_seconds
        self.context["http_saturation"] = {"accepted": saturated.accepted, "refused": saturated.refused,
                                           "write_ms_p50": load.percentile(saturated.write_ms, 50),
                                           "write_ms_p99": load.percentile(saturated.write_ms, 99),
                                           "late_start_s": round(saturated.late_s, 3)}
        self.stop_service(registration)
        self.phase("http saturation", started)

        rates = [self.sizes.steady_rate]
        if self.sizes.light_load_fraction:
            # What the latencies are when the service is not overloaded: a share of the rate it sustained just now.
            rates.append(max(5.0, round(self.figures["http_writes_per_s"] * self.sizes.light_load_fraction)))
        for n, rate in enumerate(rates):
            started = time.monotonic()
            steady = await self._steady(redis, rate, f"{self.steady_academie}{n or ''}")
            summary = {
                "offered_per_s": rate, "accepted": steady.accepted, "refused": steady.refused,
                "write_ms_p50": load.percentile(steady.write_ms, 50), "write_ms_p99": load.percentile(steady.write_ms, 99),
                # over every read-back, those that came back without the change (or were cut off) included
                "e2e_ms_p50": load.percentile(steady.e2e_ms, 50), "e2e_ms_p99": load.percentile(steady.e2e_ms, 99),
                "e2e_reads": len(steady.e2e_ms), "e2e_not_visible": steady.e2e_not_visible,
                "late_starts": steady.late_starts, "late_start_s": round(steady.late_s, 3),
                "unanswered_at_cutoff": steady.unanswered,
            }
            if n == 0:
                self.figures["http_write_ms_p99_at_200"] = summary["write_ms_p99"]
                self.figures["e2e_latency_ms_p50"] = summary["e2e_ms_p50"]
                self.figures["e2e_latency_ms_p99"] = summary["e2e_ms_p99"]
                self.context["http_steady"] = summary
            else:
                self.figures["e2e_latency_ms_p99_at_half_saturation"] = summary["e2e_ms_p99"]
                self.context["http_half_saturation"] = {
                    **summary, "share_of_saturation": self.sizes.light_load_fraction,
                    "saturation_per_s": round(self.figures["http_writes_per_s"], 1)}
            self.phase(f"http steady {rate:.0f}/s + e2e", started)

    async def _steady(self, redis: Redis, rate: float, academie: str) -> load.WorkerReport:
        """Writes at a steady `rate` through registration, each read back from scoring (`min_position`)."""
        registration, scoring = await self.start_steady_services(redis, academie, f"steady{int(rate)}")
        steady = self.steady_load(registration, scoring, rate)
        self.context.setdefault("scoring_peak_mb_following_writes", []).append(round(scoring.sample_memory(), 1))
        self.stop_service(registration)
        self.stop_service(scoring)
        return steady

    async def start_steady_services(self, redis: Redis, academie: str, tag: str) -> tuple[Service, Service]:
        """Registration and scoring on a fresh académie (its campaign opened), each on its own schema, ready."""
        await LogWriter(redis, StreamKeys(academie), self.campaign, self.keystore).open_campaign()
        url, schema = self.database("postgres", f"registration_{tag}")
        registration = self.start_service("registration", academie, url, schema)
        url, schema = self.database("postgres", f"scoring_{tag}")
        scoring = self.start_service("scoring", academie, url, schema)
        registration.wait_ready()
        scoring.wait_ready()
        return registration, scoring

    def steady_load(self, registration: Service, scoring: Service, rate: float, workers: int = 2) -> load.WorkerReport:
        """The open-loop load of `load.steady_worker` from `workers` of the pool's processes, merged."""
        principals, rectorat = self.tokens()
        self.say(f"HTTP writes at a steady {rate:.0f}/s for {self.sizes.steady_seconds:.0f} s, each read back from scoring")
        start_at = time.time() + 1
        plans = [load.ClientPlan(registration.url, scoring.url, principals, rectorat, Places.from_reference().voeux, w,
                                 workers, 1, start_at, self.sizes.steady_seconds, rate / workers) for w in range(workers)]
        return load.merge(run_workers(self.pool, load.steady_worker, plans))

    def _peer(self) -> None:
        started = time.monotonic()
        if importlib.util.find_spec("eventsourcing") is None:
            self.say("peer skipped: the eventsourcing library is not installed (pip install -e '.[bench]')")
            self.context["peer"] = "not installed"
            return
        schema = self.schema("peer")
        engine = create_engine(self.database_url)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        engine.dispose()
        events = min(self.sizes.events, self.sizes.peer_events)
        self.say(f"peer: eventsourcing on PostgreSQL, {events:,} events, its catch-up timed {self.sizes.peer_seconds:.0f} s at most")
        [peer] = run_workers(self.pool, _peer_plan, [(self.database_url, schema, events, self.campaign,
                                                          self.sizes.peer_seconds)])
        self.figures["peer_eventsourcing_events_per_s"] = peer["events_per_s"]
        self.context["peer"] = peer
        self.phase("peer", started)

    # --- cleaning up ------------------------------------------------------------------------

    async def _clean_redis(self, redis: Redis) -> None:
        for academie in (self.academie, self.scratch, self.http_academie, self.steady_academie, f"{self.steady_academie}1"):
            prefix = StreamKeys(academie).prefix
            batch = []
            async for key in redis.scan_iter(match=f"{prefix}*", count=5000):
                batch.append(key)
                if len(batch) >= 5000:
                    await redis.unlink(*batch)
                    batch = []
            if batch:
                await redis.unlink(*batch)

    def _drop_schemas(self) -> None:
        if not self.schemas:
            return
        engine = create_engine(self.database_url)
        try:
            with engine.begin() as conn:
                # Every schema this run made, rebuild workspaces included, and nothing else.
                found = conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                                     {"p": self.schema_prefix + "\\_%"}).scalars().all()
                for schema in found:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            engine.dispose()


def unexpected_errors(log_text: str) -> dict[str, Any]:
    """How many unexpected errors a service logged (`unexpected error on ...`, with a traceback), and the
    exception line of each kind, counted."""
    lines = log_text.splitlines()
    count, kinds = 0, {}
    for n, line in enumerate(lines):
        if "unexpected error on" not in line:
            continue
        count += 1
        for after in lines[n + 1 : n + 200]:  # the traceback's last line names the exception
            if after and not after.startswith((" ", "Traceback", "\t")) and ("Error" in after or "Exception" in after):
                kinds[after[:300]] = kinds.get(after[:300], 0) + 1
                break
    return {"count": count, "kinds": kinds} if count else {}


def _query_plan(args: tuple) -> dict[str, list[float]]:
    return load.query_worker(*args)


def _peer_plan(args: tuple) -> dict[str, Any]:
    from bench.peer_eventsourcing import run_peer

    database_url, schema, events, campaign, max_seconds = args
    result = run_peer(database_url, schema, events, campaign, seed=7, max_seconds=max_seconds)
    return {**asdict(result), "events_per_s": result.events_per_s}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    memory_kb = 0
    try:
        memory_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                             if line.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        pass
    return {"nproc": os.cpu_count(), "memory_gb": round(memory_kb / 1024 / 1024, 1), "cpu": cpu,
            "python": platform.python_version(), "load_average_at_start": os.getloadavg()}


async def _server_versions(redis_url: str, database_url: str) -> dict[str, str]:
    redis = log_client(redis_url)
    try:
        info = await redis.info("server")
        log_server = f"{info.get('server_name', 'redis')} {info.get('valkey_version') or info.get('redis_version')}"
    finally:
        await redis.aclose()
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            postgres = conn.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    return {"log_server": log_server, "postgresql": postgres}


def run_bench(sizes: Sizes, *, redis_url: str | None, database_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run every measurement; returns (figures, context). Starts an embedded Valkey when `redis_url` is None."""
    workdir = Path(tempfile.mkdtemp(prefix="passpro-bench-"))
    embedded = None
    started = time.monotonic()
    try:
        if redis_url is None:
            from services.cli.up import _start_embedded_redis

            embedded = _start_embedded_redis(workdir)
            redis_url = embedded.connection_url
        bench = Bench(sizes, redis_url, database_url, workdir)
        context: dict[str, Any] = {"sizes": asdict(sizes), "machine": machine(),
                                   "servers": asyncio.run(_server_versions(redis_url, database_url)),
                                   "embedded_log_server": embedded is not None}
        figures = asyncio.run(bench.run())
        context.update(bench.context)
        context["total_seconds"] = round(time.monotonic() - started, 1)
        return {name: figures.get(name) for name in NAMES}, context
    finally:
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)
