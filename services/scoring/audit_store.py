"""The audit's reads and records: a student's history from the log, the Affelnet exports, and `verify`.

The decisions live in `audit.py` (pure); this module only reads Redis and
scoring's database and feeds them to it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from redis.asyncio import Redis
from sqlalchemy import Connection, Engine, select

from services.scoring import queries
from services.scoring.audit import (
    START,
    AsOf,
    Chain,
    CheckpointWatch,
    CrossCheck,
    Cut,
    Difference,
    InvalidAsOf,
    Replay,
    compare_projection,
    entry_hash,
    is_within,
    parse_as_of,
    read_logged,
    student_report,
    where,
)
from services.scoring.checkpoints import (
    entry_fields,
    load_checkpoints,
    opened_campaigns,
    stream_pages,
    streams_of,
    text,
)
from services.scoring.retention import purges
from services.scoring.views import BonusProjection, exports, student_totals, voeux
from services.scoring.views import positions as positions_table
from shared.contracts.events import CampaignOpened, Event
from shared.contracts.personal import ErasedKeyring, Keyring
from shared.contracts.streams import LoggedEvent, StreamKeys, entry_id_key
from shared.runtime.projection.dead_letters import DeadLetters
from shared.runtime.projection.views import load_positions

T = TypeVar("T")
STUDENT_BATCH = 500  # student streams read per pipeline
SNAPSHOT_ATTEMPTS = 50


class ProjectionMoving(RuntimeError):
    """The projection kept changing while it was read: try again when it is quieter."""


def consistent(conn: Connection, read: Callable[[Connection], T]) -> tuple[T, dict[str, str]]:
    """`read` and the positions it reflects. The positions are read before and after: the consumer moves
    them in the same transaction as the rows, so equal positions mean no commit happened in between
    (SQLite and PostgreSQL's READ COMMITTED give each statement its own snapshot)."""
    for _ in range(SNAPSHOT_ATTEMPTS):
        before = load_positions(conn, positions_table)
        result = read(conn)
        after = load_positions(conn, positions_table)
        if before == after:
            return result, after
        conn.rollback()
    raise ProjectionMoving("the scoring projection kept moving while it was read")


NO_KEYS = ErasedKeyring()  # the verification and the campaign events need no personal field


# --- a student's history ------------------------------------------------------------------


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


# --- the Affelnet exports -----------------------------------------------------------------


@dataclass(frozen=True)
class AffelnetExport:
    campaign: str
    content: str
    rows: int
    sha256: str
    positions: dict[str, str]


def export_affelnet(engine: Engine, campaign: str, user_id: str) -> AffelnetExport:
    """The Affelnet file, recorded (who, when, the positions it covers, its SHA-256) in the same transaction."""
    with engine.connect() as conn:
        (content, rows), positions = consistent(conn, lambda c: queries.affelnet_csv(c, campaign))
        digest = queries.record_export(conn, campaign, user_id, positions, content, rows)
        conn.commit()
    return AffelnetExport(campaign, content, rows, digest, positions)


def list_exports(engine: Engine, campaign: str | None = None) -> list[dict[str, Any]]:
    query = select(exports).order_by(exports.c.id)
    if campaign:
        query = query.where(exports.c.campaign == campaign)
    with engine.connect() as conn:
        return [
            {
                "id": row.id,
                "campaign": row.campaign,
                "exported_at": row.exported_at,
                "user_id": row.user_id,
                "positions": json.loads(row.positions),
                "rows": row.rows,
                "sha256": row.sha256,
            }
            for row in conn.execute(query)
        ]


# --- verify -------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    campaigns: list[str]
    entries: dict[str, int] = field(default_factory=dict)  # by stream key
    student_streams: int = 0
    checkpoints_checked: int = 0
    positions: dict[str, str] = field(default_factory=dict)  # what the projection was compared at
    not_yet_applied: dict[str, int] = field(default_factory=dict)  # entries past the projection's positions
    rows_compared: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    purged: dict[str, dict] = field(default_factory=dict)  # campaign -> its recorded purge: its streams are empty by design

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "campaigns": self.campaigns,
            "entries": self.entries,
            "student_streams": self.student_streams,
            "checkpoints_checked": self.checkpoints_checked,
            "positions": self.positions,
            "not_yet_applied": self.not_yet_applied,
            "rows_compared": self.rows_compared,
            "unreadable": self.unreadable,
            "differences": [d.as_dict() for d in self.differences],
            "purged": self.purged,
        }


def read_projection(engine: Engine, campaigns: list[str]):
    """The projection's rows of `campaigns` and the positions they reflect, read consistently."""

    def rows(conn: Connection):
        found_voeux = {
            (r.campaign, r.ine, r.lycee_uai, r.formation_code): dict(r._mapping)
            for r in conn.execute(select(voeux).where(voeux.c.campaign.in_(campaigns)))
        }
        found_totals = {
            (r.campaign, r.ine): dict(r._mapping)
            for r in conn.execute(select(student_totals).where(student_totals.c.campaign.in_(campaigns)))
        }
        return found_voeux, found_totals

    with engine.connect() as conn:
        return consistent(conn, rows)


