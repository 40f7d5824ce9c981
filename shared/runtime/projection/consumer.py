"""The consumer loop that keeps a local view up to date with the log, and what it guarantees.

- **Exactly-once effect.** It reads the service streams with plain XREAD from
  the positions stored in the view's own database, and applies each page of
  entries in one SQL transaction that also stores the new positions. A crash,
  even a SIGKILL in the middle of a page, leaves all of the page or none of it:
  the view never loses nor double-counts an entry, and a process started later
  catches up on everything written while it was down
  (tests/reliability/test_crash_recovery.py). It follows the rectorat stream,
  and each campaign's service streams from their start once it sees the
  campaign opened.
- **Reading ahead.** While a full page commits (in a worker thread), the next
  page is read and parsed (`shared/runtime/projection/wire.py`) from the
  positions that commit stores; it is taken only if the consumer stands at
  those positions when its turn comes, else dropped and read again: reading
  is pure, and the positions still move only with the rows they go with.
- **Redis restarts.** There is no consumer group, so none for Redis to lose and
  no pending list to recover: after a restart the loop reconnects and reads on
  from the positions in its own database (tests/reliability/test_redis_restart.py).
- **Replicated first.** With replicas required (SPEC §9, PASSPRO_REDIS_MIN_REPLICAS), a page is applied
  only once its entries are on them (`confirm_read`, one round trip a page): a view never holds an entry
  the loss of the primary would take from the log; until then the page is read again later
  (tests/failover/test_view_replicated.py).
- **Poison entries.** An entry that cannot be read (bad JSON, a version with
  no upcaster) is copied at once to the dead-letter stream with its reason,
  stream, id and attempts (`shared/runtime/projection/dead_letters.py`), and the view goes
  on: reading is pure, a second try would say the same. When the view fails on
  a page, the page is applied again in one transaction with one savepoint per
  entry, so the others still count exactly once; while an entry fails, that
  transaction is rolled back and the page tried again after a pause (taken
  outside any transaction, so nothing stays locked), `max_attempts` times in
  all; an entry that fails the last time is dead-lettered. Database errors
  (OperationalError, InterfaceError) are never the entry's fault: the page is
  read again later, never dead-lettered. An unknown event type (a newer
  producer) is skipped.
- **One writer per view.** Before each read, and under a lock at each commit,
  it checks that the stored positions are still the ones it last read or
  wrote; if not (a rebuild swapped a projection in, or another process runs
  the same view) it reloads them and reads on from there.
- **Parked students.** A bonus must not be computed on half a history, so the
  entries of a student at or after the version of an open dead letter wait:
  they are recorded in the dead letters (reason `parked behind <stream> <entry>`)
  instead of applied, whichever stream delivers them, while positions keep
  moving for everyone else. An entry of a lower version still goes through. An
  entry of a later version that another stream delivered before the poison was
  read stays applied (the streams are read side by side, not merged by
  student). Letters are written to Redis before the positions move past their
  entries, so they survive restarts, a crash in between writes nothing twice,
  and a rebuild from the start parks the same entries. `passpro dlq retry`
  applies a student's open letters in version order through the view, in one
  transaction, once the cause is fixed, and frees the student.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from redis.asyncio import Redis
from redis.client import NEVER_DECODE
from redis.exceptions import RedisError
from sqlalchemy import Connection, Engine

from shared.contracts.events import CampaignOpened, UnknownEventType, UnreadableEntry
from shared.contracts.personal import Keyring
from shared.contracts.streams import LoggedEvent, StreamKeys, entry_id_key
from shared.runtime.projection.dead_letters import DeadLetters, student_of, version_of
from shared.runtime.keys.store import KeyStore
from shared.runtime.log.client import Replication, confirm_read
from shared.runtime.projection.lease import CHECK_S, STANDBY_POLL_S, Lease
from shared.runtime.projection.protocol import DATABASE_UNREACHABLE, View, ViewTransaction
from shared.runtime.projection.views import FileCache, load_positions
from shared.runtime.projection.wire import decoded_fields, read_raw_entry, sealed_student_raw

log = logging.getLogger(__name__)

START = "0-0"
RETRY_PAUSE_S = 0.05  # before each new attempt at a page the view failed on, times the attempts made
WAIT_RECHECK_S = 0.1  # a waiter's longest sleep between two checks when no page is committed meanwhile


@dataclass(eq=False)
class Entry:
    """One entry of a page, as read: where it is, and its fields as Redis sends them (bytes: the compiled
    schemas decode what they check, natively); decoded only for what needs text (letters, logs, parking)."""

    key: str
    entry_id: str
    raw: dict[bytes, bytes]
    read: bool = False  # opened and parsed (once: reading is pure)
    logged: LoggedEvent | None = None  # once read, if readable
    unreadable: str | None = None  # once read: why it cannot be
    unknown_type: str | None = None  # once read: its event type, if this code does not know it

    @cached_property
    def fields(self) -> dict[str, str]:
        """Its fields as text (the dead letters keep them; the reference reads them)."""
        return decoded_fields(self.raw)

    @cached_property
    def _history(self) -> tuple[str, int]:
        # the three fields student_of and version_of read, decoded alone: asked of every entry while a student is parked
        raw = self.raw
        fields = decoded_fields({name: raw[name] for name in _HISTORY_FIELDS if name in raw})
        return student_of(fields), version_of(fields) or 0

    @property
    def student(self) -> str:
        """"campaign:ine", or "" (a campaign event, or no student version: it parks nobody)."""
        return self._history[0]

    @property
    def version(self) -> int:
        """The student version it made (0 if none)."""
        return self._history[1]

    def parked_by(self, parked: dict[str, int]) -> bool:
        """True if its student has an open dead letter at or before its version: it waits behind it."""
        return bool(parked) and self.student in parked and self.version >= parked[self.student]


_HISTORY_FIELDS = (b"campaign", b"student_ine", b"student_version")


def _text(entry_id: bytes | str) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def stream_entries(key: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Entry]:
    """A stream's entries as XREAD or XRANGE give them, not decoded."""
    return [Entry(key, entry_id.decode(), raw) for entry_id, raw in entries]


