"""SPEC §4: the one atomic append, on Redis 7 and on Valkey.

Every test gets its own académie, so its keys are its own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from shared.domain.errors import RuleViolation
from shared.contracts.events import CampaignOpened, Event, StudentRegistered, event_from_fields, event_to_fields
from shared.contracts.streams import GENESIS_HASH, StreamKeys
from shared.domain.student_file import CampaignFile, StudentFile
from shared.runtime.commands import EventIdReused, execute, fingerprint
from shared.runtime.log.client import EventLog, entry_hash

from event_factories import (
    CAMPAIGN,
    INE,
    PRINCIPAL,
    college_avis,
    ine_number,
    make_event,
    registered,
    scheduled,
)

SERVICE = "registration"
ENTRY_FIELDS = {
    "event_id",
    "event_type",
    "schema_version",
    "student_ine",
    "campaign",
    "occurred_at",
    "recorded_at",
    "actor",
    "payload",
    "student_version",
    "prev_hash",
    "hash",
}


@pytest.fixture
def log_server(log_url: str) -> str:
    """The `redis` and `log` fixtures (tests/conftest.py) on Redis 7, then on Valkey."""
    return log_url


@pytest.fixture
async def raw(log_url: str) -> AsyncIterator[Redis]:
    """A plain client with string replies, to look at the streams as redis-cli would."""
    client = Redis.from_url(log_url, decode_responses=True)
    yield client
    await client.aclose()


def fp(event: Event) -> str:
    return fingerprint("test", {"payload": event.payload.model_dump(mode="json"), "ine": event.student_ine})


async def append_in_order(log: EventLog, events: list[Event], service: str = SERVICE) -> list:
    """Append events one after the other, each at the version its student stream is at."""
    results = []
    versions: dict[str | None, int] = {}
    for event in events:
        version = versions.get(event.student_ine, 0)
        appended = await log.append(event, service, version, fp(event))
        assert appended.status == "ok", appended
        versions[event.student_ine] = version + 1
        results.append(appended)
    return results


# --- the entry format -----------------------------------------------------------------


async def test_an_append_writes_the_same_plain_fields_to_the_service_and_the_student_stream(
    log: EventLog, raw: Redis, keys: StreamKeys
) -> None:
    event = make_event(registered())
    appended = await log.append(event, SERVICE, 0, fp(event))

    assert appended.status == "ok" and appended.version == 1
    [(service_id, service_fields)] = await raw.xrange(keys.service(CAMPAIGN, SERVICE))
    [(student_id, student_fields)] = await raw.xrange(keys.student(CAMPAIGN, INE))
    assert (service_id, student_id) == (appended.positions.service, appended.positions.student)
    assert service_fields == student_fields
    assert set(service_fields) == ENTRY_FIELDS

    assert service_fields == event_to_fields(event) | {
        "recorded_at": appended.recorded_at,
        "student_version": "1",
        "prev_hash": GENESIS_HASH,
        "hash": service_fields["hash"],
    }
    assert json.loads(service_fields["actor"]) == PRINCIPAL.model_dump(mode="json")
    assert json.loads(service_fields["payload"])["college_uai"] == registered().college_uai
    assert service_fields["recorded_at"].endswith("+00:00")
    assert event_from_fields(service_fields).model_copy(update={"recorded_at": None}) == event


async def test_the_log_reads_back_the_students_history_in_order(log: EventLog) -> None:
    events = [make_event(registered()), make_event(college_avis()), make_event(scheduled())]
    await append_in_order(log, events)
    history = await log.read_student(CAMPAIGN, INE)
    assert [h.event.event_id for h in history] == [e.event_id for e in events]
    assert [h.student_version for h in history] == [1, 2, 3]
    assert all(h.event.recorded_at is not None for h in history)


# --- expected version and idempotency -------------------------------------------------


async def test_an_append_at_a_stale_version_is_a_conflict_and_appends_nothing(
    log: EventLog, raw: Redis, keys: StreamKeys
) -> None:
    await append_in_order(log, [make_event(registered())])
    late = make_event(college_avis())
    appended = await log.append(late, SERVICE, 0, fp(late))
    assert appended.status == "conflict" and appended.positions is None
    ahead = await log.append(late, SERVICE, 5, fp(late))
    assert ahead.status == "conflict"

    assert await raw.xlen(keys.service(CAMPAIGN, SERVICE)) == 1
    assert await raw.xlen(keys.student(CAMPAIGN, INE)) == 1
    assert await log.prior_append(str(late.event_id), CAMPAIGN) is None


async def test_the_same_event_id_again_is_a_duplicate_with_the_original_positions(
    log: EventLog, raw: Redis, keys: StreamKeys
) -> None:
    event = make_event(registered())
    first = await log.append(event, SERVICE, 0, fp(event))
    again = await log.append(event, SERVICE, 0, fp(event))
    stale_retry = await log.append(event, SERVICE, 1, "another fingerprint")

    assert again.status == "duplicate" and again.positions == first.positions
    assert again.fingerprint == fp(event)
    assert stale_retry.status == "duplicate" and stale_retry.fingerprint == fp(event)
    assert await raw.xlen(keys.service(CAMPAIGN, SERVICE)) == 1
    assert await raw.xlen(keys.student(CAMPAIGN, INE)) == 1
    prior = await log.prior_append(str(event.event_id), CAMPAIGN)
    assert prior is not None and prior.positions == first.positions


# --- execute(): decide on the full history, append at the version read ----------------


def register_once(file: StudentFile, campaign: CampaignFile, now: datetime) -> StudentRegistered:
    if file.registered:
        raise RuleViolation("already_registered", "L'élève est déjà inscrit pour cette campagne.")
    return registered()


async def run_register(log: EventLog, event_id=None, request_fingerprint: str = "register-fp"):  # noqa: ANN001
    return await execute(
        log,
        service=SERVICE,
        campaign=CAMPAIGN,
        ine=INE,
        actor=PRINCIPAL,
        event_id=event_id or uuid4(),
        request_fingerprint=request_fingerprint,
        decide=register_once,
    )


async def test_execute_with_the_same_event_id_and_body_returns_the_original_event(log: EventLog, raw: Redis, keys: StreamKeys) -> None:
    event_id = uuid4()
    first = await run_register(log, event_id)
    again = await run_register(log, event_id)

    assert first.created and not again.created
    assert again.event == first.event
    assert again.positions == first.positions
    assert again.body()["event"]["event_id"] == str(event_id)
    assert await raw.xlen(keys.student(CAMPAIGN, INE)) == 1


async def test_execute_with_the_same_event_id_and_another_body_is_refused_with_409(log: EventLog, raw: Redis, keys: StreamKeys) -> None:
    event_id = uuid4()
    await run_register(log, event_id, "first body")
    with pytest.raises(EventIdReused) as refused:
        await run_register(log, event_id, "another body")
    assert refused.value.status == 409 and refused.value.code == "event_id_reused"
    assert await raw.xlen(keys.student(CAMPAIGN, INE)) == 1


async def test_a_rule_refusal_stores_nothing(log: EventLog, raw: Redis, keys: StreamKeys) -> None:
    await run_register(log)
    with pytest.raises(RuleViolation):
        await run_register(log)
    assert await raw.xlen(keys.student(CAMPAIGN, INE)) == 1
    assert await raw.xlen(keys.service(CAMPAIGN, SERVICE)) == 1


async def test_twenty_concurrent_registrations_of_one_student_store_exactly_one_event(
    log_url: str, keys: StreamKeys, raw: Redis
) -> None:
    clients = [Redis.from_url(log_url) for _ in range(20)]  # as if from 20 service replicas
    try:
        outcomes = await asyncio.gather(
            *(run_register(EventLog(c, keys), request_fingerprint=f"fp-{n}") for n, c in enumerate(clients)),
            return_exceptions=True,
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))

    stored = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(stored) == 1 and stored[0].created
    assert all(isinstance(r, RuleViolation) and r.code == "already_registered" for r in refused), refused
    assert await raw.xlen(keys.student(CAMPAIGN, INE)) == 1
    assert await raw.xlen(keys.service(CAMPAIGN, SERVICE)) == 1


# --- the tamper-evidence chain, and no trimming ---------------------------------------


async def test_each_entry_of_a_service_stream_chains_to_the_previous_ones_hash(
    log: EventLog, raw: Redis, keys: StreamKeys
) -> None:
    events = [make_event(registered(), ine=ine_number(n)) for n in range(5)]
    events += [make_event(college_avis(), ine=ine_number(n)) for n in range(5)]
    await append_in_order(log, events)

    entries = await raw.xrange(keys.service(CAMPAIGN, SERVICE))
    assert len(entries) == 10
    # "Léa" is two bytes longer than it has characters: the lengths hashed are counted in bytes, as the script does.
    assert all(len(f["payload"].encode()) > len(f["payload"]) for _, f in entries[:5])
    previous = GENESIS_HASH
    for _, fields in entries:
        assert fields["prev_hash"] == previous
        assert fields["hash"] == entry_hash(fields)  # the production function against append.lua's own output
        previous = fields["hash"]
    assert len({f["hash"] for _, f in entries}) == 10


async def test_a_changed_field_no_longer_matches_its_hash(log: EventLog, raw: Redis, keys: StreamKeys) -> None:
    await append_in_order(log, [make_event(registered())])
    [(_, fields)] = await raw.xrange(keys.service(CAMPAIGN, SERVICE))
    tampered = fields | {"payload": fields["payload"].replace("Martin", "Marton")}
    assert entry_hash(fields) == fields["hash"]
    assert entry_hash(tampered) != fields["hash"]


async def test_the_streams_are_never_trimmed(log: EventLog, raw: Redis, keys: StreamKeys) -> None:
    students = 7
    events = [make_event(p, ine=ine_number(n)) for n in range(students) for p in (registered(), college_avis(), scheduled())]
    await append_in_order(log, events)
    assert await raw.xlen(keys.service(CAMPAIGN, SERVICE)) == len(events)
    for n in range(students):
        assert await raw.xlen(keys.student(CAMPAIGN, ine_number(n))) == 3


async def test_the_services_streams_are_separate_but_the_students_is_shared(
    log: EventLog, raw: Redis, keys: StreamKeys
) -> None:
    reg = make_event(registered())
    await log.append(reg, "registration", 0, fp(reg))
    other = make_event(college_avis())
    await log.append(other, "evaluation", 1, fp(other))
    assert await raw.xlen(keys.service(CAMPAIGN, "registration")) == 1
    assert await raw.xlen(keys.service(CAMPAIGN, "evaluation")) == 1
    assert [f["student_version"] for _, f in await raw.xrange(keys.student(CAMPAIGN, INE))] == ["1", "2"]


# --- campaign events ------------------------------------------------------------------


async def test_campaign_opened_goes_only_to_the_rectorat_stream(log: EventLog, raw: Redis, keys: StreamKeys) -> None:
    opened = make_event(CampaignOpened(bonus_points=2500))
    appended = await log.append(opened, "scoring", 0, fp(opened))

    assert appended.status == "ok"
    assert appended.positions.service == appended.positions.student
    [(entry_id, fields)] = await raw.xrange(keys.rectorat)
    assert entry_id == appended.positions.service
    assert fields["event_type"] == "CampaignOpened" and fields["student_ine"] == ""
    assert set(fields) == ENTRY_FIELDS
    assert not await raw.exists(keys.service(CAMPAIGN, "scoring"))
    assert [k async for k in raw.scan_iter(match=f"{keys.prefix}:{CAMPAIGN}:*")] == []

    assert (await log.read_campaign(CAMPAIGN)).bonus_points == 2500
    assert await log.rectorat_version() == 1
    again = await log.append(opened, "scoring", 1, fp(opened))
    assert again.status == "duplicate" and again.positions == appended.positions


async def test_execute_opens_a_campaign_on_the_rectorat_stream(log: EventLog, raw: Redis, keys: StreamKeys) -> None:
    def open_campaign(file: StudentFile, campaign: CampaignFile, now: datetime) -> CampaignOpened:
        if campaign.opened:
            raise RuleViolation("campaign_already_open", "La campagne est déjà ouverte.")
        return CampaignOpened(bonus_points=2500)

    async def run(event_id):  # noqa: ANN001, ANN202
        return await execute(
            log, service="scoring", campaign=CAMPAIGN, ine=None, actor=PRINCIPAL.model_copy(update={"role": "rectorat", "uai": None}),
            event_id=event_id, request_fingerprint="open-2027", decide=open_campaign,
        )

    event_id = uuid4()
    first = await run(event_id)
    again = await run(event_id)
    assert first.created and not again.created and again.event == first.event
    with pytest.raises(RuleViolation):
        await run(uuid4())
    assert await raw.xlen(keys.rectorat) == 1
