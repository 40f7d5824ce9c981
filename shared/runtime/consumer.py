"""The consumer loop that keeps a local view up to date with the log.

It reads the service streams from the positions stored in the view's own
database (never from memory or a consumer group), applies each page of entries
in one SQL transaction that also stores the new positions, and so recovers
from any crash without loss or double counting. It follows the rectorat
stream, and each campaign's service streams from the moment it sees the
campaign opened. An entry that cannot be read or applied goes to the
dead-letter stream with its reason, and the view goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import InterfaceError, OperationalError

from shared.contracts.events import CampaignOpened, UnknownEventType, UnreadableEntry
from shared.contracts.streams import LoggedEvent, StreamKeys, entry_id_key, logged_event_from_entry
from shared.runtime.views import load_positions, save_positions

log = logging.getLogger(__name__)

START = "0-0"
# Errors that say the database cannot be reached: never the event's fault, never a dead letter.
UNAVAILABLE = (OperationalError, InterfaceError)

# XADD to the dead letters only if this (view, stream, entry) was not sent there before.
DEAD_LETTER_ONCE = """
if redis.call('HSETNX', KEYS[2], ARGV[1], '1') == 1 then
  redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
end
return 0
"""


class View(Protocol):
    name: str
    positions: Table

    def apply(self, conn: Connection, events: list[LoggedEvent]) -> None:
        """Apply a page of events inside the caller's transaction."""


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Consumer:
    def __init__(
        self,
        redis: Redis,
        engine: Engine,
        keys: StreamKeys,
        view: View,
        *,
        page_size: int = 1000,
        block_ms: int = 500,
        max_attempts: int = 3,
    ) -> None:
        self.redis = redis
        self.engine = engine
        self.keys = keys
        self.view = view
        self.page_size = page_size
        self.block_ms = block_ms
        self.max_attempts = max_attempts
        self.positions: dict[str, str] = {}
        self.applied = 0
        self._loaded = False

    # --- positions ------------------------------------------------------------------

    def _load(self) -> None:
        with self.engine.connect() as conn:
            stored = load_positions(conn, self.view.positions)
        self.positions = {self.keys.rectorat: START, **stored}
        self._loaded = True

    def _follow(self, events: Iterable[LoggedEvent], into: dict[str, str]) -> None:
        for logged in events:
            if isinstance(logged.event.payload, CampaignOpened):
                for key in self.keys.campaign_streams(logged.event.campaign):
                    into.setdefault(key, START)

    # --- one page -------------------------------------------------------------------

    async def read_page(self, block_ms: int | None) -> list[tuple[str, str, dict[str, str]]]:
        reply = await self.redis.xread(self.positions, count=self.page_size, block=block_ms)
        page = []
        for key, entries in reply or []:
            for entry_id, fields in entries:
                page.append((_decode(key), _decode(entry_id), {_decode(k): _decode(v) for k, v in fields.items()}))
        return page

    async def poll(self, block_ms: int | None = None) -> int:
        """Read one page (waiting up to `block_ms` for one), apply it and store the positions."""
        if not self._loaded:
            await asyncio.to_thread(self._load)
        page = await self.read_page(block_ms)
        if not page:
            return 0
        events: list[LoggedEvent] = []
        unreadable: list[tuple[str, str, dict[str, str], str]] = []
        for key, entry_id, fields in page:
            try:
                events.append(logged_event_from_entry(key, entry_id, fields))
            except UnknownEventType as exc:
                log.warning("view %s skips %s %s: unknown event type %s", self.view.name, key, entry_id, exc)
            except UnreadableEntry as exc:
                unreadable.append((key, entry_id, fields, str(exc)))
        new_positions = dict(self.positions)
        for key, entry_id, _ in page:
            new_positions[key] = entry_id
        self._follow(events, new_positions)
        for key, entry_id, fields, reason in unreadable:
            await self.dead_letter(key, entry_id, fields, reason, attempts=1)
        try:
            await asyncio.to_thread(self._commit, events, new_positions)
        except UNAVAILABLE:
            raise  # the database is down, not the events at fault: retry the page later
        except Exception:  # noqa: BLE001 - isolate the entry at fault, then go on
            log.exception("view %s failed on a page of %d events; applying them one by one", self.view.name, len(events))
            await self._apply_one_by_one(events, new_positions)
        self.positions = new_positions
        self.applied += len(events)
        return len(page)

    def _commit(self, events: list[LoggedEvent], positions: dict[str, str]) -> None:
        with self.engine.begin() as conn:
            self.view.apply(conn, events)
            save_positions(conn, self.view.positions, positions)

    async def _apply_one_by_one(self, events: list[LoggedEvent], final: dict[str, str]) -> None:
        positions = dict(self.positions)
        for logged in events:
            positions[logged.stream] = logged.entry_id
            self._follow([logged], positions)
            for attempt in range(1, self.max_attempts + 1):
                try:
                    await asyncio.to_thread(self._commit, [logged], positions)
                    break
                except UNAVAILABLE:
                    raise
                except Exception as exc:  # noqa: BLE001
                    log.warning(
                        "view %s: event %s (%s) failed, attempt %d: %s",
                        self.view.name, logged.event.event_id, logged.entry_id, attempt, exc,
                    )
                    if attempt == self.max_attempts:
                        fields = {"event_id": str(logged.event.event_id), "event_type": logged.event.event_type}
                        await self.dead_letter(logged.stream, logged.entry_id, fields, repr(exc), attempt)
                        await asyncio.to_thread(self._commit, [], positions)
        await asyncio.to_thread(self._commit, [], final)

    async def dead_letter(self, stream: str, entry_id: str, fields: dict[str, str], reason: str, attempts: int) -> None:
        """Copy an entry to the dead-letter stream, once per view and entry however often it is retried."""
        log.error("view %s sends %s %s to the dead letters: %s", self.view.name, stream, entry_id, reason)
        letter = {
            "view": self.view.name,
            "stream": stream,
            "entry_id": entry_id,
            "event_id": fields.get("event_id", ""),
            "event_type": fields.get("event_type", ""),
            "reason": reason[:2000],
            "attempts": str(attempts),
            "fields": json.dumps(fields)[:60000],
        }
        args = [f"{self.view.name}|{stream}|{entry_id}"]
        for name, value in letter.items():
            args += [name, value]
        await self.redis.eval(
            DEAD_LETTER_ONCE, 2, self.keys.dead_letters, self.keys.dead_letters + ":index", *args
        )

    # --- running --------------------------------------------------------------------

    async def catch_up(self) -> int:
        """Apply everything already in the log; return how many entries were read."""
        total = 0
        while n := await self.poll(None):
            total += n
        return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll(self.block_ms)
            except (RedisError, OSError, *UNAVAILABLE) as exc:
                log.warning("view %s: log or database unreachable (%s); retrying", self.view.name, exc)
                self._loaded = False
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive one bad page
                log.exception("view %s: unexpected error; retrying", self.view.name)
                self._loaded = False
                await asyncio.sleep(1)

    async def reached(self, position: str) -> bool:
        """True when no entry at or before `position` is left unread in any followed stream."""
        target = entry_id_key(position)
        for key, current in list(self.positions.items()):
            if entry_id_key(current) >= target:
                continue
            if await self.redis.xrange(key, f"({current}", position, count=1):
                return False
        return self._loaded

    async def wait_for(self, position: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not await self.reached(position):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True
