"""`passpro audit verify`: the log's chains and checkpoints replayed against the scoring projection.

The decisions live in `audit.py` (pure); this module only reads Redis and
scoring's database and feeds them to it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Engine, select

from services.records.audit import (
    START,
    Chain,
    CheckpointWatch,
    CrossCheck,
    Difference,
    Replay,
    compare_projection,
    entry_hash,
    is_within,
    read_logged,
    where,
)
from services.records.checkpoints import (
    entry_fields,
    load_checkpoints,
    opened_campaigns,
    stream_pages,
    streams_of,
    text,
)
from services.records.retention import purges
from services.scoring.affelnet import consistent
from services.scoring.views import BonusProjection, student_totals, voeux
from shared.contracts.events import CampaignOpened, Event
from shared.contracts.personal import ErasedKeyring
from shared.contracts.streams import LoggedEvent, StreamKeys, entry_id_key
from shared.runtime.projection.dead_letters import DeadLetters

STUDENT_BATCH = 500  # student streams read per pipeline
NO_KEYS = ErasedKeyring()  # the verification needs no personal field


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
