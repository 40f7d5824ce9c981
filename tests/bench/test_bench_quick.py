"""The benchmark harness's pieces on tiny sizes: the log it writes, what it measures with, the peer it compares with.

No timing is asserted here (speed is the benchmark's business, BENCHMARKS.md):
these tests check that the bench measures the right thing.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from sqlalchemy import func, select

from bench import limits
from bench.figures import NAMES, verdicts
from bench.load import percentile
from bench.processes import run_rebuild
from bench.workload import LogWriter
from services.scoring.app import MIGRATIONS
from services.scoring.views import BonusProjection, student_totals, voeux
from shared.contracts.events import event_from_fields, event_to_fields
from shared.contracts.personal import SEALED, SealedWithoutKeys, associated_data
from shared.contracts.streams import StreamKeys
from shared.runtime.projection.consumer import Consumer
from shared.runtime.keys.crypto import MasterKey, new_key
from shared.runtime.db import make_engine
from shared.runtime.keys.store import KeyStore
from shared.runtime.migrations import upgrade
from shared.runtime.settings import sqlite_url

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
MASTER_KEY = new_key()


@pytest.fixture
def keystore(tmp_path: Path):
    """The bench's key store: keys.sqlite3 under the data dir, as `ServiceSettings.open_keystore` finds it."""
    store = KeyStore.open(sqlite_url(tmp_path, "keys"), MasterKey(MASTER_KEY))
    yield store
    store.close()


async def bench_log(redis_url: str, academie: str, events: int, keystore: KeyStore) -> LogWriter:
    redis = Redis.from_url(redis_url)
    writer = LogWriter(redis, StreamKeys(academie), CAMPAIGN, keystore)
    try:
        await writer.open_campaign()
        await writer.write(events)
    finally:
        await redis.aclose()
    return writer


async def test_the_bench_log_holds_whole_student_histories_as_the_services_write_them(redis_url, academie, keystore):
    writer = await bench_log(redis_url, academie, 1500, keystore)
    redis = Redis.from_url(redis_url, decode_responses=True)
    keys = StreamKeys(academie)
    try:
        types: Counter[str] = Counter()
        sealed = 0
        read = 1  # the campaign's opening, on the rectorat stream
        for stream in keys.campaign_streams(CAMPAIGN):
            for _, fields in await redis.xrange(stream):
                keyring = keystore.keyring([(CAMPAIGN, fields["student_ine"])])  # the key store's key, unwrapped
                event = event_from_fields(fields, keyring)
                types[event.event_type] += 1
                read += 1
                # What `event_to_fields` makes of the same event with the same keys: the log is the services' own,
                # field for field; the sealed text differs only by its random nonce, so it is compared opened.
                expected = event_to_fields(event, keyring)
                assert {name: fields[name] for name in expected} | {SEALED: ""} == expected | {SEALED: ""}
                assert (SEALED in fields) == (SEALED in expected)
                if SEALED in fields:
                    sealed += 1
                    aad = associated_data(fields["event_id"], event.event_type)
                    opened = [keyring.open(CAMPAIGN, event.student_ine, aad, f[SEALED]) for f in (fields, expected)]
                    assert opened[0] == opened[1]
                    assert "Élève" not in fields["payload"] and "referent@" not in fields["payload"]
                    with pytest.raises(SealedWithoutKeys):  # nothing personal reads without the key store
                        event_from_fields(fields)
        some_student = writer.ines[5]
        versions = [int(f["student_version"]) for _, f in await redis.xrange(keys.student(CAMPAIGN, some_student))]
    finally:
        await redis.aclose()
    assert read == writer.events >= 1500
    assert sealed >= types["StudentRegistered"] + types["InterviewHeld"]  # each of these has personal fields
    assert versions == list(range(1, len(versions) + 1))
    assert {"StudentRegistered", "CollegeAvisGiven", "InterviewScheduled", "InterviewCancelled", "InterviewHeld",
            "LyceeAvisGiven", "ReferentReassigned", "StudentWithdrawn"} <= set(types)
    assert types["LyceeAvisGiven"] > types["InterviewHeld"]  # corrections of the lycée avis


