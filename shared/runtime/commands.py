"""Running a command: read the student's history, decide, append at the version read, retry on conflict.

Every write of every service goes through `execute`, so no decision is ever
taken on a stale history: the append succeeds only if nothing of the student
was appended since the read (one version per student, across services).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from shared.domain.errors import Refusal, RuleViolation
from shared.contracts.events import PAYLOAD_TYPES, Actor, Event, Payload, UnknownEventType, event_from_fields
from shared.contracts.personal import ErasedKeyring, has_personal_fields, merge_personal, split_personal
from shared.contracts.streams import logged_event_from_entry
from shared.domain.calendar import PhaseClosed
from shared.domain.rules import require_not_erased
from shared.fr.formats import paris
from shared.domain.student_file import CampaignFile, StudentFile, evolve, fold, fold_campaign
from shared.runtime.keys.store import StudentErased
from shared.runtime.log.client import EventLog, Positions, _decode, _fields

# A conflict means another write of the same student landed between our read and our append: a few
# attempts, each after a short random pause so that racing writers spread out instead of colliding again.
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 0.005
BACKOFF_CAP_SECONDS = 0.2

Decide = Callable[[StudentFile, CampaignFile, datetime], Payload]
# A decision that also reads other streams: their events, by stream key (see Related).
DecideWith = Callable[[StudentFile, CampaignFile, datetime, Mapping[str, list[Event]]], Payload]


@dataclass(frozen=True)
class Related:
    """Streams besides the student's that a decision reads (SPEC §7 rule 9). `conditioned` ones also receive
    the event, in the same append, each conditioned on the version read (e.g. the slots a booking, a
    cancellation or a move takes or frees a place in); `read` ones only inform it and must be streams whose
    part the decision reads never changes (e.g. a slot's length)."""

    conditioned: tuple[str, ...] = ()
    read: tuple[str, ...] = ()


RelatedOf = Callable[[StudentFile], Related]
Pause = Callable[[int], Awaitable[None]]  # the pause after the n-th conflict (1, 2, …)


def backoff_seconds(conflicts: int, draw: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, base·2^(n-1))] after the n-th conflict."""
    return draw() * min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (conflicts - 1))


async def backoff(conflicts: int) -> None:
    await asyncio.sleep(backoff_seconds(conflicts))


@dataclass(frozen=True)
class Outcome:
    event: Event
    positions: Positions
    created: bool  # False: the same request was already stored (idempotent retry)

    @property
    def status(self) -> int:
        """The HTTP status of the answer: 201 for a new event, 200 for a retry answered by the original."""
        return 201 if self.created else 200

    def body(self) -> dict[str, Any]:
        return {"event": self.event.model_dump(mode="json"), "positions": self.positions.as_dict()}


def fingerprint(action: str, request: dict[str, Any], key: bytes | None = None) -> str:
    """A stable digest of what was asked, to tell a retry from a different request with the same id.
    Stored in Redis beside the event: a request carrying personal fields is keyed (HMAC-SHA256 with a
    key derived from the master key), so no one reading Redis can confirm a guess of them."""
    canonical = json.dumps({"action": action, "request": request}, sort_keys=True, separators=(",", ":"), default=str)
    if key is not None:
        return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
    return hashlib.sha256(canonical.encode()).hexdigest()


class EventIdReused(RuleViolation):
    def __init__(self) -> None:
        super().__init__(
            "event_id_reused",
            "Cet identifiant d'événement a déjà été utilisé pour une autre demande.",
        )


class TooMuchContention(RuleViolation):
    def __init__(self) -> None:
        super().__init__("concurrent_updates", "Le dossier de l'élève change trop vite ; réessayez dans un instant.")


@dataclass(frozen=True)
class _Folded:
    first_id: str  # the stream's first entry: a stream deleted and made again is never taken for the cached one
    last_id: str
    version: int  # the number of entries folded
    state: Any  # a student's file, or the rectorat stream's events


@dataclass(frozen=True)
class Read:
    """What one attempt of a command reads, in one round trip."""

    prior_seen: bool  # the event id is already in the log's ids (asked on the first attempt only)
    rectorat_version: int
    campaign: CampaignFile
    version: int  # the student's (0 for a rectorat command)
    file: StudentFile | None
    folded: Any = None  # the student's cache entry the file came from (None: none was kept), see FoldCache.appended


def _student_step(key: str, campaign: str, ine: str) -> Callable[[Any, int, Any, Any], Any]:
    def step(file: StudentFile | None, version: int, entry_id: Any, fields: Any) -> StudentFile:
        # Decisions never read a personal field: the entries are read without the student's key.
        logged = logged_event_from_entry(key, _decode(entry_id), _fields(fields), ErasedKeyring())
        return evolve(file or fold(campaign, ine, []), logged.event, logged.student_version or version)
    return step


def _rectorat_step(events: tuple | None, version: int, entry_id: Any, fields: Any) -> tuple:
    try:
        return (*(events or ()), event_from_fields(_fields(fields)))
    except UnknownEventType:  # as EventLog.read_rectorat: skipped
        return events or ()


# What one attempt reads, in one call (atomic, as a MULTI; one command to send and one reply to parse: a MULTI
# of its seven commands cost ~670 µs of the client's CPU against ~250 µs, issue 16): whether the event id is
# among the log's ids (ARGV[1], '' for no question), then for each stream (KEYS[2..]) its length, its first
# entry and its entries after ARGV[i] ('' for all of them).
READ_SCRIPT = """
local out = {0}
if ARGV[1] ~= '' then out[1] = redis.call('HEXISTS', KEYS[1], ARGV[1]) end
for i = 2, #KEYS do
  out[#out + 1] = redis.call('XLEN', KEYS[i])
  out[#out + 1] = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT', 1)
  out[#out + 1] = redis.call('XRANGE', KEYS[i], ARGV[i] == '' and '-' or '(' .. ARGV[i], '+')
end
return out
"""


def _as_entries(reply: list) -> list[tuple[Any, dict]]:
    """A script's XRANGE reply as redis-py's XRANGE gives it: (id, {field: value}) pairs."""
    return [(entry_id, dict(zip(flat[::2], flat[1::2]))) for entry_id, flat in reply]


class FoldCache:
    """What this process's decisions were last taken on, by stream version: each student's file and the rectorat
    stream's events (the campaign file), so a write folds only the entries it has not seen yet.

    An attempt reads, in one script (READ_SCRIPT, atomic): the event id among the log's ids (first attempt), and
    for the rectorat stream and the student's, their length, first entry and only the entries after the last one
    folded here. A cached state is moved forward by those entries only when they account for the whole length
    and the first entry is the cached one; else that stream is read and folded from the start. The append stays
    conditioned on the version read, so even a wrong cache could not store a decision taken on an old history:
    it would conflict and the command run again (another writer's entries are read as new ones). Bounded in
    number of streams, least recently used out first."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._streams: OrderedDict[str, _Folded] = OrderedDict()
        self._campaigns: dict[tuple[str, int, str], CampaignFile] = {}
        self.hits = 0  # student files moved forward from the cache
        self.misses = 0  # student histories folded from the start
        self._read_script: Any = None  # READ_SCRIPT, registered on the log's client at the first read

    def _script(self, log: EventLog) -> Any:
        if self._read_script is None:
            self._read_script = log.redis.register_script(READ_SCRIPT)
        return self._read_script

    async def _run_read(self, log: EventLog, ids_key: str, event_id: str | None,
                        streams: list[tuple[str, str]]) -> tuple[bool, list]:
        """READ_SCRIPT over `streams` ((key, the last id folded, '' for none)): whether `event_id` is among the
        ids at `ids_key` (False when not asked), then each stream's length, first entry and entries after."""
        replies = await self._script(log)(keys=[ids_key, *(key for key, _ in streams)],
                                          args=[event_id or "", *(after for _, after in streams)])
        prior_seen = bool(replies.pop(0))  # 0 when not asked
        return prior_seen, [_as_entries(reply) if isinstance(reply, list) else reply for reply in replies]

    async def _read_whole(self, log: EventLog, key: str) -> tuple[int, Any, list]:
        _, read = await self._run_read(log, key, None, [(key, "")])  # no id asked: KEYS[1] only routes the call
        return tuple(read)  # type: ignore[return-value]

    async def _fold(self, log: EventLog, key: str, cached: _Folded | None, read: tuple, step) -> tuple[_Folded, bool]:
        """The stream folded up to its end, and whether from the cached state (False: from the start)."""
        length, first, entries = read
        first_id = _decode(first[0][0]) if first else None
        if cached is not None and (first_id != cached.first_id or cached.version + len(entries) != int(length)):
            cached = None  # not the stream that was folded: from the start
            length, first, entries = await self._read_whole(log, key)
            first_id = _decode(first[0][0]) if first else None
        version, state, last_id = (cached.version, cached.state, cached.last_id) if cached else (0, None, "")
        for entry_id, fields in entries:
            version += 1
            state = step(state, version, entry_id, fields)
            last_id = _decode(entry_id)
        folded = _Folded(first_id or "", last_id, version, state)
        if first_id is not None:
            self._streams[key] = folded
            self._streams.move_to_end(key)
            while len(self._streams) > self.size:
                self._streams.popitem(last=False)
        return folded, cached is not None

    async def read(self, log: EventLog, campaign: str, ine: str | None, event_id: str | None = None) -> Read:
        """The campaign and the student's file (`ine`) as the log holds them now, with their versions."""
        rectorat = log.keys.rectorat
        student = log.keys.student(campaign, ine) if ine else None
        cached_rectorat = self._streams.get(rectorat)
        cached_student = self._streams.get(student) if student else None
        streams = [(rectorat, cached_rectorat), *([(student, cached_student)] if student else [])]
        prior_seen, replies = await self._run_read(log, log.keys.event_ids(campaign if ine else None), event_id,
                                                   [(key, cached.last_id if cached else "") for key, cached in streams])
        events, _ = await self._fold(log, rectorat, cached_rectorat, replies[0:3], _rectorat_step)
        at = (campaign, events.version, events.last_id)
        campaign_file = self._campaigns.get(at)
        if campaign_file is None:
            if len(self._campaigns) > 64:
                self._campaigns.clear()
            campaign_file = self._campaigns[at] = fold_campaign(campaign, list(events.state or ()))
        if not student:
            return Read(prior_seen, events.version, campaign_file, 0, None)
        step = _student_step(student, campaign, ine or "")
        folded, reused = await self._fold(log, student, cached_student, replies[3:6], step)
        if reused:
            self.hits += 1
        else:
            self.misses += 1
        file = folded.state if folded.state is not None else fold(campaign, ine or "", [])
        return Read(prior_seen, events.version, campaign_file, folded.version, file, self._streams.get(student))

    def appended(self, log: EventLog, read: Read, event: Event, entry_id: str) -> None:
        """Move the student's cached file forward by the event this process just appended at `read`'s version,
        as the next read would fold it (read without the key), sparing that read's parse. Only if the cache
        entry is still the one the decision read: the append being conditioned on that version, the stream is
        then exactly what was folded plus this entry."""
        key = log.keys.student(event.campaign, event.student_ine or "")
        if read.file is None or self._streams.get(key) is not read.folded:
            return
        version = read.version + 1
        state = evolve(read.file, _as_read_without_key(event, sealed=log.keystore is not None), version)
        first_id = read.folded.first_id if read.version and read.folded is not None else entry_id  # its first entry
        self._streams[key] = _Folded(first_id, entry_id, version, state)
        self._streams.move_to_end(key)
        while len(self._streams) > self.size:
            self._streams.popitem(last=False)


def _as_read_without_key(event: Event, sealed: bool) -> Event:
    """The event as `_student_step` reads its entry back: its personal fields ERASED when the entry seals them
    (a key store, a student's event with such fields), so no cached file holds what an erasure must remove."""
    if not sealed or not event.student_ine or not has_personal_fields(event.event_type):
        return event
    clear, personal = split_personal(event.event_type, event.payload.model_dump(mode="json"))
    if not personal:  # nothing sealed: the entry holds the payload as it is
        return event
    payload = PAYLOAD_TYPES[event.event_type].model_validate(
        merge_personal(event.event_type, clear, None), context={"reading_log": True}
    )
    return event.model_copy(update={"payload": payload})


_caches: weakref.WeakKeyDictionary[EventLog, FoldCache] = weakref.WeakKeyDictionary()


def fold_cache(log: EventLog) -> FoldCache:
    """The fold cache of one event log (one per process and log: each service's writers share theirs)."""
    cache = _caches.get(log)
    if cache is None:
        cache = _caches[log] = FoldCache()
    return cache


async def _original(log: EventLog, campaign: str, ine: str | None, positions: Positions) -> Outcome:
    key = log.keys.student(campaign, ine) if ine else log.keys.rectorat
    logged = await log.read_entry(key, positions.student)
    return Outcome(logged.event, positions, created=False)


async def execute(
    log: EventLog,
    *,
    service: str,
    campaign: str,
    ine: str | None,
    actor: Actor,
    event_id: UUID,
    request_fingerprint: str,
    decide: Decide | DecideWith,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    pause: Pause = backoff,
    related: RelatedOf | None = None,
) -> Outcome:
    """Decide on the student's history (and, with `related`, on the streams it names, `decide` then taking
    their events as a 4th argument) and append at the versions read, again on a conflict."""
    cache = fold_cache(log)
    # Each conflict on a related stream is another writer's success there: allow as many more attempts.
    for attempt in range(1, MAX_ATTEMPTS * (2 if related else 1) + 1):
        if attempt > 1:
            await pause(attempt - 1)
        now = clock()
        # One round trip: the event id among the log's ids (first attempt), the campaign and the student's file.
        # The rectorat's own command (a campaign, its calendar) is conditioned on the rectorat stream's length
        # read with the campaign it decides on; a student's command reads the campaign (its calendar) as it is
        # at the start of the attempt, not conditioned: a write racing a calendar change by an instant is
        # ordered as if decided just before it.
        read = await cache.read(log, campaign, ine, str(event_id) if attempt == 1 else None)
        if read.prior_seen:
            prior = await log.prior_append(str(event_id), campaign if ine else None)
            if prior is not None:
                if prior.fingerprint != request_fingerprint:
                    raise EventIdReused()
                return await _original(log, campaign, ine, prior.positions)
        campaign_file = read.campaign
        if ine is None:
            version = read.rectorat_version
            file = fold(campaign, "", [])
        else:
            version, file = read.version, read.file
        histories: dict[str, list[Event]] = {}
        more: dict[str, int] = {}
        if related is not None:
            wanted = related(file)
            for key in dict.fromkeys((*wanted.conditioned, *wanted.read)):
                histories[key] = [e.event for e in await log.read_stream(key, ErasedKeyring())]
            more = {key: len(histories[key]) for key in wanted.conditioned}
        try:
            payload = decide(file, campaign_file, now, histories) if related else decide(file, campaign_file, now)
        except Refusal as refusal:
            # The same request may have been stored a moment ago by a simultaneous copy of it:
            # that one answers for both (a retry is never refused by its own first success).
            prior = await log.prior_append(str(event_id), campaign if ine else None)
            if prior is None:
                if isinstance(refusal, PhaseClosed):
                    refusal.name_date(paris)  # the date in French, Paris time (SPEC §7)
                raise
            if prior.fingerprint != request_fingerprint:
                raise EventIdReused() from None
            return await _original(log, campaign, ine, prior.positions)
        event = Event(
            event_id=event_id, occurred_at=now, campaign=campaign, student_ine=ine, actor=actor, payload=payload
        )
        try:
            extra = {"more": more} if more else {}  # the three-stream call stays the one it was
            appended = await log.append(event, service, version, request_fingerprint, **extra)
        except StudentErased:
            # The student was erased (their key destroyed) after their history was read: the same
            # refusal as the rule's, and nothing is appended.
            require_not_erased(file.model_copy(update={"erased_version": version + 1}))
            raise
        if appended.status == "ok":
            stored = event.model_copy(update={"recorded_at": datetime.fromisoformat(appended.recorded_at)})
            if ine is not None:
                cache.appended(log, read, stored, appended.positions.student)
            return Outcome(stored, appended.positions, created=True)
        if appended.status == "duplicate":
            if appended.fingerprint != request_fingerprint:
                raise EventIdReused()
            return await _original(log, campaign, ine, appended.positions)
    raise TooMuchContention()


async def run(
    log: EventLog,
    *,
    service: str,
    actor: Actor,
    action: str,
    campaign: str,
    ine: str | None,
    event_id: UUID | None,
    request: dict[str, Any],
    decide: Decide | DecideWith,
    key: bytes | None = None,
    related: RelatedOf | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Outcome:
    """A service's command, as its handlers run it: what was asked (`request`, without its event id), the
    student, the campaign and who asked identify the request, so a retry is told from another request."""
    return await execute(
        log,
        service=service,
        campaign=campaign,
        ine=ine,
        actor=actor,
        event_id=event_id or uuid4(),
        request_fingerprint=fingerprint(
            action, {**request, "ine": ine, "campaign": campaign, "by": actor.user_id}, key
        ),
        decide=decide,
        related=related,
        **({"clock": clock} if clock is not None else {}),
    )
