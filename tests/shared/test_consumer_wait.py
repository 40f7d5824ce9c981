"""`Consumer.wait_for`: woken by each committed page, and never answering before the position is applied.

No assertion here rests on time: a spy on the consumer's `reached` tells when each waiter has checked
the log and what it found, so "still waiting" is asserted once a waiter is known to be blocked on the
next commit, and "woken by the commit" once its periodic recheck is set an hour away."""

from __future__ import annotations

import asyncio

from shared.runtime.projection import consumer as consumer_module
from shared.runtime.projection.consumer import Consumer
from test_consumer import CountingView, Writer, consumer, view_metadata, writer  # noqa: F401 (fixtures)

from event_factories import college_avis, ine_number, make_event

AN_HOUR = 3600.0
GUARD_S = 60  # only against a hang if a notification were lost: the recheck alone would take an hour


class Checks:
    """What each check of `reached` by the consumer's waiters answered, in order."""

    def __init__(self, c: Consumer, monkeypatch) -> None:  # noqa: ANN001
        self.answers: list[bool] = []
        self._checked = asyncio.Event()
        real = c.reached

        async def reached(position: str, *since: int) -> bool:
            answer = await real(position, *since)
            self.answers.append(answer)
            self._checked.set()
            return answer

        monkeypatch.setattr(c, "reached", reached)

    async def until(self, count: int, waiters: list[asyncio.Task]) -> None:
        """Return once `count` checks have answered (or a waiter has ended: the test then says why). A waiter
        whose check said False is then blocked on the next commit: it gives the loop back only there."""
        while len(self.answers) < count and not any(w.done() for w in waiters):
            self._checked.clear()
            checked = asyncio.ensure_future(self._checked.wait())
            await asyncio.wait([checked, *waiters], return_when=asyncio.FIRST_COMPLETED)
            checked.cancel()


async def test_a_waiter_is_woken_by_the_commit_not_by_its_own_recheck(redis, keys, writer: Writer, new_engine, monkeypatch):
    monkeypatch.setattr(consumer_module, "WAIT_RECHECK_S", AN_HOUR)  # only a notification can wake it
    await writer.open_campaign()
    c = consumer(redis, new_engine(), keys)
    await c.catch_up()
    written = await writer.student(0)
    checks = Checks(c, monkeypatch)
    waiting = asyncio.create_task(c.wait_for(written[-1].positions.service, timeout=AN_HOUR))
    await checks.until(1, [waiting])
    assert checks.answers == [False] and not waiting.done()  # checked, not applied: waiting for a commit

    await c.catch_up()

    assert await asyncio.wait_for(waiting, GUARD_S)
    assert checks.answers[-1] is True and not any(checks.answers[:-1])


async def test_a_stream_found_clear_does_not_hide_a_later_write_to_it(redis, keys, writer: Writer, new_engine):
    await writer.open_campaign()
    c = consumer(redis, new_engine(), keys)
    await c.catch_up()
    first = await writer.student(0)
    await c.catch_up()
    assert await c.wait_for(first[-1].positions.service, timeout=1)  # other streams now known clear up to there

    later = await writer.append(make_event(college_avis(), ine=ine_number(0)), "evaluation")

    assert not await c.reached(later.positions.service)  # the state itself, not a wait that happened to end
    assert not await c.wait_for(later.positions.service, timeout=0.3)
    await c.catch_up()
    assert await c.reached(later.positions.service)
    assert await c.wait_for(later.positions.service, timeout=1)


async def test_many_waiters_are_all_woken(redis, keys, writer: Writer, new_engine, monkeypatch):
    monkeypatch.setattr(consumer_module, "WAIT_RECHECK_S", AN_HOUR)
    await writer.open_campaign()
    c = consumer(redis, new_engine(), keys, page_size=100)
    await c.catch_up()
    positions = [(await writer.student(n))[-1].positions.service for n in range(5)]
    checks = Checks(c, monkeypatch)
    waiting = [asyncio.create_task(c.wait_for(p, timeout=AN_HOUR)) for p in positions]
    await checks.until(5, waiting)
    assert checks.answers == [False] * 5 and not any(w.done() for w in waiting)

    await c.catch_up()

    assert await asyncio.wait_for(asyncio.gather(*waiting), GUARD_S) == [True] * 5


class Asks:
    """The round trips `reached` makes to the log (its pipelines of XRANGE), counted."""

    def __init__(self, c: Consumer, monkeypatch) -> None:  # noqa: ANN001
        self.count = 0
        real = c.redis.pipeline

        def pipeline(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(c.redis, "pipeline", pipeline)


async def test_the_waiters_a_page_wakes_share_one_round_trip_to_the_log(redis, keys, writer: Writer, new_engine, monkeypatch):
    monkeypatch.setattr(consumer_module, "WAIT_RECHECK_S", AN_HOUR)
    await writer.open_campaign()
    c = consumer(redis, new_engine(), keys, page_size=1)
    await c.catch_up()
    positions = [(await writer.student(n))[-1].positions.service for n in range(5)]
    asks = Asks(c, monkeypatch)
    checks = Checks(c, monkeypatch)
    waiting = [asyncio.create_task(c.wait_for(p, timeout=AN_HOUR)) for p in positions]
    await checks.until(5, waiting)
    # Each asked alone: an ask made after a waiter came may not answer for it (its write could be later).
    assert checks.answers == [False] * 5 and asks.count == 5

    assert await c.poll(None) == 1  # one entry applied: the five are woken, all still behind
    asks.count = 0  # (the page's own asks, its letters, are not the waiters')
    await checks.until(10, waiting)

    assert checks.answers == [False] * 10 and asks.count == 1  # the five checks after the page: one round trip
    await c.catch_up()
    assert await asyncio.wait_for(asyncio.gather(*waiting), GUARD_S) == [True] * 5


async def test_an_unread_entry_that_left_the_log_is_asked_for_again(redis, keys, writer: Writer, new_engine):
    await writer.open_campaign()
    c = consumer(redis, new_engine(), keys)
    await c.catch_up()
    written = await writer.student(0)
    position = written[-1].positions.service
    assert not await c.reached(position)  # its entries are known unread now

    # As a failover that lost them would: gone from the log before the consumer read them (XDEL of an id
    # another stream does not hold deletes nothing there).
    deleted = 0
    for w in written:
        for key in c.positions:
            deleted += await redis.xdel(key, w.positions.service)
    assert deleted == len(written)
    assert await c.poll(None) == 0  # the consumer finds nothing after its positions

    assert await c.reached(position)
