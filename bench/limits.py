"""The limits of the machine the projection and the writes are held against, measured in the same run.

- the log server: XADD from one client, and the project's append (`EventLog.append`, sealing the
  personal fields with keys from the key store) from one and from 16 clients, and from one client
  without sealing (the cost of encryption on append);
- the projection's reading limit: XRANGE plus the page's keys and opening and parsing each entry into its
  event, with the consumer's own functions (bytes as Redis sends them, `shared/runtime/projection/wire.py`),
  nothing else; and, on the very same pages, the parse with sealing ignored (the cost of encryption on reading)
  and the bare read (XRANGE of the same pages, bytes only: what reading costs before any parsing);
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
from redis.client import NEVER_DECODE
from sqlalchemy import delete

from bench.log_client import log_client
from bench.workers import run_workers, start_when
from bench.workload import Places, entry_fields, seal_fields, student_history
from shared.domain.bonus import voeu_bonuses
from shared.contracts.events import Event, event_from_fields
from shared.contracts.personal import ErasedKeyring
from shared.contracts.streams import StreamKeys
from shared.domain.student_file import fold
from shared.runtime.keys.crypto import MasterKey, StudentKeys, new_key, parse_master_key
from shared.runtime.db import make_engine
from shared.runtime.keys.store import KeyStore
from shared.runtime.log.client import EventLog
from shared.runtime.projection.views import upsert
from shared.runtime.projection.consumer import Entry, page_keyring, parse_entries, stream_entries


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
    keystore_url: str | None = None  # the appends seal with keys of this key store (None: in clear)
    master_key: str | None = None  # base64, as PASSPRO_MASTER_KEY

    def open_keystore(self) -> KeyStore | None:
        if self.keystore_url is None or self.master_key is None:
            return None
        return KeyStore.open(self.keystore_url, MasterKey(parse_master_key(self.master_key)))


def _tag(plan: RedisLoad, client: int) -> str:
    # An INE ends with two capital letters: one tag per (measurement, worker, client), so no two clients share a student.
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    n = plan.round * 64 + plan.worker * 8 + client
    return letters[n // len(letters) % len(letters)] + letters[n % len(letters)]


def _append_calls(plan: RedisLoad, client: int) -> Iterator[tuple[Event, str, int]]:
    """The appends of one client: (event, service, expected version) of its own students, each history in order."""
    places, rng = Places.from_reference(), random.Random(_tag(plan, client))
    now = datetime.now(UTC).replace(microsecond=0)
    for n in itertools.count():
        ine, steps = student_history(n, places, rng, now, _tag(plan, client))
        for version, step in enumerate(steps):
            event = event_from_fields(entry_fields(step, ine, plan.campaign, now.isoformat(), str(_uuid(rng))))
            yield event, step.service, version


PREBUILT_PER_S = 2500  # appends built before the clock starts, per second of measurement (more on the fly)


async def _append(plan: RedisLoad) -> int:
    client_redis = log_client(plan.redis_url)
    keystore = plan.open_keystore()
    event_log = EventLog(client_redis, StreamKeys(plan.academie), keystore)  # as the services append
    # Built before the clock starts (building an event costs a fair share of an append); more on the fly if needed.
    generators = [_append_calls(plan, c) for c in range(plan.clients)]
    ready = [list(itertools.islice(g, int(PREBUILT_PER_S * plan.seconds / plan.clients) + 100)) for g in generators]
    done = [0] * plan.clients
    end = start_when(plan.start_at) + plan.seconds

    async def client(c: int) -> None:
        for event, service, version in itertools.chain(ready[c], generators[c]):
            if time.time() >= end:
                return
            appended = await event_log.append(event, service, version, "bench")
            if appended.status != "ok":
                raise RuntimeError(f"append refused: {appended!r}")
            done[c] += 1

    try:
        await asyncio.gather(*(client(c) for c in range(plan.clients)))
    finally:
        await client_redis.aclose()
        if keystore is not None:
            keystore.close()
    return sum(done)


def append_worker(plan: RedisLoad) -> int:
    """The project's append (`EventLog.append`: sealing with the key store's keys when the plan has one,
    then the atomic append script), one call at a time per client, until the time is up; how many were stored."""
    return asyncio.run(_append(plan))


def xadd_worker(plan: RedisLoad) -> int:
    """Plain XADD of a bench entry's fields (a registration, sealed), one at a time, from one synchronous client."""
    client = redis.Redis.from_url(plan.redis_url)  # the URL's server itself: a baseline of one Redis, no Sentinel
    keys = StreamKeys(plan.academie)
    places, rng = Places.from_reference(), random.Random(1)
    now = datetime.now(UTC)
    ine, steps = student_history(0, places, rng, now, _tag(plan, 0))
    fields = entry_fields(steps[0], ine, plan.campaign, now.isoformat(), str(_uuid(rng)))
    fields = seal_fields(fields, StudentKeys({(plan.campaign, ine): new_key()}))
    stream = keys.service(plan.campaign, "raw-xadd")
    end, done = start_when(plan.start_at) + plan.seconds, 0
    while time.time() < end:
        client.xadd(stream, fields)
        done += 1
    client.close()
    return done


