"""SPEC §4 local views: positions stored with the rows, catch-up, recovery, dead letters, min_position.

Runs on SQLite (a file) and PostgreSQL (a fresh schema), against the Redis log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from sqlalchemy import Column, Connection, Engine, Integer, String, Table, select, update
from sqlalchemy.exc import OperationalError

from shared.contracts.events import CampaignOpened, Event, event_to_fields
from shared.contracts.streams import LoggedEvent, StreamKeys
from shared.runtime.projection.consumer import Consumer
from shared.runtime.db import new_metadata
from shared.runtime.log.client import EventLog
from shared.runtime.projection.views import positions_table

from event_factories import CAMPAIGN, college_avis, ine_number, make_event, registered, scheduled

SERVICE = "registration"


class CountingView:
    """The smallest real view: how many events each student has, in the view's own table."""

    name = "counting"

    def __init__(self) -> None:
        self.metadata = new_metadata()
        self.positions = positions_table(self.metadata)
        self.counts = Table(
            "event_counts",
            self.metadata,
            Column("campaign", String(4), primary_key=True),
            Column("ine", String(11), primary_key=True),
            Column("events", Integer, nullable=False),
        )

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        for logged in events:
            ine = logged.event.student_ine
            if ine is None:
                continue
            key = (self.counts.c.campaign == logged.event.campaign) & (self.counts.c.ine == ine)
            changed = conn.execute(update(self.counts).where(key).values(events=self.counts.c.events + 1))
            if changed.rowcount == 0:
                conn.execute(self.counts.insert().values(campaign=logged.event.campaign, ine=ine, events=1))

    def read(self, engine: Engine, campaign: str = CAMPAIGN) -> dict[str, int]:
        with engine.connect() as conn:
            rows = conn.execute(select(self.counts.c.ine, self.counts.c.events).where(self.counts.c.campaign == campaign))
            return {row.ine: row.events for row in rows}


# --- the two databases ----------------------------------------------------------------


@pytest.fixture
def view_metadata():  # noqa: ANN201
    """The counting view's tables, on each database `new_engine` makes (tests/conftest.py)."""
    return CountingView().metadata


class Writer:
    """Appends events at each student's current version, like execute() would."""

    def __init__(self, log: EventLog) -> None:
        self.log = log

    async def append(self, event: Event, service: str = SERVICE):  # noqa: ANN201
        if event.student_ine is None:
            version = await self.log.rectorat_version()
        else:
            version = len(await self.log.read_student(event.campaign, event.student_ine))
        appended = await self.log.append(event, service, version, str(event.event_id))
        assert appended.status == "ok", appended
        return appended

    async def open_campaign(self, campaign: str = CAMPAIGN):  # noqa: ANN201
        return await self.append(make_event(CampaignOpened(), campaign=campaign), "scoring")

    async def student(self, n: int, campaign: str = CAMPAIGN, service: str = SERVICE) -> list:
        return [
            await self.append(make_event(p, ine=ine_number(n), campaign=campaign), service)
            for p in (registered(), college_avis(), scheduled())
        ]


@pytest.fixture
def writer(log: EventLog) -> Writer:
    return Writer(log)


def consumer(redis: Redis, engine: Engine, keys: StreamKeys, view: CountingView | None = None, **kw) -> Consumer:  # noqa: ANN003
    return Consumer(redis, engine, keys, view or CountingView(), keystore=kw.pop("keystore", None), page_size=kw.pop("page_size", 4), block_ms=50, **kw)


@contextlib.asynccontextmanager
async def running(c: Consumer, stop_within: float = 5) -> AsyncIterator[Consumer]:
    """The consumer running in a task for the block's time, then asked to stop (and awaited `stop_within` s)."""
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop))
    try:
        yield c
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, stop_within)


# --- catching up ----------------------------------------------------------------------


