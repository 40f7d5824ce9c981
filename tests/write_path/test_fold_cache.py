"""The write path's fold cache (shared/runtime/commands.py FoldCache): a decision is taken on the student's file as
the log holds it at the read, whatever this process folded before — two writers (two event logs, each with its
own cache, as two worker processes) alternate on one student, a rival appends between a read and an append, a
stream is deleted and made again — and a current cached file is reused instead of folded from the start."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

from redis.asyncio import Redis

from shared.contracts.streams import StreamKeys
from shared.domain.student_file import CampaignFile, StudentFile
from shared.runtime.commands import execute, fold_cache
from shared.runtime.log.client import EventLog

from event_factories import CAMPAIGN, INE, PRINCIPAL, college_avis, make_event, registered

SERVICE = "registration"


class Seen:
    """A decision that records the student file it was given (its versions and collège avis) and gives an avis."""

    def __init__(self) -> None:
        self.files: list[StudentFile] = []

    def __call__(self, file: StudentFile, campaign: CampaignFile, now: datetime):  # noqa: ANN204
        self.files.append(file)
        return college_avis("reserve" if file.college_avis == "favorable" else "favorable")


async def give_avis(log: EventLog, seen: Seen):  # noqa: ANN201
    return await execute(
        log, service=SERVICE, campaign=CAMPAIGN, ine=INE, actor=PRINCIPAL, event_id=uuid4(),
        request_fingerprint=f"fp-{uuid4()}", decide=seen,
    )


async def register(log: EventLog) -> None:
    assert (await log.append(make_event(registered(), ine=INE), SERVICE, 0, "register-fp")).status == "ok"


async def test_two_writers_each_decide_on_the_other_ones_latest_event(redis: Redis, keys: StreamKeys) -> None:
    first, second = EventLog(redis, keys), EventLog(redis, keys)  # two processes' logs: two caches
    await register(first)
    seen = Seen()

    for turn in range(6):
        outcome = await give_avis(first if turn % 2 == 0 else second, seen)
        assert outcome.created

    # Each decision saw every event before it, the other writer's last one included: never a stale file.
    assert [f.versions for f in seen.files] == [tuple(range(1, n + 2)) for n in range(6)]
    avis = [f.college_avis for f in seen.files]
    assert avis == [None, "favorable", "reserve", "favorable", "reserve", "favorable"]
    history = await EventLog(redis, keys).read_student(CAMPAIGN, INE)
    assert len(history) == 7
    # Each writer folded from the start once, then only moved its cached file forward.
    assert (fold_cache(first).misses, fold_cache(first).hits) == (1, 2)
    assert (fold_cache(second).misses, fold_cache(second).hits) == (1, 2)


async def test_a_current_cached_file_is_reused_and_entries_appended_elsewhere_are_read(
    redis: Redis, keys: StreamKeys
) -> None:
    log = EventLog(redis, keys)
    await register(log)
    seen = Seen()
    await give_avis(log, seen)
    await give_avis(log, seen)
    cache = fold_cache(log)
    assert (cache.misses, cache.hits) == (1, 1)

    # Another writer appends twice behind this cache's back: the next decision reads both.
    other = EventLog(redis, keys)
    for version in (3, 4):
        event = make_event(college_avis("assez_favorable"), ine=INE)
        assert (await other.append(event, SERVICE, version, f"other-{version}")).status == "ok"
    await give_avis(log, seen)

    assert seen.files[-1].versions == (1, 2, 3, 4, 5)
    assert seen.files[-1].college_avis == "assez_favorable"
    assert (cache.misses, cache.hits) == (1, 2)


async def test_a_rival_between_the_read_and_the_append_makes_the_retry_decide_on_it(
    redis: Redis, keys: StreamKeys
) -> None:
    log = EventLog(redis, keys)
    await register(log)
    seen = Seen()
    rival = EventLog(redis, keys)

    # The rival appends before our first append: it conflicts, and the second attempt sees the rival's event.
    class Rivalled(EventLog):
        rivals = 1

        async def append(self, event, service, expected_version, fingerprint, **more):  # noqa: ANN001, ANN201
            if self.rivals:
                self.rivals -= 1
                other = make_event(college_avis("assez_favorable"), ine=INE)
                assert (await rival.append(other, SERVICE, expected_version, "rival")).status == "ok"
            return await super().append(event, service, expected_version, fingerprint, **more)

    rivalled = Rivalled(redis, keys)
    outcome = await execute(
        rivalled, service=SERVICE, campaign=CAMPAIGN, ine=INE, actor=PRINCIPAL, event_id=uuid4(),
        request_fingerprint="fp", decide=seen, pause=_no_pause,
    )

    assert outcome.created
    assert [f.versions for f in seen.files] == [(1,), (1, 2)]
    assert seen.files[1].college_avis == "assez_favorable"  # the retry decided on the rival's avis
    assert len(await log.read_student(CAMPAIGN, INE)) == 3


async def _no_pause(conflicts: int) -> None:
    return None


async def test_a_stream_deleted_and_made_again_is_folded_from_the_start(redis: Redis, keys: StreamKeys) -> None:
    log = EventLog(redis, keys)
    await register(log)
    seen = Seen()
    await give_avis(log, seen)
    await give_avis(log, seen)  # cached at version 3

    # The same student's stream made again with as many entries as the cache expects after its last one:
    # only its first entry tells it apart.
    await redis.delete(keys.student(CAMPAIGN, INE))
    other = EventLog(redis, keys)
    await register(other)
    event = make_event(college_avis("assez_favorable"), ine=INE)
    assert (await other.append(event, SERVICE, 1, "again")).status == "ok"
    await give_avis(log, seen)

    assert seen.files[-1].versions == (1, 2)
    assert seen.files[-1].college_avis == "assez_favorable"
    assert fold_cache(log).misses == 2


async def test_a_stream_made_again_with_the_cached_length_is_told_apart_by_its_first_entry(
    redis: Redis, keys: StreamKeys
) -> None:
    log = EventLog(redis, keys)
    await register(log)
    seen = Seen()
    await give_avis(log, seen)  # favorable
    await give_avis(log, seen)  # reserve, decided on version 2: cached at version 2
    key = keys.student(CAMPAIGN, INE)
    entries = await redis.xrange(key, "-", "+")

    # Made again with two entries, both older than the cached last one: nothing comes after it and the
    # length is the cached version; only the first entry differs. Its avis is the reserve one.
    await redis.delete(key)
    for n, (_, fields) in enumerate([entries[0], entries[2]], start=1):
        await redis.xadd(key, fields, id=f"1-{n}")
    seen_before = len(seen.files)
    await execute(
        log, service=SERVICE, campaign=CAMPAIGN, ine=INE, actor=PRINCIPAL, event_id=uuid4(),
        request_fingerprint="fp-again", decide=seen, pause=_no_pause,
    )

    assert seen.files[seen_before].college_avis == "reserve"  # not the cached file's "favorable"
    assert fold_cache(log).misses == 2


async def test_a_campaign_change_appended_elsewhere_is_read_by_the_next_decision(redis: Redis, keys: StreamKeys) -> None:
    from shared.contracts.events import CampaignOpened

    log = EventLog(redis, keys)
    first = make_event(CampaignOpened(bonus_points=2500), ine=None)
    assert (await log.append(first, "scoring", 0, "open")).status == "ok"
    await register(log)
    seen: list[CampaignFile] = []

    def decide(file: StudentFile, campaign: CampaignFile, now: datetime):  # noqa: ANN202
        seen.append(campaign)
        return college_avis("favorable" if len(seen) % 2 else "reserve")

    async def write() -> None:
        await execute(log, service=SERVICE, campaign=CAMPAIGN, ine=INE, actor=PRINCIPAL, event_id=uuid4(),
                      request_fingerprint=f"fp-{uuid4()}", decide=decide, pause=_no_pause)

    await write()
    await write()  # the campaign from the cache
    again = make_event(CampaignOpened(bonus_points=3000), ine=None)
    assert (await EventLog(redis, keys).append(again, "scoring", 1, "again")).status == "ok"
    await write()

    assert [c.bonus_points for c in seen] == [2500, 2500, 3000]
    assert all(c.opened for c in seen)


async def test_a_writers_own_event_moves_its_cache_as_the_log_reads_it_without_the_key(
    redis: Redis, keys: StreamKeys, tmp_path
) -> None:
    """The event this process appended is folded into its cache at once (the next write parses nothing), as
    read back without the student's key: its personal fields ERASED, never the name it was sent with."""
    from shared.contracts.personal import ERASED
    from shared.runtime.commands import FoldCache
    from shared.runtime.keys.crypto import MasterKey, new_key
    from shared.runtime.keys.store import KeyStore

    store = KeyStore.open(f"sqlite:///{tmp_path / 'keys.sqlite3'}", MasterKey(new_key()))
    log = EventLog(redis, keys, store)
    cache = fold_cache(log)
    key = keys.student(CAMPAIGN, INE)

    async def write(decide) -> None:  # noqa: ANN001
        outcome = await execute(log, service=SERVICE, campaign=CAMPAIGN, ine=INE, actor=PRINCIPAL, event_id=uuid4(),
                                request_fingerprint=f"fp-{uuid4()}", decide=decide, pause=_no_pause)
        assert outcome.created
        assert cache._streams[key].last_id == outcome.positions.student  # at the stream's end already
        from_the_log = await FoldCache().read(EventLog(redis, keys, store), CAMPAIGN, INE)
        assert cache._streams[key].state == from_the_log.file
        assert cache._streams[key].version == from_the_log.version

    await write(lambda file, campaign, now: registered())
    assert cache._streams[key].state.last_name == ERASED  # sealed in the log: not kept in clear here
    seen = Seen()
    await write(seen)  # an avis with a comment (personal) then one more: each folded as the log reads it
    await write(seen)
    assert [f.versions for f in seen.files] == [(1,), (1, 2)]
    assert (cache.misses, cache.hits) == (1, 2)
    store.close()
