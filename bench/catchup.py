"""Benchmark: how fast scoring's projection catches up on a log it has never read.

    python bench/catchup.py [--events 100000] [--redis URL] [--postgres URL]

Writes a realistic log under its own académie tag through the real append
script (pipelined), then times a fresh projection catching up from the start,
on SQLite and on PostgreSQL, prints a table, and deletes what it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from services.scoring.app import MIGRATIONS
from services.scoring.views import BonusProjection
from shared.contracts.events import (
    Actor,
    CampaignOpened,
    CollegeAvisGiven,
    Event,
    InterviewHeld,
    InterviewScheduled,
    LyceeAvisGiven,
    Referent,
    Report,
    StudentRegistered,
    event_to_fields,
)
from shared.contracts.streams import StreamKeys
from shared.runtime.consumer import Consumer
from shared.runtime.db import make_engine
from shared.runtime.log import APPEND_SCRIPT
from shared.runtime.migrations import upgrade

COLLEGE, LYCEE, FORMATION = "0752547L", "0750793E", "2472340631"
PRINCIPAL = Actor(user_id="bench.principal", role="principal", uai=COLLEGE)
STAFF = Actor(user_id="bench.staff", role="proviseur", uai=LYCEE)


def student_history(n: int, now: datetime) -> list[tuple[str, Event]]:
    """(service, event) of one student through the whole process, with a correction every 5th."""
    ine = f"{n:09d}BN"
    interview = f"i{n}"

    def ev(payload, actor):
        return Event(event_id=uuid.uuid4(), occurred_at=now, campaign="2027", student_ine=ine, actor=actor, payload=payload)

    history = [
        ("registration", ev(StudentRegistered(college_uai=COLLEGE, last_name="Nom", first_name="Prénom", class_name="3e A",
                                               referent=Referent(user_id="r", name="Réf", email="r@ac-paris.fr")), PRINCIPAL)),
        ("registration", ev(CollegeAvisGiven(college_uai=COLLEGE, avis="favorable", comment="Motivé"), PRINCIPAL)),
        ("registration", ev(InterviewScheduled(interview_id=interview, lycee_uai=LYCEE, formation_code=FORMATION,
                                                scheduled_at=now + timedelta(days=3), mode="presentiel"), PRINCIPAL)),
        ("evaluation", ev(InterviewHeld(interview_id=interview, lycee_uai=LYCEE, formation_code=FORMATION, held_at=now,
                                        mode="presentiel", college_avis_present=True,
                                        report=Report(motivation="satisfaisante", chances_of_success="fragile", advice="Bien")), STAFF)),
        ("evaluation", ev(LyceeAvisGiven(interview_id=interview, lycee_uai=LYCEE, formation_code=FORMATION,
                                         avis="favorable" if n % 3 else "reserve"), STAFF)),
    ]
    if n % 5 == 0:
        history.append(("evaluation", ev(LyceeAvisGiven(interview_id=interview, lycee_uai=LYCEE,
                                                        formation_code=FORMATION, avis="favorable"), STAFF)))
    return history


async def write_log(redis: Redis, keys: StreamKeys, events: int) -> int:
    script = redis.register_script(APPEND_SCRIPT)
    now = datetime.now(UTC)
    opened = Event(event_id=uuid.uuid4(), occurred_at=now, campaign="2027", actor=Actor(user_id="bench", role="rectorat"),
                   payload=CampaignOpened(bonus_points=2500))
    await script(keys=[keys.rectorat, keys.rectorat, keys.event_ids(None)],
                 args=["0", str(opened.event_id), "bench", *sum(event_to_fields(opened).items(), ())])
    written, n = 0, 0
    while written < events:
        pipe = redis.pipeline(transaction=False)
        for _ in range(100):
            for version, (service, event) in enumerate(student_history(n, now)):
                await script(
                    keys=[keys.service("2027", service), keys.student("2027", event.student_ine), keys.event_ids("2027")],
                    args=[str(version), str(event.event_id), "bench", *sum(event_to_fields(event).items(), ())],
                    client=pipe,
                )
                written += 1
            n += 1
        await pipe.execute()
    return written


async def catch_up(redis: Redis, keys: StreamKeys, url: str, schema: str | None) -> tuple[int, float]:
    upgrade(MIGRATIONS, url, schema)
    engine = make_engine(url, schema)
    reader = Redis.from_url(redis_url(redis), decode_responses=True)
    consumer = Consumer(reader, engine, keys, BonusProjection(), page_size=2000)
    started = time.perf_counter()
    read = await consumer.catch_up()
    elapsed = time.perf_counter() - started
    engine.dispose()
    await reader.aclose()
    return read, elapsed


def redis_url(redis: Redis) -> str:
    kw = redis.connection_pool.connection_kwargs
    return f"redis://{kw.get('host', '127.0.0.1')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--redis", default=os.environ.get("PASSPRO_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--postgres", default=os.environ.get("PASSPRO_TEST_DATABASE_URL",
                                                              "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    redis = Redis.from_url(args.redis)
    keys = StreamKeys("bench" + uuid.uuid4().hex[:8])
    schema = "bench_" + uuid.uuid4().hex[:8]
    rows = []
    try:
        started = time.perf_counter()
        written = await write_log(redis, keys, args.events)
        write_s = time.perf_counter() - started
        rows.append(("append (script, pipelined by 100 students)", written, write_s))
        with tempfile.TemporaryDirectory() as tmp:
            read, elapsed = await catch_up(redis, keys, f"sqlite:///{tmp}/scoring.sqlite3", None)
            rows.append(("projection catch-up, SQLite", read, elapsed))
        read, elapsed = await catch_up(redis, keys, args.postgres, schema)
        rows.append(("projection catch-up, PostgreSQL", read, elapsed))
    finally:
        async for key in redis.scan_iter(match=f"{keys.prefix}*", count=1000):
            await redis.delete(key)
        await redis.aclose()
        from sqlalchemy import create_engine, text

        engine = create_engine(args.postgres)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
    print(f"\n{'what':<45} {'events':>9} {'seconds':>9} {'events/s':>10}")
    for what, count, seconds in rows:
        print(f"{what:<45} {count:>9} {seconds:>9.2f} {count / seconds:>10.0f}")


if __name__ == "__main__":
    asyncio.run(main())
