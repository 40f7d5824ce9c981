"""The limits of the machine the projection and the writes are held against, measured in the same run.

- the log server: XADD from one client, and the append script from one and from 16 clients;
- the projection's reading limit: XRANGE plus parsing each entry into its event, nothing else;
- its writing limit: bare batched upserts of its rows, on SQLite and on PostgreSQL.

The Redis loads run in worker processes; each worker writes under its own
students (its own INE tag) of a scratch académie, so nothing they write meets
the bench log the projection reads.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from redis.asyncio import Redis
from sqlalchemy import delete

from bench.load import run_workers, start_when
from bench.workload import Places, entry_fields, student_history
from shared.contracts.bonus import voeu_bonuses
from shared.contracts.events import event_from_fields
from shared.contracts.streams import StreamKeys, logged_event_from_entry
from shared.contracts.student_file import fold
from shared.runtime.db import make_engine
from shared.runtime.log import APPEND_SCRIPT
from shared.runtime.views import upsert


@dataclass
class RedisLoad:
    redis_url: str
    academie: str
    campaign: str
    worker: int
    clients: int
    seconds: float
    start_at: float
    round: int = 0  # one per measurement, so that no two measurements write the same students


def _tag(plan: RedisLoad, client: int) -> str:
    # An INE ends with two capital letters: one tag per (measurement, worker, client), so no two clients share a student.
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    n = plan.round * 64 + plan.worker * 8 + client
    return letters[n // len(letters) % len(letters)] + letters[n % len(letters)]


def _append_calls(plan: RedisLoad, client: int, keys: StreamKeys) -> Iterator[tuple]:
    """The append calls of one client: its own students, each history in order (expected versions 0, 1, ...)."""
    places, rng = Places.from_reference(), random.Random(_tag(plan, client))
    now = datetime.now(UTC).replace(microsecond=0)
    for n in itertools.count():
        ine, steps = student_history(n, places, rng, now, _tag(plan, client))
        for version, step in enumerate(steps):
            fields = entry_fields(step, ine, plan.campaign, now.isoformat(), str(_uuid(rng)))
            args = [str(version), fields["event_id"], "bench"]
            for name, value in fields.items():
                args += [name, value]
            yield (keys.service(plan.campaign, step.service), keys.student(plan.campaign, ine),
                   keys.event_ids(plan.campaign), *args)


async def _append(plan: RedisLoad) -> int:
    keys = StreamKeys(plan.academie)
    client_redis = Redis.from_url(plan.redis_url)
    sha = await client_redis.script_load(APPEND_SCRIPT)
    # Built before the clock starts (building a call costs a fair share of an append); more on the fly if needed.
    generators = [_append_calls(plan, c, keys) for c in range(plan.clients)]
    ready = [list(itertools.islice(g, int(8000 * plan.seconds / plan.clients) + 100)) for g in generators]
    done = [0] * plan.clients
    end = start_when(plan.start_at) + plan.seconds

    async def client(c: int) -> None:
        for call in itertools.chain(ready[c], generators[c]):
            if time.time() >= end:
                return
            reply = await client_redis.evalsha(sha, 3, *call)
            if reply[0] not in (b"ok", "ok"):
                raise RuntimeError(f"append refused: {reply!r}")
            done[c] += 1

    try:
        await asyncio.gather(*(client(c) for c in range(plan.clients)))
    finally:
        await client_redis.aclose()
    return sum(done)


def append_worker(plan: RedisLoad) -> int:
    """Atomic appends, one call at a time per client, until the time is up; returns how many were stored."""
    return asyncio.run(_append(plan))


def xadd_worker(plan: RedisLoad) -> int:
    """Plain XADD of a bench entry's fields, one at a time, from one synchronous client."""
    client = redis.Redis.from_url(plan.redis_url)
    keys = StreamKeys(plan.academie)
    places, rng = Places.from_reference(), random.Random(1)
    now = datetime.now(UTC)
    ine, steps = student_history(0, places, rng, now, _tag(plan, 0))
    fields = entry_fields(steps[0], ine, plan.campaign, now.isoformat(), "x")
    stream = keys.service(plan.campaign, "raw-xadd")
    end, done = start_when(plan.start_at) + plan.seconds, 0
    while time.time() < end:
        client.xadd(stream, fields)
        done += 1
    client.close()
    return done


