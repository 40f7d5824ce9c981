"""The consumer reads and parses the next page while the current one commits, and uses it only if it was read
from the positions it then stands at: every entry still applied exactly once, after a failed commit and after
someone else moved the positions (on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from shared.contracts.streams import LoggedEvent, StreamKeys

from event_factories import ine_number
from test_consumer import CountingView, Writer, consumer, view_metadata, writer  # noqa: F401 - fixtures

STUDENTS = 10  # 3 events each in one stream: with pages of 4, eight pages to catch up on


class FailingOnce(CountingView):
    """Fails with a database error on the `nth` page it is given (once), after its rows are written."""

    def __init__(self, nth: int) -> None:
        super().__init__()
        self.nth = nth
        self.pages = 0

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        super().apply(conn, events)
        self.pages += 1
        if self.pages == self.nth:
            raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))


async def students(writer: Writer) -> None:
    await writer.open_campaign()
    for n in range(STUDENTS):
        await writer.student(n)


ALL_ONCE = {ine_number(n): 3 for n in range(STUDENTS)}


async def test_a_catch_up_reads_each_page_while_the_one_before_commits_and_applies_every_entry_once(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    await students(writer)
    engine = new_engine()
    view = CountingView()
    c = consumer(redis, engine, keys, view, page_size=4)
    assert await c.catch_up() == 1 + 3 * STUDENTS
    assert view.read(engine) == ALL_ONCE
    assert c.read_ahead_used >= 5  # every page after a full one, but the first (the rectorat's stream alone)


async def test_the_page_read_ahead_is_dropped_when_the_commit_fails_and_the_page_is_read_again(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    await students(writer)
    engine = new_engine()
    view = FailingOnce(nth=3)
    c = consumer(redis, engine, keys, view, page_size=4)
    with pytest.raises(OperationalError):
        await c.catch_up()
    used = c.read_ahead_used
    assert c._ahead is None  # the page read ahead of the failed one is not kept
    assert await c.catch_up() > 0
    assert view.read(engine) == ALL_ONCE  # the failed page's rows were rolled back, then applied once
    assert c.read_ahead_used > used


async def test_the_page_read_ahead_is_not_used_once_someone_else_moved_the_positions(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine]
) -> None:
    await students(writer)
    engine = new_engine()
    view = CountingView()
    first = consumer(redis, engine, keys, view, page_size=4)
    await first.poll()  # the rectorat's stream: the campaign's are followed from now on
    await first.poll()  # a full page: the next one is read ahead while it commits
    assert first._ahead is not None
    used = first.read_ahead_used
    await consumer(redis, engine, keys, CountingView(), page_size=4).catch_up()  # another process, same view

    assert await first.catch_up() == 0  # it sees the positions moved, drops its page and reads on from them
    assert first.read_ahead_used == used
    assert view.read(engine) == ALL_ONCE


async def test_a_page_read_ahead_that_failed_is_read_again_and_applied_once(
    redis: Redis, keys: StreamKeys, writer: Writer, new_engine: Callable[[], Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    await students(writer)
    engine = new_engine()
    view = CountingView()
    c = consumer(redis, engine, keys, view, page_size=4)
    reads = {"ahead": 0}
    read_page = c.read_page

    async def flaky(block_ms, after=None):  # every read ahead times out, as on a starved event loop
        if after is not None:
            reads["ahead"] += 1
            raise TimeoutError("Timeout reading from 127.0.0.1:6379")
        return await read_page(block_ms, after)

    monkeypatch.setattr(c, "read_page", flaky)
    assert await c.catch_up() == 1 + 3 * STUDENTS
    assert reads["ahead"] >= 5 and c.read_ahead_used == 0
    assert view.read(engine) == ALL_ONCE