async def page_keyring(keystore: KeyStore | None, entries: list[Entry]) -> Keyring | None:
    """The keys of the students whose sealed entries are in the page, in one query, for this page
    only: a key destroyed since (an erasure) is never used again."""
    if keystore is None:
        return None
    return await keystore.keyring_async(filter(None, (sealed_student_raw(e.raw) for e in entries)))


def parse_entries(entries: list[Entry], keyring: Keyring | None) -> None:
    """Open and parse each entry with its page's keys (`wire.py`), as `logged_event_from_entry` reads it."""
    with _no_cyclic_collection():
        for entry in entries:
            try:
                entry.logged = read_raw_entry(entry.key, entry.entry_id, entry.raw, keyring)
            except UnknownEventType as exc:
                entry.unknown_type = str(exc)
            except UnreadableEntry as exc:
                entry.unreadable = str(exc)
            entry.read = True


@contextlib.contextmanager
def _no_cyclic_collection():
    """The cyclic garbage collector paused while a page is parsed. The parse makes ~20 objects an entry and
    keeps them (the page's events), so the collector, run every 700 allocations, went through the page's
    live objects again and again: a quarter to a third of the parse's CPU (BENCHMARKS.md). What the parse
    drops is freed by reference counts; a cycle, if any, at the collector's next run, after the page (the
    pause is the process's, a commit thread's allocations included: one page long). Resumed only by whoever
    paused it, so a caller that keeps it off (or a second parse meanwhile) is left so."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


class StudentFreed(Exception):
    """A retry freed a student while a page was being planned: plan it again."""


class PositionsMoved(Exception):
    """The stored positions are not those this consumer last read or wrote: a rebuild swapped the
    projection in, or another process runs the same view. Reload them and read again from there."""


@dataclass
class ReadAhead:
    """The next page, read and parsed while the current one commits (a queue of one page): valid only if
    the consumer's positions are still those it was read from when it is taken."""

    after: dict[str, str]  # the positions it was read from
    task: asyncio.Task  # -> list[Entry], read and parsed

    def discard(self) -> None:
        self.task.cancel()
        # a read that failed meanwhile is nobody's concern once discarded
        self.task.add_done_callback(lambda t: t.cancelled() or t.exception())


