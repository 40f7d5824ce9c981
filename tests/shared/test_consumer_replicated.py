"""SPEC §9, on the tests' single Redis (no replica): with replicas required, a page is applied only once its
entries are on them — here never, so the view stays where it was and the page is read again later; without,
the consumer applies as before. tests/failover/test_view_replicated.py runs it on a replicated log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.runtime.log.client import NotReplicated, Replication, confirm_read
from test_consumer import CAMPAIGN, CountingView, Writer, consumer, view_metadata, writer  # noqa: F401 (fixtures)

from event_factories import ine_number


@pytest.fixture(autouse=True)
async def no_replica(redis) -> None:  # noqa: ANN001
    replicas = (await redis.info("replication")).get("connected_slaves", 0)
    if replicas:
        pytest.skip(f"the tests' Redis has {replicas} replica(s): this test needs one without")


def counts(c) -> dict:  # noqa: ANN001
    with c.engine.connect() as conn:
        return {(r.campaign, r.ine): r.events for r in conn.execute(select(c.view.counts))}


async def test_a_page_not_on_the_required_replicas_is_not_applied(redis, keys, writer: Writer, new_engine) -> None:
    await writer.open_campaign()
    await writer.student(0)
    engine = new_engine()
    waiting = consumer(redis, engine, keys, replication=Replication(replicas=1, timeout_ms=50))
    with pytest.raises(NotReplicated, match="0 replica"):
        await waiting.poll(None)
    with pytest.raises(NotReplicated):  # read again, still not replicated: still not applied
        await waiting.poll(None)
    assert waiting.applied == 0 and counts(waiting) == {}
    assert await redis.exists(f"{keys.prefix}:reader:counting")  # the reader's own write, in the académie's tag

    alone = consumer(redis, engine, keys, replication=Replication(replicas=0))  # nothing required: as before
    assert await alone.catch_up() > 0
    assert counts(alone) == {(CAMPAIGN, ine_number(0)): 3}


async def test_an_entry_no_longer_on_the_primary_is_refused(redis, keys) -> None:
    stream = f"{keys.prefix}:2027:registration"
    entry_id = await redis.xadd(stream, {"a": "1"})
    present = {stream: entry_id if isinstance(entry_id, str) else entry_id.decode()}
    await confirm_read(redis, Replication(replicas=0), f"{keys.prefix}:reader:t", present)
    await redis.xdel(stream, present[stream])  # as a new primary that never had it
    with pytest.raises(NotReplicated, match="not on the log's primary"):
        await confirm_read(redis, Replication(replicas=0), f"{keys.prefix}:reader:t", present)
