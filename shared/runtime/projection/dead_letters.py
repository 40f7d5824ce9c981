"""Dead letters: entries a view could not read or apply, the entries parked behind them, and their retry.

Everything lives in Redis beside the log, under the académie's hash tag, so it
survives a restart of the view's process and is shared by its consumer, a
rebuild of the view and `passpro dlq`:

- `…:dead-letters` (stream): the letters, one per (view, entry) while it is open, with its reason,
  stream, entry id, attempts, student and a copy of the entry's fields;
- `…:dead-letters:index` (hash) `view|stream|entry` -> its latest letter: an
  entry whose letter is open is never applied by the consumer, only by a retry;
- `…:dead-letters:resolved` (hash) letter id -> when a retry applied it;
- `…:dead-letters:open:<view>:<campaign>:<ine>` (sorted set): the student's
  open letters, scored by student version;
- `…:dead-letters:parked:<view>` (hash) student -> the lowest version among
  them: every entry of that student at this version or later is parked.

Parking by student version, not by reading order, makes it the same on every
replay (a rebuild parks what the live view parked), and lets an entry that
precedes the poison in the student's history through even when another stream
delivers it later.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from sqlalchemy import Engine

from shared.contracts.events import UnknownEventType, UnreadableEntry
from shared.contracts.streams import LoggedEvent, StreamKeys, logged_event_from_entry, sealed_student
from shared.runtime.projection.protocol import DATABASE_UNREACHABLE, View, ViewTransaction

if TYPE_CHECKING:
    from shared.runtime.keys.store import KeyStore

log = logging.getLogger(__name__)

MAX_RETRY_ROUNDS = 10  # a retry also takes the entries the consumer parks while it runs

# KEYS: letters, index, resolved, parked, the student's open set.
# ARGV: index field, student, student version, mode, then the letter's field/value pairs.
# "dead" writes the letter and parks the student from its version on; "parked" writes it only if the
# student is still parked at or before this version (a retry may have just freed them), with the
# entry it waits behind as its reason. An entry with an open letter is never written twice.
LETTER_SCRIPT = """
local known = redis.call('HGET', KEYS[2], ARGV[1])
if known and redis.call('HEXISTS', KEYS[3], known) == 0 then return {'known', known} end
local version = tonumber(ARGV[3])
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
if ARGV[4] == 'parked' then
  local first = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  if ARGV[2] == '' or not first[1] or version < tonumber(first[2]) then
    if ARGV[2] ~= '' then  -- the caller's view of the student was stale: make the hash say what the set says
      if first[1] then redis.call('HSET', KEYS[4], ARGV[2], first[2]) else redis.call('HDEL', KEYS[4], ARGV[2]) end
    end
    return {'free', first[2] or ''}
  end
  local root = {stream = '', entry_id = first[1]}  -- ids are per stream: name both
  local letter = redis.call('XRANGE', KEYS[1], first[1], first[1])[1]
  if letter then
    for i = 1, #letter[2], 2 do root[letter[2][i]] = letter[2][i + 1] end
  end
  fields[#fields + 1] = 'reason'
  fields[#fields + 1] = 'parked behind ' .. root.stream .. ' ' .. root.entry_id
end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
redis.call('HSET', KEYS[2], ARGV[1], id)
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[5], version, id)
  redis.call('HSET', KEYS[4], ARGV[2], redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')[2])
end
return {'letter', id}
"""

# KEYS: resolved, parked, the student's open set. ARGV: resolved_at, student, letter ids.
# The student stays parked from their lowest open letter on, or is freed when none is left.
RESOLVE_SCRIPT = """
for i = 3, #ARGV do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[1]) == 1 and ARGV[2] ~= '' then
    redis.call('ZREM', KEYS[3], ARGV[i])
  end
end
if ARGV[2] ~= '' then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if first[1] then redis.call('HSET', KEYS[2], ARGV[2], first[2]) else redis.call('HDEL', KEYS[2], ARGV[2]) end
end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _fields_copy(text: str | None) -> dict[str, str]:
    try:
        return json.loads(text or "{}")
    except ValueError:  # cut at 60,000 characters: the log still holds the entry itself
        return {}


def version_of(fields: dict[str, str]) -> int | None:
    """The student version the entry made, as the append script wrote it."""
    try:
        return int(fields["student_version"])
    except (KeyError, ValueError):
        return None


def student_of(fields: dict[str, str]) -> str:
    """`campaign:ine` of the student whose history the entry is part of, read from its plain fields (so even
    an unreadable payload has one); "" for a campaign event, or an entry the append script did not write
    (no student version: the views ignore it, so it parks nobody)."""
    ine = fields.get("student_ine") or ""
    return f"{fields.get('campaign', '')}:{ine}" if ine and version_of(fields) is not None else ""


@dataclass(frozen=True)
class DeadLetter:
    id: str  # the letter's id in the dead-letter stream (what `passpro dlq retry ID` takes)
    view: str
    stream: str
    entry_id: str
    event_id: str
    event_type: str
    student: str
    student_version: int
    reason: str
    attempts: int
    fields: dict[str, str] = field(repr=False)
    resolved_at: str | None = None

    @property
    def failed_at(self) -> str:
        return datetime.fromtimestamp(int(self.id.split("-")[0]) / 1000, UTC).isoformat(timespec="seconds")

    @property
    def parked(self) -> bool:
        return self.reason.startswith("parked behind ")

    def as_dict(self) -> dict:
        return {
            "id": self.id, "view": self.view, "stream": self.stream, "entry_id": self.entry_id,
            "event_id": self.event_id, "event_type": self.event_type, "student": self.student,
            "student_version": self.student_version, "reason": self.reason, "attempts": self.attempts,
            "failed_at": self.failed_at, "resolved_at": self.resolved_at,
        }


class DeadLetters:
    """The dead letters of one académie, as the consumer writes them and `passpro dlq` reads them."""

    def __init__(self, redis: Redis, keys: StreamKeys) -> None:
        self.redis = redis
        self.stream = keys.dead_letters
        self.index = f"{keys.dead_letters}:index"
        self.resolved = f"{keys.dead_letters}:resolved"

    def parked_key(self, view: str) -> str:
        return f"{self.stream}:parked:{view}"

    def open_key(self, view: str, student: str) -> str:
        return f"{self.stream}:open:{view}:{student or '-'}"

    # --- what the consumer asks ---------------------------------------------------------

    async def known(self, view: str, entries: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """The entries among `entries` with an open letter of this view (dead or parked): not to be applied."""
        if not entries:
            return set()
        letters = await self.redis.hmget(self.index, [f"{view}|{s}|{e}" for s, e in entries])
        found = {entry: _text(letter) for entry, letter in zip(entries, letters, strict=True) if letter is not None}
        if not found:
            return set()
        resolved = await self.redis.hmget(self.resolved, list(found.values()))
        return {entry for entry, done in zip(found, resolved, strict=True) if done is None}

    async def parked_students(self, view: str) -> dict[str, int]:
        """Each parked student, with the student version from which their entries are parked."""
        return {_text(s): int(float(v)) for s, v in (await self.redis.hgetall(self.parked_key(view))).items()}

    async def send(self, view: str, stream: str, entry_id: str, fields: dict[str, str], reason: str, attempts: int) -> None:
        """Make the entry a dead letter and park its student from it on; once per view and open letter."""
        log.error("view %s sends %s %s (event %s) to the dead letters: %s",
                  view, stream, entry_id, fields.get("event_id", ""), reason)
        await self._letter("dead", view, stream, entry_id, fields, {"reason": reason[:2000], "attempts": str(attempts)})

    async def park(self, view: str, stream: str, entry_id: str, fields: dict[str, str]) -> int | None:
        """Record an entry of a parked student instead of applying it, and return None; or, if the student
        is no longer parked at this entry's version (a retry freed them), the version they are now parked
        from (0 if none) and record nothing."""
        status, value = await self._letter("parked", view, stream, entry_id, fields, {"attempts": "0"})
        if status == "letter":
            log.warning("view %s parks %s %s (event %s) behind the student's dead letter",
                        view, stream, entry_id, fields.get("event_id", ""))
        if status == "free":
            return int(float(value)) if value else 0
        return None

    async def _letter(self, mode: str, view: str, stream: str, entry_id: str, fields: dict[str, str],
                      extra: dict[str, str]) -> tuple[str, str]:
        student, version = student_of(fields), version_of(fields) or 0
        letter = {
            "view": view, "stream": stream, "entry_id": entry_id,
            "event_id": fields.get("event_id", ""), "event_type": fields.get("event_type", ""),
            "student": student, "student_version": str(version), **extra, "fields": json.dumps(fields)[:60000],
        }
        args = [f"{view}|{stream}|{entry_id}", student, str(version), mode]
        for name, value in letter.items():
            args += [name, value]
        keys = [self.stream, self.index, self.resolved, self.parked_key(view), self.open_key(view, student)]
        status, value = await self.redis.eval(LETTER_SCRIPT, len(keys), *keys, *args)
        return _text(status), _text(value)

    # --- what `passpro dlq` asks --------------------------------------------------------

    async def letters(self, *, include_resolved: bool = False) -> list[DeadLetter]:
        resolved = {_text(k): _text(v) for k, v in (await self.redis.hgetall(self.resolved)).items()}
        found = []
        for letter_id, raw in await self.redis.xrange(self.stream):
            f = {_text(k): _text(v) for k, v in raw.items()}
            letter = DeadLetter(
                id=_text(letter_id), view=f.get("view", ""), stream=f.get("stream", ""),
                entry_id=f.get("entry_id", ""), event_id=f.get("event_id", ""), event_type=f.get("event_type", ""),
                student=f.get("student", ""), student_version=int(f.get("student_version") or 0),
                reason=f.get("reason", ""), attempts=int(f.get("attempts") or 0),
                fields=_fields_copy(f.get("fields")), resolved_at=resolved.get(_text(letter_id)),
            )
            if include_resolved or letter.resolved_at is None:
                found.append(letter)
        return found

    async def resolve(self, view: str, student: str, letters: Iterable[DeadLetter]) -> None:
        ids = [letter.id for letter in letters]
        if not ids:
            return
        now = datetime.now(UTC).isoformat(timespec="seconds")
        keys = [self.resolved, self.parked_key(view), self.open_key(view, student)]
        await self.redis.eval(RESOLVE_SCRIPT, len(keys), *keys, now, student, *ids)


# --- retry ----------------------------------------------------------------------------------


@dataclass
class RetryOutcome:
    applied: list[DeadLetter] = field(default_factory=list)
    still_failing: list[DeadLetter] = field(default_factory=list)
    reason: str | None = None  # why the first of `still_failing` failed again


def retry_groups(letters: list[DeadLetter], letter_id: str | None = None) -> list[tuple[str, str]]:
    """The (view, student) groups to retry: every open one, or the one of `letter_id`."""
    if letter_id is not None:
        chosen = [letter for letter in letters if letter.id == letter_id]
        if not chosen:
            raise LookupError(letter_id)
        return [(chosen[0].view, chosen[0].student or chosen[0].id)]
    groups: dict[tuple[str, str], None] = {}
    for letter in letters:
        groups[(letter.view, letter.student or letter.id)] = None
    return list(groups)


async def _entry(redis: Redis, letter: DeadLetter, keystore: KeyStore | None) -> LoggedEvent | None:
    """The entry as the log holds it now (the letter's copy if the log lost it); None for an unknown type."""
    found = await redis.xrange(letter.stream, letter.entry_id, letter.entry_id)
    fields = {_text(k): _text(v) for k, v in found[0][1].items()} if found else letter.fields
    student = sealed_student(fields)
    keyring = await keystore.keyring_async([student] if student else []) if keystore else None
    try:
        return logged_event_from_entry(letter.stream, letter.entry_id, fields, keyring)
    except UnknownEventType:
        log.warning("retry of %s: unknown event type %s, resolved without applying", letter.id, letter.event_type)
        return None


def _apply_in_order(engine: Engine, view: View, events: list[LoggedEvent | None]) -> tuple[int, str | None]:
    """Apply `events` in order in one transaction (None: nothing to apply, counted as applied); if the view
    fails on one, roll back and apply only those before it. Returns how many were applied, and why the
    next one failed. A database error is raised: it is nobody's fault and says nothing of the entries."""
    failed_at, reason = None, None
    # The consumer's own transaction (an erasure is scrubbed alike); leaving it rolls back a failed attempt.
    with ViewTransaction(engine, view) as tx:
        for index, logged in enumerate(events):
            if logged is None:
                continue
            try:
                tx.apply([logged])
            except DATABASE_UNREACHABLE:
                raise
            except Exception as exc:  # noqa: BLE001 - the entry still fails: it stays, what precedes it is applied
                log.exception("view %s: a retried entry still fails", view.name)
                failed_at, reason = index, repr(exc)
                break
        if failed_at is None:
            tx.commit()
            return len(events), None
    if not failed_at:
        return 0, reason
    applied, again = _apply_in_order(engine, view, events[:failed_at])
    return applied, again or reason


async def retry(
    dead: DeadLetters, redis: Redis, engine: Engine, view: View, student_or_letter: str, keystore: KeyStore | None
) -> RetryOutcome:
    """Apply a student's open letters (or one letter with no student) through the view's own code, in
    student version order, in one transaction with the view's rows, then mark them resolved and free
    the student; an entry still failing stays open with every later one. Entries the consumer parks
    meanwhile are taken in the next round.

    Resolution is recorded in Redis after the SQL commit, so a crash in between, or a consumer that
    crashed after writing a letter and before committing its page and restarts after the retry,
    applies an entry twice: harmless for the views, whose fold keeps the highest version (applying
    an event twice changes nothing), but not exactly-once for a view that counts."""
    outcome = RetryOutcome()
    for _ in range(MAX_RETRY_ROUNDS):
        group = [
            letter for letter in await dead.letters()
            if letter.view == view.name and (letter.student or letter.id) == student_or_letter
        ]
        if not group:
            break
        group.sort(key=lambda letter: (letter.student_version, letter.id))
        events: list[LoggedEvent | None] = []
        reason = None
        for letter in group:
            try:
                events.append(await _entry(redis, letter, keystore))
            except UnreadableEntry as exc:
                reason = str(exc)
                break
        applied, failure = await asyncio.to_thread(_apply_in_order, engine, view, events)
        reason = failure or reason
        done, left = group[:applied], group[applied:]
        student = group[0].student
        await dead.resolve(view.name, student, done)
        outcome.applied += done
        if left:
            outcome.still_failing = left
            outcome.reason = reason
            break
    return outcome