@dataclass
class LogAsk:
    """One round trip of `reached` on its way: the first entry after each (stream, position) it asks."""

    made: int  # the consumer's count of asks once this one was made
    task: asyncio.Future  # -> list of entry id keys, None where the stream has nothing after the position


class Consumer:
    def __init__(
        self,
        redis: Redis,
        engine: Engine,
        keys: StreamKeys,
        view: View,
        *,
        keystore: KeyStore | None,
        page_size: int = 1000,
        block_ms: int = 500,
        max_attempts: int = 3,
        lease: Lease | None = None,
        replication: Replication | None = None,
    ) -> None:
        self.redis = redis
        self.engine = engine
        self.keys = keys
        self.view = view
        self.keystore = keystore
        self.page_size = page_size
        self.block_ms = block_ms
        self.max_attempts = max_attempts
        self.dead = DeadLetters(redis, keys)
        self.positions: dict[str, str] = {}
        self._stored: dict[str, str] = {}  # the positions as this consumer last read or wrote them
        self.applied = 0
        self._loaded = False
        # stream -> (from, until): entry id keys between which the stream was found empty (see `reached`)
        self._clear: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}
        # stream -> the id key of an entry found in it after the position then, not applied yet (see `reached`)
        self._unread: dict[str, tuple[int, int]] = {}
        self._asks_made = 0  # round trips `reached` sent to the log, counted (which waiter may share which)
        self._asking: dict[tuple[tuple[str, str], ...], LogAsk] = {}  # those on their way, by what they ask
        self._applied: asyncio.Event | None = None  # set at the next committed page, made by the first waiter
        self._ahead: ReadAhead | None = None  # the next page, read while the last one committed
        self.files = FileCache()  # the student files of the last pages committed
        self.read_ahead_used = 0  # pages taken from the read-ahead (tests, the bench)
        self.lease = lease  # replicas of a service: `run` applies pages only while it holds it (lease.py)
        self._lease_checked = 0.0
        self.replication = replication  # with replicas required, a page is applied once on them (SPEC §9)

    # --- positions ------------------------------------------------------------------

    def _load(self) -> None:
        with self.engine.connect() as conn:
            stored = load_positions(conn, self.view.positions)
        self._stored = stored
        self.positions = {self.keys.rectorat: START, **stored}
        self._unread.clear()
        self.files.clear()  # a swap may have brought other files in
        self._loaded = True

    def _positions_moved(self) -> bool:
        """Whether someone else moved the stored positions (checked before each read: a swap may
        come while there is nothing new to read, and the next commit would be too late)."""
        with self.engine.connect() as conn:
            return load_positions(conn, self.view.positions) != self._stored

    def _claim(self, conn: Connection) -> None:
        """Lock the stored positions and check they are still ours, so a page is never applied
        on top of positions someone else moved (it would skip or lose entries)."""
        if load_positions(conn, self.view.positions, for_update=True) != self._stored:
            raise PositionsMoved()

    def _follow(self, events: Iterable[LoggedEvent], into: dict[str, str]) -> None:
        for logged in events:
            if isinstance(logged.event.payload, CampaignOpened):
                for key in self.keys.campaign_streams(logged.event.campaign):
                    into.setdefault(key, START)

    def _commit(self, events: list[LoggedEvent], positions: dict[str, str]) -> None:
        with ViewTransaction(self.engine, self.view, self.files) as tx:
            self._claim(tx.conn)
            tx.apply(events)
            tx.save_positions(positions)
            tx.commit()
        self._stored = dict(positions)

    # --- one page -------------------------------------------------------------------

    async def read_page(self, block_ms: int | None, after: dict[str, str] | None = None) -> list[Entry]:
        """The entries after `after` (the consumer's positions by default), up to `page_size` per stream, as
        bytes whatever the client decodes (NEVER_DECODE: the parse decodes what it checks, natively)."""
        streams = self.positions if after is None else after
        args = ["COUNT", self.page_size, *(("BLOCK", block_ms) if block_ms is not None else ()), "STREAMS", *streams,
                *streams.values()]
        reply = await self.redis.execute_command("XREAD", *args, keys=list(streams), **{NEVER_DECODE: True})
        return [entry for key, entries in reply or [] for entry in stream_entries(key.decode(), entries)]

    async def _read_ahead(self, after: dict[str, str]) -> list[Entry]:
        page = await self.read_page(None, after)
        await self._read(page)
        return page

    def _start_read_ahead(self, after: dict[str, str]) -> None:
        self._drop_read_ahead()
        self._ahead = ReadAhead(dict(after), asyncio.ensure_future(self._read_ahead(dict(after))))

    def _drop_read_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.discard()
            self._ahead = None

    async def _next_page(self, block_ms: int | None) -> list[Entry]:
        """The page after the positions: the one read ahead if it was read from them, else read now."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            if ahead.after == self.positions:
                try:
                    page = await ahead.task
                except Exception as exc:  # noqa: BLE001 - an optimisation failed: the page is read again now
                    # e.g. a socket timeout while the commit's thread and a busy machine starved the loop;
                    # a failure that is not the read-ahead's shows again in the read below
                    log.info("view %s: the page read ahead failed (%r); reading it again", self.view.name, exc)
                    page = []
                if page:
                    self.read_ahead_used += 1
                    return page
            else:
                ahead.discard()
        return await self.read_page(block_ms)

    async def poll(self, block_ms: int | None = None) -> int:
        """Read one page (waiting up to `block_ms` for one), apply it and store the positions. While a full
        page commits, the next one is read and parsed (reading is pure); it is used only if the positions it
        was read from are still the consumer's when its turn comes (after a failed commit, a reload, or a
        rebuild's swap, it is dropped and the page read again)."""
        try:
            return await self._poll(block_ms)
        except BaseException:  # a read or a commit failed, or the loop is stopping: read again from the positions
            self._drop_read_ahead()
            raise

    async def _poll(self, block_ms: int | None) -> int:
        if not self._loaded or await asyncio.to_thread(self._positions_moved):
            self._drop_read_ahead()
            await asyncio.to_thread(self._load)
        page = await self._next_page(block_ms)
        if not page:
            # Nothing after the positions: an entry a waiter saw unread is gone (a failover lost it): ask again.
            self._unread.clear()
            return 0
        while True:
            try:
                await self._apply_page(page)
                return len(page)
            except StudentFreed:
                log.info("view %s: a retry freed a student while a page was planned; planning it again", self.view.name)
            except PositionsMoved:
                log.warning("view %s: its stored positions moved (a rebuild?); reading on from them", self.view.name)
                self._drop_read_ahead()
                await asyncio.to_thread(self._load)
                page = await self.read_page(None)
                if not page:
                    return 0

    async def _apply_page(self, page: list[Entry]) -> None:
        name = self.view.name
        # Independent asks side by side: on a small page, a read with min_position waits for their sum (issue 16).
        asks = [self.dead.known(name, [(e.key, e.entry_id) for e in page]), self.dead.parked_students(name),
                self._read(page)]  # reading is pure: an entry with a letter, read too, is dropped below
        if self.replication is not None and self.replication.replicas:  # never ahead of what a failover keeps
            asks.append(confirm_read(self.redis, self.replication, f"{self.keys.prefix}:reader:{name}",
                                     {e.key: e.entry_id for e in page}))  # NotReplicated: read again later
        known, parked, *_ = await asyncio.gather(*asks)
        unread = [e for e in page if (e.key, e.entry_id) not in known]
        readable, unreadable = await self._read_all(unread)
        dead, waiting, to_apply = [], [], []
        # An unreadable entry parks its student from its version on, in whatever order the streams deliver.
        for entry, reason in sorted(unreadable, key=lambda u: u[0].version):
            if entry.parked_by(parked):
                waiting.append(entry)
            else:
                dead.append((entry, reason, 1))  # read once: reading is pure
                if entry.student:
                    parked[entry.student] = entry.version
        for entry in readable:
            (waiting if entry.parked_by(parked) else to_apply).append(entry)
        await self._write_letters(dead, waiting)  # before the positions move past them

        positions = dict(self.positions) | {e.key: e.entry_id for e in page}
        self._follow([e.logged for e in to_apply], positions)
        if len(page) >= self.page_size:  # likely more behind it: read the next page while this one commits
            self._start_read_ahead(positions)
        try:
            await asyncio.to_thread(self._commit, [e.logged for e in to_apply], positions)
            applied = len(to_apply)
        except DATABASE_UNREACHABLE:
            self._drop_read_ahead()
            raise  # the database is down, not the events at fault: the page is read again later
        except Exception:  # noqa: BLE001 - isolate the entry at fault, then go on
            log.exception("view %s failed on a page of %d events; applying them one by one", name, len(to_apply))
            applied = await self._apply_isolating(to_apply, positions, parked)
        self.positions = positions
        self.applied += applied
        self.notify_applied()

    async def _read(self, entries: list[Entry]) -> None:
        """Open and parse the entries not read yet, with their page's keys. Each entry is read once:
        reading is pure, so an unreadable entry would fail the same way again."""
        todo = [e for e in entries if not e.read]
        if todo:
            parse_entries(todo, await page_keyring(self.keystore, todo))

    async def _read_all(self, entries: list[Entry]) -> tuple[list[Entry], list[tuple[Entry, str]]]:
        """The entries read (now, or ahead while the page before committed), and those that cannot be, with why."""
        await self._read(entries)
        readable, unreadable = [], []
        for entry in entries:
            if entry.unknown_type is not None:
                log.warning("view %s skips %s %s: unknown event type %s", self.view.name, entry.key, entry.entry_id,
                            entry.unknown_type)
            elif entry.unreadable is not None:
                unreadable.append((entry, entry.unreadable))
            else:
                readable.append(entry)
        return readable, unreadable

    async def _apply_isolating(self, entries: list[Entry], positions: dict[str, str], parked: dict[str, int]) -> int:
        """Apply a page the view failed on in one transaction, each entry in a savepoint of its own, in student
        order. While an entry fails, the transaction is rolled back and the page tried again after a pause,
        taken outside any transaction (a transaction left open would keep the positions, and on SQLite the
        whole database, locked): `max_attempts` times in all. The last time, an entry that still fails
        becomes a dead letter and its student's later entries wait; the letters are written before the
        transaction commits."""
        attempt = 1
        while True:
            tx = await asyncio.to_thread(ViewTransaction, self.engine, self.view, self.files)
            try:
                applied, failed, waiting = await asyncio.to_thread(self._apply_each, tx, entries, positions, parked, attempt)
                if not failed or attempt >= self.max_attempts:
                    await self._write_letters([(entry, reason, attempt) for entry, reason in failed], waiting)
                    await asyncio.to_thread(tx.commit)
                    self._stored = dict(positions)
                    return applied
            finally:
                await asyncio.to_thread(tx.close)  # rolls back whatever was not committed
            await self._pause(attempt)  # after the rollback: nothing stays locked meanwhile
            attempt += 1

    async def _pause(self, attempts: int) -> None:
        """Between two attempts at a page the view failed on (a transient failure may pass)."""
        await asyncio.sleep(RETRY_PAUSE_S * attempts)

    def _apply_each(
        self, tx: ViewTransaction, entries: list[Entry], positions: dict[str, str], parked: dict[str, int], attempt: int
    ) -> tuple[int, list[tuple[Entry, str]], list[Entry]]:
        """One attempt at the page: how many entries went through, those that failed (with why), and those
        that wait behind a dead letter. On the last attempt a failure parks its student from its version on."""
        last = attempt >= self.max_attempts
        self._claim(tx.conn)
        tx.save_positions(positions)  # first, so SQLite's savepoints nest in a transaction
        applied, failed, waiting = 0, [], []
        for entry in sorted(entries, key=lambda e: e.version):
            if entry.parked_by(parked):
                waiting.append(entry)
                continue
            try:
                tx.apply_alone(entry.logged)
                applied += 1
            except DATABASE_UNREACHABLE:
                raise
            except Exception as exc:  # noqa: BLE001 - tried again, and failing the last time a dead letter
                log.warning("view %s: %s %s (event %s) failed, attempt %d of %d: %r", self.view.name, entry.key,
                            entry.entry_id, entry.fields.get("event_id", ""), attempt, self.max_attempts, exc)
                failed.append((entry, repr(exc)))
                if last and entry.student:
                    parked[entry.student] = entry.version
        return applied, failed, waiting

    async def _write_letters(self, dead: list[tuple[Entry, str, int]], waiting: list[Entry]) -> None:
        name = self.view.name
        for entry, reason, attempts in dead:
            await self.dead.send(name, entry.key, entry.entry_id, entry.fields, reason, attempts)
        for entry in waiting:
            if await self.dead.park(name, entry.key, entry.entry_id, entry.fields) is not None:
                raise StudentFreed(entry.student)

    # --- running --------------------------------------------------------------------

    async def catch_up(self) -> int:
        """Apply everything already in the log; return how many entries were read."""
        total = 0
        while n := await self.poll(None):
            total += n
        return total

    async def _holding(self, stop: asyncio.Event) -> bool:
        """With a lease (service replicas, SPEC §9): whether this process holds it, checked every CHECK_S.
        A standby reloads the positions the holder stored, so its reads wait for the right ones, and tries
        again after STANDBY_POLL_S."""
        lease = self.lease
        if lease is None:
            return True
        now = time.monotonic()
        if now - self._lease_checked < CHECK_S:
            return True
        held = await asyncio.to_thread(lease.try_acquire)
        if held:
            if not self._lease_checked:
                log.info("view %s: this process holds the lease and applies the log", self.view.name)
                self._loaded = False  # read on from what the last holder stored
            self._lease_checked = now
            return True
        if self._lease_checked:
            log.warning("view %s: lease lost; standing by", self.view.name)
            self._lease_checked = 0.0
        self._drop_read_ahead()
        await asyncio.to_thread(self._load)
        self.notify_applied()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STANDBY_POLL_S)
        return False

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._run(stop)
        finally:
            if self.lease is not None:
                await asyncio.to_thread(self.lease.release)

    async def _run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if not await self._holding(stop):
                    continue
                await self.poll(self.block_ms)
            except (RedisError, OSError, *DATABASE_UNREACHABLE) as exc:
                log.warning("view %s: log or database unreachable (%s); retrying", self.view.name, exc)
                self._loaded = False
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive one bad page
                log.exception("view %s: unexpected error; retrying", self.view.name)
                self._loaded = False
                await asyncio.sleep(1)

    async def reached(self, position: str, since: int | None = None) -> bool:
        """True when no entry at or before `position` is left unread in any followed stream.

        A stream found with nothing after its position up to some id is remembered so (`_clear`): an
        entry appended later gets a later id, so streams the writes do not go to (the rectorat's, the
        other services') are asked once for many waiters, not at every check. The first entry found after
        a stream's position is remembered too (`_unread`) until the consumer reads past it: a waiter for
        a position at or after it is behind without asking. And the waiters a committed page wakes share
        one round trip (`_first_entries`), not one each (issue 16: they were a quarter of scoring's CPU
        under load). `since`: `_asks_made` when `position` was already in the log (see `wait_for`)."""
        target = entry_id_key(position)
        clear, unread = self._clear, self._unread
        behind = []
        for key, current in list(self.positions.items()):
            at = entry_id_key(current)
            if at >= target:
                continue
            known = clear.get(key)
            if known is not None and known[0] <= at and target <= known[1]:
                continue  # nothing in (known from, known until], which holds (at, target]
            first_unread = unread.get(key)
            if first_unread is not None and at < first_unread <= target:
                return False  # an entry in (at, target] not applied yet
            behind.append((key, current, at))
        if behind:  # one round trip for all the streams still behind, however many the view follows
            firsts = await self._first_entries(tuple((key, current) for key, current, _ in behind),
                                               self._asks_made if since is None else since)
            caught_up = True
            for (key, _, at), first in zip(behind, firsts, strict=True):
                if first is None or first > target:
                    known = clear.get(key)  # two clear spans that meet are one: kept for any waiter within
                    joined = known is not None and known[0] <= at <= known[1]
                    clear[key] = (known[0], max(known[1], target)) if joined else (at, target)
                else:  # compared with the position at each use: stale once the consumer read past it
                    unread[key] = first
                    caught_up = False
            if not caught_up:
                return False
        return self._loaded

    async def _first_entries(self, ask: tuple[tuple[str, str], ...], since: int) -> list[tuple[int, int] | None]:
        """The first entry after each (stream, position) of `ask`, in one round trip. One already on its way
        for the same is shared only if it was made after `since`: sent after the caller's position was in
        the log, its "nothing there" holds for the caller too (an earlier one could have missed it)."""
        pending = self._asking.get(ask)
        if pending is None or pending.made <= since:
            self._asks_made += 1
            pending = LogAsk(self._asks_made, asyncio.ensure_future(self._ask_log(ask)))
            self._asking[ask] = pending

            def done(task: asyncio.Future, pending: LogAsk = pending) -> None:
                if self._asking.get(ask) is pending:
                    del self._asking[ask]
                if not task.cancelled():
                    task.exception()  # retrieved: every waiter on it may have gone

            pending.task.add_done_callback(done)
        return await asyncio.shield(pending.task)  # a waiter that gives up leaves the others' ask alone

    async def _ask_log(self, ask: tuple[tuple[str, str], ...]) -> list[tuple[int, int] | None]:
        pipe = self.redis.pipeline(transaction=False)
        for key, current in ask:
            pipe.xrange(key, f"({current}", "+", count=1)
        found = await pipe.execute()
        return [entry_id_key(_text(entries[0][0])) if entries else None for entries in found]

    def notify_applied(self) -> None:
        """Wake every waiter (`poll` calls it after each committed page): each checks `reached` again then,
        instead of asking the log every few milliseconds."""
        applied = self._applied
        if applied is not None:
            self._applied = None  # the next waiter makes a fresh one: a set event wakes only those that saw it
            applied.set()

    def _next_page_applied(self) -> asyncio.Event:
        applied = self._applied
        if applied is None:
            applied = self._applied = asyncio.Event()
        return applied

    async def wait_for(self, position: str, timeout: float = 5.0) -> bool:
        """Wait until `position` is applied; False after `timeout`, also when the log stays unreachable.
        Checked again after each committed page, and at least every WAIT_RECHECK_S (positions also move
        when they are reloaded, and a consumer run elsewhere notifies no one here)."""
        deadline = time.monotonic() + timeout
        since = self._asks_made  # `position` is in the log now: any ask made from here on may answer for it
        while True:
            applied = self._next_page_applied()  # taken before the check, so a commit during it is not missed
            try:
                if await self.reached(position, since):
                    return True
            except (RedisError, OSError) as exc:  # the log restarting: the loop reconnects, so may we
                log.info("view %s: waiting for %s, log unreachable: %s", self.view.name, position, exc)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(applied.wait(), min(left, WAIT_RECHECK_S))
            except TimeoutError:
                pass
