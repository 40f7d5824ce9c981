"""`Consumer.wait_for`: woken by each committed page, and never answering before the position is applied."""

from __future__ import annotations

import asyncio
import time

from shared.runtime import consumer as consumer_module
from test_consumer import CountingView, Writer, consumer, keys, log, new_engine, redis, writer  # noqa: F401 (fixtures)

from event_factories import college_avis, ine_number, make_event


async def test_a_waiter_is_woken_by_the_commit_not_by_its_own_recheck(redis, keys, writer: Writer, new_engine, monkeypatch):
    monkeypatch.setattr(consumer_module, "WAIT_RECHECK_S", 60)  # only a notification can wake it in time
    await writer.open_campaign()
    c = consumer(redis, new_engine(), keys)
    await c.catch_up()
    written = await writer.student(0)
    waiting = asyncio.create_task(c.wait_for(written[-1].positions.service, timeout=30))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # not applied yet

    started = time.monotonic()
    await c.catch_up()

    assert await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - started < 5


async def test_a_stream_found_clear_does_not_hide_a_later_write_to_it(redis, keys, writer: Writer, new_engine):
    await writer.open_campaign()
    c = consumer(redis, new_engine(), keys)
    await c.catch_up()
    first = await writer.student(0)
    await c.catch_up()
    assert await c.wait_for(first[-1].positions.service, timeout=1)  # other streams now known clear up to there

    later = await writer.append(make_event(college_avis(), ine=ine_number(0)), "evaluation")

    assert not await c.wait_for(later.positions.service, timeout=0.3)
    await c.catch_up()
    assert await c.wait_for(later.positions.service, timeout=1)


async def test_many_waiters_are_all_woken(redis, keys, writer: Writer, new_engine, monkeypatch):
    monkeypatch.setattr(consumer_module, "WAIT_RECHECK_S", 60)
    await writer.open_campaign()
    c = consumer(redis, new_engine(), keys, page_size=100)
    await c.catch_up()
    positions = [(await writer.student(n))[-1].positions.service for n in range(5)]
    waiting = [asyncio.create_task(c.wait_for(p, timeout=30)) for p in positions]
    await asyncio.sleep(0.05)

    await c.catch_up()

    assert await asyncio.wait_for(asyncio.gather(*waiting), 5) == [True] * 5