class _StreamAudit:
    """One service (or rectorat) stream read through the chain, its checkpoints, the cross-check and the replay."""

    def __init__(self, key: str, report: VerifyReport, cross: CrossCheck, replay: Replay, watch: CheckpointWatch):
        self.key, self.report, self.cross, self.replay, self.watch = key, report, cross, replay, watch
        self.chain = Chain(key)
        self.position = replay.positions.get(key)
        self.position_seen = self.position in (None, START)
        self.opened: list[str] = []

    def feed(self, page: list[tuple[str, dict[str, str]]]) -> None:
        found = self.report.differences
        for entry_id, fields in page:
            content = entry_hash(fields)
            found += self.chain.feed(entry_id, fields, content)
            found += self.watch.feed(entry_id, fields, self.chain.length)
            found += self.cross.service_entry(self.key, entry_id, fields, content)
            if entry_id == self.position:
                self.position_seen = True
            if not is_within(entry_id, self.position):
                self.report.not_yet_applied[self.key] = self.report.not_yet_applied.get(self.key, 0) + 1
            logged = read_logged(self.key, entry_id, fields, NO_KEYS)
            if isinstance(logged, LoggedEvent):
                self.replay.read(logged)
                if isinstance(logged.event.payload, CampaignOpened):
                    self.opened.append(logged.event.campaign)
            elif isinstance(logged, str):
                self.report.unreadable.append(f"{self.key} {entry_id} : {logged}")

    def finish(self) -> None:
        found = self.report.differences
        found += self.watch.finish()
        self.report.entries[self.key] = self.chain.length
        self.report.checkpoints_checked += self.watch.checked
        if not self.position_seen:
            ahead = self.chain.head_id is None or entry_id_key(self.position) > entry_id_key(self.chain.head_id)
            found.append(
                Difference(
                    "projection_ahead_of_log" if ahead else "position_entry_missing",
                    where(self.key, self.position),
                    "la projection a lu cette entrée, qui n'est plus dans le flux : "
                    + ("la fin du flux a été supprimée." if ahead else "elle a été supprimée ou le flux réécrit."),
                )
            )


async def _student_streams(redis: Redis, keys: StreamKeys, campaign: str, known: set[str]) -> dict[str, list]:
    prefix = keys.student(campaign, "")
    ines = set(known)
    async for raw in redis.scan_iter(match=keys.student(campaign, "*"), count=1000):
        ines.add(text(raw).removeprefix(prefix))
    streams: dict[str, list] = {}
    ordered = sorted(ines)
    for start in range(0, len(ordered), STUDENT_BATCH):
        chunk = ordered[start : start + STUDENT_BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for ine in chunk:
                pipe.xrange(keys.student(campaign, ine), "-", "+")
            replies = await pipe.execute()
        for ine, entries in zip(chunk, replies, strict=True):
            streams[ine] = [(text(i), entry_fields(f)) for i, f in entries]
    return streams


async def _index(redis: Redis, key: str) -> dict[str, str]:
    return {text(k): text(v) async for k, v in redis.hscan_iter(key, count=1000)}


async def verify_log(
    redis: Redis,
    engine: Engine,
    keys: StreamKeys,
    *,
    campaign: str | None = None,
    checkpoint_key: bytes | None = None,
) -> VerifyReport:
    """Replay the log in memory and compare it with the projection up to the positions the projection has
    stored; follow every chain; check every checkpoint; cross-check the student streams and the event-id
    index. Entries past the projection's positions are checked but not compared (see `not_yet_applied`)."""
    # The projection first: the log only grows, so everything it has read is still there to replay.
    all_campaigns = [campaign] if campaign else await opened_campaigns(redis, keys)
    (actual_voeux, actual_totals), positions = await asyncio.to_thread(read_projection, engine, all_campaigns)
    streams = streams_of(keys, all_campaigns)
    checkpoints = await asyncio.to_thread(load_checkpoints, engine, streams)

    report = VerifyReport(campaigns=all_campaigns)
    report.purged = {c: p for c, p in (await asyncio.to_thread(purges, engine)).items() if c in all_campaigns}
    report.positions = {k: v for k, v in positions.items() if k in streams}
    replay = Replay(positions=report.positions)
    cross = CrossCheck()
    if checkpoints and checkpoint_key is None:
        report.differences.append(
            Difference(
                "checkpoints_unverified",
                "points de contrôle",
                f"{len(checkpoints)} points de contrôle n'ont pas pu être authentifiés : "
                "PASSPRO_CHECKPOINT_KEY n'est pas fournie.",
            )
        )

    for key in streams:
        watch = CheckpointWatch(key, [cp for cp in checkpoints if cp.stream == key], checkpoint_key)
        report.differences += watch.authenticity()
        audit = _StreamAudit(key, report, cross, replay, watch)
        async for page in stream_pages(redis, key):
            audit.feed(page)
        audit.finish()

    for year in all_campaigns:
        known = {a.ine for a in cross.by_event.values() if a.ine and a.campaign == year}
        for ine, entries in (await _student_streams(redis, keys, year, known)).items():
            report.student_streams += 1
            report.differences += cross.student_stream(keys.student(year, ine), year, ine, entries)
    report.differences += cross.missing_from_student_streams()

    indexed: set[str] = set()
    for index_key in [keys.event_ids(None), *(keys.event_ids(y) for y in all_campaigns)]:
        index = await _index(redis, index_key)
        indexed |= set(index)
        report.differences += cross.event_index(index_key, index)
    report.differences += cross.not_indexed(indexed)

    expected = replay.rows()
    report.rows_compared = {"voeux": len(expected[0]), "student_totals": len(expected[1])}
    parked = await DeadLetters(redis, keys).parked_students(BonusProjection.name)
    report.differences += compare_projection(expected, (actual_voeux, actual_totals), parked)
    return report
