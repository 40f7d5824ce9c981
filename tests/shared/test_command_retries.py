"""The write conflict loop (shared/runtime/commands.py): a bounded number of attempts, a jittered pause
between them. Conflicts are real ones, made on Redis by a rival append between the read and the append;
the pause is injected, so nothing here sleeps."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from shared.contracts.events import Event
from shared.contracts.streams import StreamKeys
from shared.domain.student_file import CampaignFile, StudentFile
from shared.runtime import commands
from shared.runtime.commands import MAX_ATTEMPTS, TooMuchContention, backoff_seconds, execute
from shared.runtime.log.client import EventLog

from event_factories import CAMPAIGN, INE, PRINCIPAL, college_avis, make_event, registered

SERVICE = "registration"


class RivalledLog(EventLog):
    """An event log where, before each of our first `rivals` appends, another writer appends an event of
    the same student at its current version: our append, at the version we read, then conflicts."""

    def __init__(self, redis: Redis, keys: StreamKeys, rivals: int) -> None:
        super().__init__(redis, keys)
        self.rivals = rivals

    async def append(self, event: Event, service: str, expected_version: int, fingerprint: str):  # noqa: ANN201
        if self.rivals > 0:
            self.rivals -= 1
            rival = make_event(college_avis(), ine=INE)
            version = len(await self.read_student(CAMPAIGN, INE))
            assert (await super().append(rival, service, version, f"rival-{rival.event_id}")).status == "ok"
        return await super().append(event, service, expected_version, fingerprint)


@pytest.fixture
def log_server(log_url: str) -> str:
    """The `redis` fixture (tests/conftest.py) on Redis 7, then on Valkey."""
    return log_url


def give_avis(file: StudentFile, campaign: CampaignFile, now: datetime):  # noqa: ANN201
    return college_avis("reserve")


async def run(log: EventLog, pauses: list[int]):  # noqa: ANN201
    async def pause(conflicts: int) -> None:
        pauses.append(conflicts)

    return await execute(
        log, service=SERVICE, campaign=CAMPAIGN, ine=INE, actor=PRINCIPAL, event_id=uuid4(),
        request_fingerprint="avis-fp", decide=give_avis, pause=pause,
    )


async def registered_student(redis: Redis, keys: StreamKeys) -> None:
    event = make_event(registered(), ine=INE)
    assert (await EventLog(redis, keys).append(event, SERVICE, 0, "register-fp")).status == "ok"


async def test_a_write_that_meets_two_conflicts_pauses_twice_then_is_stored(redis: Redis, keys: StreamKeys) -> None:
    await registered_student(redis, keys)
    pauses: list[int] = []

    outcome = await run(RivalledLog(redis, keys, rivals=2), pauses)

    assert outcome.created and outcome.status == 201
    assert pauses == [1, 2]  # one pause after each conflict, none before the first attempt
    history = await EventLog(redis, keys).read_student(CAMPAIGN, INE)
    assert history[-1].event.event_id == outcome.event.event_id
    assert len(history) == 1 + 2 + 1  # the registration, two rivals, ours


async def test_a_write_that_conflicts_every_time_gives_up_after_max_attempts_and_stores_nothing_of_its_own(
    redis: Redis, keys: StreamKeys
) -> None:
    await registered_student(redis, keys)
    pauses: list[int] = []

    with pytest.raises(TooMuchContention) as refused:
        await run(RivalledLog(redis, keys, rivals=MAX_ATTEMPTS), pauses)

    assert refused.value.code == "concurrent_updates" and refused.value.status == 409
    assert pauses == list(range(1, MAX_ATTEMPTS))  # a pause between attempts, none after the last
    history = await EventLog(redis, keys).read_student(CAMPAIGN, INE)
    assert len(history) == 1 + MAX_ATTEMPTS  # the registration and the rivals: ours never
    assert all(h.event.payload.avis == "favorable" for h in history[1:])


def test_the_pause_is_a_full_jitter_below_a_doubling_bound_with_a_cap() -> None:
    assert [backoff_seconds(n, lambda: 1.0) for n in (1, 2, 3)] == [
        commands.BACKOFF_BASE_SECONDS, 2 * commands.BACKOFF_BASE_SECONDS, 4 * commands.BACKOFF_BASE_SECONDS
    ]
    assert backoff_seconds(30, lambda: 1.0) == commands.BACKOFF_CAP_SECONDS
    assert backoff_seconds(3, lambda: 0.0) == 0.0
    assert backoff_seconds(3, lambda: 0.5) == 2 * commands.BACKOFF_BASE_SECONDS
    # The worst case of a whole loop stays short: the sum of every bound.
    assert sum(backoff_seconds(n, lambda: 1.0) for n in range(1, MAX_ATTEMPTS)) < 1.0