async def test_a_consumer_catches_up_on_events_written_before_it_started(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    await writer.open_campaign()
    for n in range(5):
        await writer.student(n)
    await writer.append(make_event(college_avis(), ine=ine_number(0)), "evaluation")

    engine = new_engine()
    view = CountingView()
    read = await consumer(redis, engine, keys, view).catch_up()

    assert read == 1 + 5 * 3 + 1
    assert view.read(engine) == {ine_number(0): 4} | {ine_number(n): 3 for n in range(1, 5)}


async def test_a_new_consumer_on_the_same_database_continues_without_double_counting(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    await writer.open_campaign()
    await writer.student(0)
    await writer.student(1)
    first_engine = new_engine()
    await consumer(redis, first_engine, keys).catch_up()
    first_engine.dispose()  # the process stops

    await writer.student(2)  # written while no consumer runs
    await writer.append(make_event(college_avis(), ine=ine_number(0)), "evaluation")

    engine = new_engine()  # the process restarts
    view = CountingView()
    restarted = consumer(redis, engine, keys, view)
    assert await restarted.catch_up() == 3 + 1
    assert view.read(engine) == {ine_number(0): 4, ine_number(1): 3, ine_number(2): 3}
    assert await consumer(redis, new_engine(), keys).catch_up() == 0


async def test_stored_positions_are_those_of_the_last_entry_applied(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    opened = await writer.open_campaign()
    written = await writer.student(0)
    engine = new_engine()
    view = CountingView()
    await consumer(redis, engine, keys, view).catch_up()
    with engine.connect() as conn:
        stored = dict(conn.execute(select(view.positions.c.stream, view.positions.c.position)).all())
    assert stored[keys.rectorat] == opened.positions.service
    assert stored[keys.service(CAMPAIGN, SERVICE)] == written[-1].positions.service


# --- dead letters ---------------------------------------------------------------------


async def test_an_unreadable_entry_goes_to_the_dead_letters_and_the_view_goes_on(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    await writer.open_campaign()
    await writer.student(0)
    bad_fields = event_to_fields(make_event(registered(), ine=ine_number(9))) | {"payload": "{not json"}
    bad_id = (await redis.xadd(keys.service(CAMPAIGN, SERVICE), bad_fields)).decode()
    await writer.student(1)

    engine = new_engine()
    view = CountingView()
    await consumer(redis, engine, keys, view).catch_up()

    assert view.read(engine) == {ine_number(0): 3, ine_number(1): 3}
    dead = await redis.xrange(keys.dead_letters)
    assert len(dead) == 1
    fields = {k.decode(): v.decode() for k, v in dead[0][1].items()}
    assert fields["entry_id"] == bad_id
    assert fields["event_id"] == bad_fields["event_id"]
    assert fields["event_type"] == "StudentRegistered"
    assert fields["view"] == "counting"
    assert keys.service(CAMPAIGN, SERVICE) in fields["stream"]
    assert fields["reason"]

    assert await consumer(redis, new_engine(), keys).catch_up() == 0  # not dead-lettered twice
    assert await redis.xlen(keys.dead_letters) == 1


async def test_an_unknown_event_type_is_skipped_not_dead_lettered(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    await writer.open_campaign()
    future = event_to_fields(make_event(registered(), ine=ine_number(9))) | {"event_type": "FromTheFuture"}
    await redis.xadd(keys.service(CAMPAIGN, SERVICE), future)
    await writer.student(0)
    engine = new_engine()
    view = CountingView()
    await consumer(redis, engine, keys, view).catch_up()
    assert view.read(engine) == {ine_number(0): 3}
    assert await redis.xlen(keys.dead_letters) == 0


class UnreachableDatabaseFor(CountingView):
    """A CountingView whose database goes away when it meets one of `event_ids`."""

    def __init__(self, event_ids: set[str]) -> None:
        super().__init__()
        self.event_ids = event_ids

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        if any(str(e.event.event_id) in self.event_ids for e in events):
            raise OperationalError("UPDATE event_counts ...", {}, ConnectionError("server closed the connection"))
        super().apply(conn, events)


async def test_a_database_error_is_never_a_dead_letter_the_page_waits_for_the_database(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    await writer.open_campaign()
    await writer.student(0)
    unlucky = make_event(college_avis(), ine=ine_number(1))
    await writer.append(make_event(registered(), ine=ine_number(1)))
    await writer.append(unlucky)
    engine = new_engine()
    view = UnreachableDatabaseFor({str(unlucky.event_id)})
    c = consumer(redis, engine, keys, view, page_size=100)

    with pytest.raises(OperationalError):
        await c.catch_up()
    assert await redis.xlen(keys.dead_letters) == 0
    assert view.read(engine) == {}  # nothing of the page: it is read again, not skipped
    with pytest.raises(OperationalError):
        await c.poll()

    view.event_ids.clear()  # the database is back
    await c.catch_up()
    assert view.read(engine) == {ine_number(0): 3, ine_number(1): 2}
    assert await redis.xlen(keys.dead_letters) == 0


# --- min_position ---------------------------------------------------------------------


async def test_wait_for_returns_true_once_the_position_is_applied(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    await writer.open_campaign()
    engine = new_engine()
    view = CountingView()
    async with running(consumer(redis, engine, keys, view)) as live:
        written = await writer.student(0)
        assert await live.wait_for(written[-1].positions.service, timeout=10)
        assert view.read(engine) == {ine_number(0): 3}

        later = await writer.append(make_event(college_avis(), ine=ine_number(0)), "evaluation")
        assert await live.wait_for(later.positions.service, timeout=10)
        assert view.read(engine) == {ine_number(0): 4}


async def test_wait_for_gives_up_after_its_timeout_when_the_view_is_behind(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    await writer.open_campaign()
    stopped = consumer(redis, new_engine(), keys)
    await stopped.catch_up()
    written = await writer.student(0)
    assert not await stopped.wait_for(written[-1].positions.service, timeout=0.2)


# --- following campaigns --------------------------------------------------------------


async def test_campaign_streams_are_followed_once_the_campaign_is_opened(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    engine = new_engine()
    view = CountingView()
    c = consumer(redis, engine, keys, view)
    assert await c.catch_up() == 0

    await writer.student(0, campaign="2028")  # a stream of a campaign nobody opened
    await c.catch_up()
    assert view.read(engine, "2028") == {}

    await writer.open_campaign("2027")
    await writer.student(1, campaign="2027")
    await writer.student(2, campaign="2027", service="evaluation")
    await c.catch_up()
    assert view.read(engine, "2027") == {ine_number(1): 3, ine_number(2): 3}
    assert view.read(engine, "2028") == {}

    await writer.open_campaign("2028")  # followed from its start: nothing written before is skipped
    await c.catch_up()
    assert view.read(engine, "2028") == {ine_number(0): 3}

    restarted = CountingView()
    engine2 = new_engine()
    assert await consumer(redis, engine2, keys, restarted).catch_up() == 0
    assert restarted.read(engine2, "2028") == {ine_number(0): 3}


async def test_a_running_consumer_follows_a_campaign_opened_while_it_runs(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    engine = new_engine()
    view = CountingView()
    async with running(consumer(redis, engine, keys, view)) as live:
        await writer.open_campaign()
        written = await writer.student(0)
        assert await live.wait_for(written[-1].positions.service, timeout=10)
    assert view.read(engine) == {ine_number(0): 3}
