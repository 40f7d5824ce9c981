"""`passpro rebuild`: the projection rebuilt from the log replaces a damaged live one; records are kept."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, text, update

from services.scoring import queries
from services.scoring.app import MIGRATIONS
from services.records.rebuild import rebuild
from services.scoring.views import BonusProjection, student_totals, voeux
from shared.contracts.events import CampaignOpened
from shared.contracts.streams import StreamKeys
from shared.runtime.projection.consumer import Consumer
from shared.runtime.db import ensure_schema, make_engine
from shared.runtime.log.client import EventLog
from shared.runtime.migrations import upgrade

from event_factories import PRINCIPAL, RECTORAT, journey, make_event, registered

STUDENTS = [f"{n:09d}RB" for n in range(1, 13)]


async def write_history(log: EventLog) -> None:
    assert (await log.append(make_event(CampaignOpened(bonus_points=2500), actor=RECTORAT), "rectorat", 0, "f")).status == "ok"
    for n, ine in enumerate(STUDENTS):
        for version, (service, payload, actor) in enumerate(journey("favorable" if n % 2 else "reserve")):
            assert (await log.append(make_event(payload, actor=actor, ine=ine), service, version, "f")).status == "ok"


def projection(engine) -> tuple[list, list]:
    with engine.connect() as conn:
        return (
            [tuple(r) for r in conn.execute(select(voeux).order_by(voeux.c.ine))],
            [tuple(r) for r in conn.execute(select(student_totals).order_by(student_totals.c.ine))],
        )


@pytest.fixture(params=["sqlite", "postgres"])
def live_database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scoring.sqlite3'}", None
    return request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")


async def test_rebuild_repairs_a_damaged_projection_and_keeps_the_exports(redis_url, academie, live_database, tmp_path):
    url, schema = live_database
    redis = Redis.from_url(redis_url, decode_responses=True)
    keys = StreamKeys(academie)
    try:
        await write_history(EventLog(redis, keys))
        ensure_schema(url, schema)
        upgrade(MIGRATIONS, url, schema)
        live = make_engine(url, schema)
        await Consumer(redis, live, keys, BonusProjection(), keystore=None).catch_up()
        expected = projection(live)
        with live.connect() as conn:  # the dashboard's weeks are filled by the catch-up (and the rebuild must too)
            assert conn.execute(select(func.count()).where(voeux.c.held_week.is_(None))).scalar_one() == 0
            assert conn.execute(select(func.count()).where(student_totals.c.college_avis_week.is_(None))).scalar_one() == 0
        with live.begin() as conn:
            queries.record_export(conn, "2027", "rectorat.test", {"s": "1-0"}, "INE;UAI_ACCUEIL;CODE_MEF;BONUS\r\n", 0)
            conn.execute(update(voeux).values(bonus_points=99999, held_week=None))  # the damage a rebuild must repair
            conn.execute(student_totals.delete().where(student_totals.c.ine == STUDENTS[0]))
        assert projection(live) != expected

        seen: list[tuple[int, int]] = []
        result = await rebuild(redis, keys, None, url, schema, lambda done, total: seen.append((done, total)))

        assert projection(live) == expected
        assert result.students == len(STUDENTS) and result.voeux == len(STUDENTS)
        assert seen[-1][0] == seen[-1][1] == result.entries == 1 + 5 * len(STUDENTS)
        with live.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM exports")).scalar_one() == 1
        # The rebuild leaves no workspace behind.
        assert not list(tmp_path.glob("*.rebuild-*"))
        if schema:
            with live.connect() as conn:
                leftovers = conn.execute(
                    text("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE :p"),
                    {"p": f"{schema}_rebuild_%"},
                ).scalar_one()
            assert leftovers == 0
        live.dispose()
    finally:
        await redis.aclose()


async def test_a_running_consumer_ahead_of_the_rebuild_reads_on_from_the_swapped_positions(redis_url, academie, tmp_path):
    """Entries the live consumer applied after the rebuild's build, before its swap, are not lost:
    the consumer sees that the stored positions moved and reads on from them."""
    from services.records.rebuild import build, discard, swap, workspace_for

    url = f"sqlite:///{tmp_path / 'scoring.sqlite3'}"
    redis = Redis.from_url(redis_url, decode_responses=True)
    keys = StreamKeys(academie)
    log = EventLog(redis, keys)
    try:
        await write_history(log)
        upgrade(MIGRATIONS, url, None)
        live = make_engine(url)
        consumer = Consumer(redis, live, keys, BonusProjection(), keystore=None)
        await consumer.catch_up()
        workspace = workspace_for(url, None)
        await build(redis, keys, None, workspace, lambda done, total: None)
        late = "000000099LT"  # registered after the build read the log, applied by the live consumer only
        assert (await log.append(make_event(registered(), actor=PRINCIPAL, ine=late), "registration", 0, "f")).status == "ok"
        await consumer.catch_up()
        swap(live, workspace)
        discard(live, workspace)
        with live.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM student_files WHERE ine = :i"), {"i": late}).scalar_one() == 0

        await consumer.catch_up()

        with live.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM student_files WHERE ine = :i"), {"i": late}).scalar_one() == 1
        live.dispose()
    finally:
        await redis.aclose()