async def test_the_eventsourcing_peer_computes_the_same_bonuses_as_the_projection(redis_url, academie, postgres_url, pg_schema, tmp_path, keystore):
    pytest.importorskip("eventsourcing")
    from sqlalchemy import create_engine, text

    from bench.peer_eventsourcing import run_peer

    writer = await bench_log(redis_url, academie, 300, keystore)
    url = f"sqlite:///{tmp_path / 'scoring.sqlite3'}"
    upgrade(MIGRATIONS, url, None)
    engine = make_engine(url)
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await Consumer(redis, engine, StreamKeys(academie), BonusProjection(), keystore=keystore).catch_up() == writer.events
        with engine.connect() as conn:
            ours = (
                conn.execute(select(func.count()).select_from(student_totals)).scalar_one(),
                conn.execute(select(func.count()).select_from(voeux).where(voeux.c.bonus_points > 0)).scalar_one(),
                conn.execute(select(func.sum(student_totals.c.total_bonus_points))).scalar_one(),
            )
    finally:
        await redis.aclose()
        engine.dispose()
    pg = create_engine(postgres_url)
    with pg.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{pg_schema}"'))
    pg.dispose()

    peer = run_peer(postgres_url, pg_schema, 300, CAMPAIGN, seed=7, max_seconds=120)

    assert peer.finished and peer.processed == peer.events == writer.events
    assert (peer.students, peer.bonuses_granted, peer.total_points) == ours
    assert ours[1] > 0


async def test_the_rebuild_runs_over_the_whole_log_and_reports_its_catch_up_as_values(redis_url, academie, tmp_path, keystore):
    writer = await bench_log(redis_url, academie, 500, keystore)
    url = f"sqlite:///{tmp_path / 'scoring.sqlite3'}"
    upgrade(MIGRATIONS, url, None)
    env = {  # the command finds the writer's key store under its data dir, and opens it with the same master key
        "PATH": os.environ.get("PATH", ""), "PASSPRO_REDIS_URL": redis_url, "PASSPRO_ACADEMIE": academie,
        "PASSPRO_CAMPAIGN": CAMPAIGN, "PASSPRO_DATA_DIR": str(tmp_path), "PASSPRO_DATABASE_URL": url,
        "PASSPRO_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
    }

    rebuilt = run_rebuild(env, tmp_path, timeout=120)

    assert rebuilt.entries == writer.events
    assert rebuilt.catch_up_events == writer.events  # every entry, counted from before the first page to the last
    assert 0 < rebuilt.catch_up_seconds < rebuilt.seconds
    assert rebuilt.peak_mb > 0
    with make_engine(url).connect() as conn:  # swapped into the live projection
        assert conn.execute(select(func.count()).select_from(student_totals)).scalar_one() == writer.students


async def test_the_reading_limit_opens_and_parses_every_entry_of_the_log(redis_url, academie, keystore):
    writer = await bench_log(redis_url, academie, 600, keystore)

    read = await limits.read_parse_rate(redis_url, StreamKeys(academie), CAMPAIGN, keystore, max_seconds=60, page=100)

    assert read.entries == writer.events - 1  # every student event; the campaign's opening is on the rectorat stream
    assert read.keys_seconds > 0 and read.events_per_s > 0 and read.events_per_s_plaintext > 0
    assert read.bare_read_seconds > 0 and read.bare_read_events_per_s > 0  # the same pages, read bare


async def test_the_reading_limit_fails_on_keys_it_cannot_unwrap(redis_url, academie, keystore, tmp_path):
    await bench_log(redis_url, academie, 100, keystore)
    other = KeyStore.open(sqlite_url(tmp_path, "keys"), MasterKey(new_key()))  # the same rows, another master key
    try:
        with pytest.raises(ValueError):
            await limits.read_parse_rate(redis_url, StreamKeys(academie), CAMPAIGN, other, max_seconds=60)
    finally:
        other.close()


@pytest.mark.parametrize("sealed", [True, False])
def test_the_append_limit_appends_as_the_services_do(redis_url, academie, keystore, tmp_path, sealed):
    plan = limits.RedisLoad(redis_url, academie, CAMPAIGN, worker=0, clients=2, seconds=0.5, start_at=time.time(),
                            keystore_url=sqlite_url(tmp_path, "keys") if sealed else None,
                            master_key=base64.b64encode(MASTER_KEY).decode())

    appended = limits.append_worker(plan)

    redis = redis_sync.Redis.from_url(redis_url, decode_responses=True)
    try:
        registrations = [f for _, f in redis.xrange(StreamKeys(academie).service(CAMPAIGN, "registration"))
                         if f["event_type"] == "StudentRegistered"]
        total = sum(redis.xlen(k) for k in StreamKeys(academie).campaign_streams(CAMPAIGN))
    finally:
        redis.close()
    assert appended == total > 0 and registrations
    for fields in registrations:
        assert (SEALED in fields) == sealed
        assert ("last_name" in json.loads(fields["payload"])) != sealed
        if sealed:  # with the student's key from the key store
            event_from_fields(fields, keystore.keyring([(CAMPAIGN, fields["student_ine"])]))