def redis_rate(pool, function, redis_url: str, academie: str, campaign: str, workers: int, clients: int,
               seconds: float, round_: int) -> float:
    """Operations per second of `function` over `workers` processes of `clients` clients each."""
    start_at = time.time() + 1.5  # leaves the workers time to prepare their calls
    plans = [RedisLoad(redis_url, academie, campaign, w, clients, seconds, start_at, round_) for w in range(workers)]
    return sum(run_workers(pool, function, plans)) / seconds


# --- the projection's reading limit --------------------------------------------------------


async def read_parse_rate(redis_url: str, keys: StreamKeys, campaign: str, max_seconds: float, page: int = 2000) -> tuple[int, float]:
    """XRANGE pages over the service streams, each entry parsed into its event; (entries, seconds)."""
    client = Redis.from_url(redis_url, decode_responses=True)  # as the services' consumers read
    read, started = 0, time.perf_counter()
    try:
        for stream in keys.campaign_streams(campaign):
            after = "-"
            while time.perf_counter() - started < max_seconds:
                entries = await client.xrange(stream, after, "+", count=page)
                if not entries:
                    break
                for entry_id, fields in entries:
                    logged_event_from_entry(stream, entry_id, fields)
                read += len(entries)
                after = f"({entries[-1][0]}"
    finally:
        await client.aclose()
    return read, time.perf_counter() - started


# --- the projection's writing limit -----------------------------------------------------------


@functools.cache
def _projection_rows(students: int) -> list[tuple[dict, dict, list[dict]]]:
    """(student file row, total row, vœu rows) of `students` bench students, folded and scored as the projection does."""
    places, rng = Places.from_reference(), random.Random(3)
    now = datetime.now(UTC).replace(microsecond=0)
    out = []
    for n in range(students):
        ine, steps = student_history(n, places, rng, now, "UP")
        events = [(event_from_fields(entry_fields(s, ine, "2027", now.isoformat(), str(_uuid(rng)))), v + 1)
                  for v, s in enumerate(steps)]
        file = fold("2027", ine, events)
        voeux = voeu_bonuses(file, 2500)
        out.append((
            {"campaign": "2027", "ine": ine, "college_uai": file.college_uai, "version": file.version,
             "file": file.model_dump_json()},
            {"campaign": "2027", "ine": ine, "college_uai": file.college_uai, "college_avis": file.college_avis,
             "withdrawn": file.withdrawn, "total_bonus_points": sum(v.bonus_points for v in voeux)},
            [{"campaign": "2027", "ine": ine, "lycee_uai": v.lycee_uai, "formation_code": v.formation_code,
              "college_uai": file.college_uai, "lycee_avis": v.lycee_avis, "bonus_points": v.bonus_points,
              "interview_held": v.interview_held, "college_avis_present": v.college_avis_present} for v in voeux],
        ))
    return out


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def upsert_rate(url: str, schema: str | None, max_seconds: float, batch: int = 500, students: int = 1000) -> tuple[int, float]:
    """Bare batched upserts of the projection's rows (student files, totals, vœux), each batch in one
    transaction as the projection commits a page; keys are met twice (insert, then update). (rows, seconds)."""
    from services.scoring.app import MIGRATIONS
    from services.scoring.views import student_files, student_totals, voeux
    from shared.runtime.migrations import upgrade

    upgrade(MIGRATIONS, url, schema)
    engine = make_engine(url, schema)
    shapes = _projection_rows(students)
    rows, started, round_ = 0, time.perf_counter(), 0
    try:
        while time.perf_counter() - started < max_seconds:
            round_ += 1
            for start in range(0, len(shapes), batch):
                chunk = shapes[start : start + batch]
                # a different total each round, so an update really changes the row
                totals = [{**t, "total_bonus_points": t["total_bonus_points"] + round_} for _, t, _ in chunk]
                files = [f for f, _, _ in chunk]
                voeu_rows = [v for _, _, vs in chunk for v in vs]
                with engine.begin() as conn:
                    upsert(conn, student_files, files, ["campaign", "ine"])
                    upsert(conn, student_totals, totals, ["campaign", "ine"])
                    upsert(conn, voeux, voeu_rows, ["campaign", "ine", "lycee_uai", "formation_code"])
                rows += len(files) + len(totals) + len(voeu_rows)
                if time.perf_counter() - started >= max_seconds:
                    break
        elapsed = time.perf_counter() - started
        with engine.begin() as conn:
            for table in (student_files, student_totals, voeux):
                conn.execute(delete(table))
    finally:
        engine.dispose()
    return rows, elapsed