def redis_rate(pool, function, redis_url: str, academie: str, campaign: str, workers: int, clients: int,
               seconds: float, round_: int, keystore_url: str | None = None, master_key: str | None = None) -> float:
    """Operations per second of `function` over `workers` processes of `clients` clients each."""
    start_at = time.time() + 2.5  # leaves the workers time to prepare their calls
    plans = [RedisLoad(redis_url, academie, campaign, w, clients, seconds, start_at, round_, keystore_url, master_key)
             for w in range(workers)]
    return sum(run_workers(pool, function, plans)) / seconds


# --- the projection's reading limit --------------------------------------------------------


@dataclass
class ReadParse:
    """The reading limit over the same pages: with the entries opened as the consumer opens them, and with
    their sealing ignored (no key fetched, `sealed` not opened: personal fields read as erased)."""

    entries: int = 0
    bare_read_seconds: float = 0.0  # XRANGE of the same page, bytes only (nothing made of them, nothing parsed)
    read_seconds: float = 0.0  # XRANGE as the consumer reads (bytes) and its entries, counted in both
    keys_seconds: float = 0.0  # the page's keys from the key store, as the consumer loads them per page
    parse_seconds: float = 0.0  # opening and parsing each entry into its event
    parse_ignoring_sealing_seconds: float = 0.0

    @property
    def bare_read_events_per_s(self) -> float:
        return self.entries / self.bare_read_seconds

    @property
    def events_per_s(self) -> float:
        return self.entries / (self.read_seconds + self.keys_seconds + self.parse_seconds)

    @property
    def events_per_s_plaintext(self) -> float:
        return self.entries / (self.read_seconds + self.parse_ignoring_sealing_seconds)


