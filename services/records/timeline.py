"""A student's history read from the log (the I/O); the report itself is `audit.student_report` (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from services.records.audit import AsOf, Cut, InvalidAsOf, parse_as_of, read_logged, student_report
from services.records.checkpoints import entry_fields, stream_pages
from shared.contracts.events import Event
from shared.contracts.personal import ErasedKeyring, Keyring
from shared.contracts.streams import LoggedEvent, StreamKeys

NO_KEYS = ErasedKeyring()  # the campaign events need no personal field


async def _entries(redis: Redis, key: str) -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []
    async for page in stream_pages(redis, key):
        found += page
    return found


async def _rectorat_events(redis: Redis, keys: StreamKeys) -> list[Event]:
    events = []
    for entry_id, fields in await _entries(redis, keys.rectorat):
        logged = read_logged(keys.rectorat, entry_id, fields, NO_KEYS)
        if isinstance(logged, LoggedEvent):
            events.append(logged.event)
    return events


async def _recorded_at(redis: Redis, stream: str, entry_id: str) -> datetime | None:
    found = await redis.xrange(stream, entry_id, entry_id)
    if not found:
        return None
    value = entry_fields(found[0][1]).get("recorded_at")
    return datetime.fromisoformat(value) if value else None


async def resolve_cut(
    redis: Redis, keys: StreamKeys, campaign: str, as_of: AsOf | None, history: list[LoggedEvent]
) -> Cut:
    """A time stays a time; a position of the student's stream cuts there; a position of another stream
    of the campaign (a service stream, the rectorat) becomes that entry's recording time."""
    if as_of is None:
        return Cut()
    if as_of.moment is not None:
        return Cut(until=as_of.moment)
    own = next((h for h in history if h.entry_id == as_of.position), None)
    if own is not None:
        return Cut(until=own.event.recorded_at, student_position=as_of.position)
    for stream in [*keys.campaign_streams(campaign), keys.rectorat]:
        moment = await _recorded_at(redis, stream, as_of.position)
        if moment is not None:
            return Cut(until=moment)
    raise InvalidAsOf(f"as_of : la position {as_of.position} n'est pas une entrée du journal de la campagne {campaign}.")


async def student_audit(
    redis: Redis,
    keys: StreamKeys,
    campaign: str,
    ine: str,
    as_of: str | None,
    establishments: Mapping[str, str],
    keyring: Keyring,
    show_time: Callable[[datetime], str] = datetime.isoformat,
) -> dict[str, Any] | None:
    """The student's timeline and bonus as of `as_of` (None: now); None if the log has no such student.
    `keyring` opens the student's personal fields (ErasedKeyring(): shown as erased)."""
    wanted = parse_as_of(as_of)
    key = keys.student(campaign, ine)
    history: list[LoggedEvent] = []
    unreadable: list[dict[str, str]] = []
    for entry_id, fields in await _entries(redis, key):
        logged = read_logged(key, entry_id, fields, keyring)
        if isinstance(logged, LoggedEvent):
            history.append(logged)
        else:
            reason = logged or f"type d'événement inconnu : {fields.get('event_type')}"
            unreadable.append({"position": entry_id, "reason": reason})
    if not history and not unreadable:
        return None
    cut = await resolve_cut(redis, keys, campaign, wanted, history)
    report = student_report(
        ine=ine,
        campaign=campaign,
        as_of=wanted,
        cut=cut,
        history=history,
        rectorat=await _rectorat_events(redis, keys),
        establishments=establishments,
        show_time=show_time,
    )
    return {**report, "unreadable": unreadable}