def test_the_writing_limit_upserts_the_projection_rows_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'upsert.sqlite3'}"

    upserts = limits.upsert_rate(url, None, max_seconds=0.01, batch=20, students=40)

    assert upserts.rows > 20 * 2  # at least one batch of 20 students: their files and totals, and their vœux
    assert upserts.events >= 20 * 3  # the events they stand for: each student's whole history (3 events at least)
    assert upserts.seconds > 0
    with make_engine(url).connect() as conn:  # what it wrote is gone: the limit leaves no rows behind
        assert conn.execute(select(func.count()).select_from(voeux)).scalar_one() == 0


def test_percentiles_take_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7
    assert percentile([], 99) is None


def test_targets_are_judged_against_the_limits_measured_in_the_same_run():
    figures = {name: None for name in NAMES} | {
        "read_parse_limit_events_per_s": 10_000, "read_bare_limit_events_per_s": 25_000,
        "upsert_limit_rows_per_s_sqlite": 40_000, "upsert_limit_rows_per_s_postgres": 8_000,
        "projection_events_per_s_sqlite": 5_000, "projection_events_per_s_postgres": 3_999,
        "peer_eventsourcing_events_per_s": 500, "rss_mb_scoring": 120,
    }
    # The upsert limit in events (what the rows stand for), as the harness puts it in the context.
    context = {"upsert_limit_events_per_s": {"sqlite": 40_000, "postgres": 8_000}}

    judged = dict(verdicts(figures, context))

    assert judged["projection on sqlite >= 50% of min(read-parse limit, upsert limit in events/s)"] == "met (0.50)"
    assert judged["projection on postgres >= 50% of min(read-parse limit, upsert limit in events/s)"] == "missed (0.50)"  # 3,999 / 8,000
    assert judged["read-parse limit >= 50% of the bare read limit"] == "missed (0.40)"
    assert judged["projection on postgres >= 10 x the eventsourcing peer"] == "missed (8.00)"
    assert judged["scoring under 300 MB"] == "met"
    assert judged[">= 1,000 HTTP writes/s at saturation"] == "not measured"
    assert dict(verdicts(figures))["projection on sqlite >= 50% of min(read-parse limit, upsert limit in events/s)"] == "not measured"


def test_passpro_bench_is_a_command_that_imports_the_harness_only_when_it_runs():
    from services.cli import parser

    args = parser().parse_args(["bench", "--quick", "--json", "figures.json"])
    assert (args.quick, args.json) == (True, "figures.json")
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, services.cli; print(any(m.startswith('bench') for m in sys.modules))"],
        capture_output=True, text=True, check=True,
    )
    assert loaded.stdout.strip() == "False"


def test_a_services_unexpected_errors_are_kept_with_their_exception():
    from bench.harness import unexpected_errors

    log_text = "\n".join([
        "INFO:     127.0.0.1:5000 - \"POST /api/students HTTP/1.1\" 201 Created",
        "2026-11-27 ERROR shared.runtime.http.guard: unexpected error on POST /api/students",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in f',
        "    raise OperationalError",
        "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked",
        "2026-11-27 ERROR shared.runtime.http.guard: unexpected error on POST /api/students/1/interviews",
        "Traceback (most recent call last):",
        "TimeoutError: pool exhausted",
    ])

    assert unexpected_errors(log_text) == {"count": 2, "kinds": {
        "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked": 1,
        "TimeoutError: pool exhausted": 1,
    }}
    assert unexpected_errors("INFO: all fine") == {}


def test_no_bench_module_imports_another_in_a_circle():
    """Imports anywhere in a file count (in functions too): the pool is told what to import by name."""
    import ast

    bench_dir = Path(__file__).resolve().parents[2] / "bench"
    graph: dict[str, set[str]] = {}
    for path in bench_dir.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[f"bench.{path.stem}"] = {m for m in found if m.startswith("bench.") and m != f"bench.{path.stem}"}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert sorted(m for m in graph if reaches(m, m, set())) == []