async def read_parse_rate(redis_url: str, keys: StreamKeys, campaign: str, keystore: KeyStore, max_seconds: float,
                          page: int = 2000) -> ReadParse:
    """XRANGE pages over the service streams, read and parsed with the consumer's own functions: the page
    as bytes into its entries (`stream_entries`), the keys of its sealed students from the key store
    (`page_keyring`), each entry opened and parsed into its event (`parse_entries`, wire.py); and, timed
    apart on the same page, the parse with the sealing ignored, and the bare read of the page (XRANGE, bytes,
    nothing made of them). The two reads of a page take turns going first (the first waits for a busy
    machine's CPU more). Stops after `max_seconds` in all."""
    client = log_client(redis_url, decode_responses=True)  # as the services' clients, read as their consumers read
    bare = log_client(redis_url)  # bytes as the server sends them: the read alone
    result, started, erased = ReadParse(), time.perf_counter(), ErasedKeyring()

    async def read(stream: str, after: str) -> tuple[list[Entry], float]:
        t0 = time.perf_counter()
        reply = await client.execute_command("XRANGE", stream, after, "+", "COUNT", page, keys=[stream],
                                             **{NEVER_DECODE: True})
        return stream_entries(stream, reply), time.perf_counter() - t0

    async def read_bare(stream: str, after: str) -> tuple[list, float]:
        t0 = time.perf_counter()
        raw = await bare.xrange(stream, after, "+", count=page)
        return raw, time.perf_counter() - t0

    try:
        for stream in keys.campaign_streams(campaign):
            after = "-"
            while time.perf_counter() - started < max_seconds:
                if result.entries // page % 2:
                    (raw, bare_s), (entries, read_s) = await read_bare(stream, after), await read(stream, after)
                else:
                    (entries, read_s), (raw, bare_s) = await read(stream, after), await read_bare(stream, after)
                if not entries:
                    break
                if len(raw) != len(entries):
                    raise RuntimeError(f"the bare read of {stream} after {after} got {len(raw)} entries, not {len(entries)}")
                t1 = time.perf_counter()
                keyring = await page_keyring(keystore, entries)
                t2 = time.perf_counter()
                parse_entries(entries, keyring)
                t3 = time.perf_counter()
                again = stream_entries(stream, raw)  # the same entries, not read yet
                t4 = time.perf_counter()
                parse_entries(again, erased)
                t5 = time.perf_counter()
                unread = [e for e in entries if e.logged is None]
                if unread:
                    raise RuntimeError(f"{stream} {unread[0].entry_id} is not readable: {unread[0].unreadable or unread[0].unknown_type}")
                result.entries += len(entries)
                result.bare_read_seconds += bare_s
                result.read_seconds += read_s
                result.keys_seconds += t2 - t1
                result.parse_seconds += t3 - t2
                result.parse_ignoring_sealing_seconds += t5 - t4
                after = f"({entries[-1].entry_id}"
                del entries, again, raw, keyring  # each page's reads start without the last page's objects
    finally:
        await client.aclose()
        await bare.aclose()
    return result


# --- the projection's writing limit -----------------------------------------------------------


@functools.cache
def _projection_rows(students: int) -> list[tuple[dict, dict, list[dict], int]]:
    """(student file row, total row, vœu rows, events of the history) of `students` bench students, folded
    and scored as the projection does."""
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
            len(steps),
        ))
    return out


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@dataclass
class Upserts:
    rows: int  # rows written
    events: int  # the events those rows stand for: each student's whole history, once per time its rows are written
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def upsert_rate(url: str, schema: str | None, max_seconds: float, batch: int = 500, students: int = 1000) -> Upserts:
    """Bare batched upserts of the projection's rows (student files, totals, vœux) of the same `students`
    bench students, round after round for `max_seconds`: the first round inserts their rows, every later
    one updates them (a different total each round, so each update changes the row). Each batch of
    `batch` students is one transaction, as the projection commits a page.

    In events: the events the rows stand for (each student's whole history, ~7.8 events), so the limit
    compares with a rate in events/s as if the projection wrote each student's rows once per history;
    it writes them once per page the student appears in, so this limit is an upper bound."""
    from services.scoring.app import MIGRATIONS
    from services.scoring.views import student_files, student_totals, voeux
    from shared.runtime.migrations import upgrade

    upgrade(MIGRATIONS, url, schema)
    engine = make_engine(url, schema)
    shapes = _projection_rows(students)
    rows, events, started, round_ = 0, 0, time.perf_counter(), 0
    try:
        while time.perf_counter() - started < max_seconds:
            round_ += 1
            for start in range(0, len(shapes), batch):
                chunk = shapes[start : start + batch]
                # a different total each round, so an update really changes the row
                totals = [{**t, "total_bonus_points": t["total_bonus_points"] + round_} for _, t, _, _ in chunk]
                files = [f for f, _, _, _ in chunk]
                voeu_rows = [v for _, _, vs, _ in chunk for v in vs]
                with engine.begin() as conn:
                    upsert(conn, student_files, files, ["campaign", "ine"])
                    upsert(conn, student_totals, totals, ["campaign", "ine"])
                    upsert(conn, voeux, voeu_rows, ["campaign", "ine", "lycee_uai", "formation_code"])
                rows += len(files) + len(totals) + len(voeu_rows)
                events += sum(n for _, _, _, n in chunk)
                if time.perf_counter() - started >= max_seconds:
                    break
        elapsed = time.perf_counter() - started
        with engine.begin() as conn:
            for table in (student_files, student_totals, voeux):
                conn.execute(delete(table))
    finally:
        engine.dispose()
    return Upserts(rows, events, elapsed)
