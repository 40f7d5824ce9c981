"""The one append script, generalised (SPEC §7 rule 9): one entry to N streams, each conditioned on its own
expected version, all or nothing; on Redis 7 and on Valkey (`log_url`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from event_factories import CAMPAIGN, INE, make_event, registered, scheduled
from shared.contracts.streams import StreamKeys
from shared.runtime.log.client import EventLog, entry_hash

SERVICE = "registration"


@pytest.fixture
async def raw(log_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(log_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def keys(academie: str) -> StreamKeys:
    return StreamKeys(academie)


@pytest.fixture
def log(raw: Redis, keys: StreamKeys) -> EventLog:
    return EventLog(raw, keys)


async def _registered(log: EventLog) -> None:
    event = make_event(registered())
    assert (await log.append(event, SERVICE, 0, "f")).status == "ok"


async def test_the_entry_goes_to_every_stream_named_with_the_same_fields(log: EventLog, raw: Redis, keys: StreamKeys):
    await _registered(log)
    a, b = keys.slot(CAMPAIGN, "a"), keys.slot(CAMPAIGN, "b")
    await raw.xadd(b, {"x": "1"})  # b is at version 1
    event = make_event(scheduled())
    appended = await log.append(event, SERVICE, 1, "f", more={a: 0, b: 1})

    assert appended.status == "ok" and appended.version == 2
    service = await raw.xrange(keys.service(CAMPAIGN, SERVICE))
    student = await raw.xrange(keys.student(CAMPAIGN, INE))
    in_a = await raw.xrange(a)
    in_b = await raw.xrange(b)
    assert service[-1][1] == student[-1][1] == in_a[-1][1] == in_b[-1][1]
    assert service[-1][1]["hash"] == entry_hash(service[-1][1])  # the chain is the service stream's, unchanged
    assert service[-1][1]["prev_hash"] == service[0][1]["hash"]
    assert appended.positions.more == ((a, in_a[-1][0]), (b, in_b[-1][0]))
    assert (len(in_a), len(in_b)) == (1, 2)


@pytest.mark.parametrize("stale", ["student", "first", "second"])
async def test_any_stream_away_from_its_expected_version_appends_nothing_anywhere(
    log: EventLog, raw: Redis, keys: StreamKeys, stale: str
):
    await _registered(log)
    a, b = keys.slot(CAMPAIGN, "a"), keys.slot(CAMPAIGN, "b")
    versions = {"student": 1, a: 0, b: 0}
    key = {"student": "student", "first": a, "second": b}[stale]
    versions[key] += 1  # one stale expectation
    event = make_event(scheduled())
    appended = await log.append(event, SERVICE, versions["student"], "f", more={a: versions[a], b: versions[b]})

    assert appended.status == "conflict"
    assert await raw.xlen(keys.service(CAMPAIGN, SERVICE)) == 1
    assert await raw.xlen(keys.student(CAMPAIGN, INE)) == 1
    assert await raw.xlen(a) == await raw.xlen(b) == 0
    assert await log.prior_append(str(event.event_id), CAMPAIGN) is None


async def test_the_same_event_id_again_is_a_duplicate_and_writes_no_stream(log: EventLog, raw: Redis, keys: StreamKeys):
    await _registered(log)
    a = keys.slot(CAMPAIGN, "a")
    event = make_event(scheduled())
    first = await log.append(event, SERVICE, 1, "f", more={a: 0})
    again = await log.append(event, SERVICE, 2, "f", more={a: 1})
    assert (first.status, again.status) == ("ok", "duplicate")
    assert again.positions.service == first.positions.service and again.positions.student == first.positions.student
    assert await raw.xlen(a) == 1 and await raw.xlen(keys.student(CAMPAIGN, INE)) == 2


async def test_a_stream_named_twice_gets_the_entry_once(log: EventLog, raw: Redis, keys: StreamKeys):
    await _registered(log)
    a = keys.slot(CAMPAIGN, "a")
    appended = await log.append(make_event(scheduled()), SERVICE, 1, "f", more={a: 0, keys.student(CAMPAIGN, INE): 1})
    assert appended.status == "ok"
    assert await raw.xlen(a) == 1 and await raw.xlen(keys.student(CAMPAIGN, INE)) == 2


async def test_racing_appends_on_one_shared_stream_let_exactly_one_through(log: EventLog, raw: Redis, keys: StreamKeys):
    """Twenty students, each at their own version, all conditioned on the same slot at version 0: one wins."""
    slot = keys.slot(CAMPAIGN, "shared")
    ines = [f"{n:09d}AB" for n in range(20)]
    for ine in ines:
        assert (await log.append(make_event(registered(), ine=ine), SERVICE, 0, "f")).status == "ok"
    results = await asyncio.gather(
        *(log.append(make_event(scheduled(), ine=ine), SERVICE, 1, "f", more={slot: 0}) for ine in ines)
    )
    assert sorted(r.status for r in results) == ["conflict"] * 19 + ["ok"]
    assert await raw.xlen(slot) == 1
    students_at_two = [ine for ine in ines if await raw.xlen(keys.student(CAMPAIGN, ine)) == 2]
    assert len(students_at_two) == 1
