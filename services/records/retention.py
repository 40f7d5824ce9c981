"""Retention (issue 5): a campaign's data is kept until it is archived and its appeal period has run out,
then purged from the log, the dead letters, every view and the key store.

- Each archive made is recorded (`campaign_archives`: campaign, path, SHA-256, size, when, who), so the
  purge can check that one still exists, unchanged, and holds everything the campaign has now.
- The purge is refused before the campaign closed (`closes_at` of its CampaignOpened) plus the delay
  (PASSPRO_PURGE_DELAY_DAYS, by default the two months of the recours contentieux, code de justice
  administrative art. R. 421-1); a campaign with no closing date never closed.
- What the purge deletes: every key under `passpro:{<académie>}:<campaign>:` (service and student
  streams, event-id index, access logs), the campaign's dead letters and parked entries, the rows of the
  campaign in every table of the three views that has a `campaign` column, the views' read positions
  and the signed checkpoints of the campaign's streams, the notifier's rows of the campaign (its ledger,
  retry queue, outbox, reminders, errors), and its students' wrapped keys (only theirs: a key
  store may serve several académies). The rectorat
  stream is kept whole: the CampaignOpened entry is a link of its hash chain.
- The purge itself is recorded (`campaign_purges`: campaign, when, who, the archive's SHA-256), so
  `passpro audit verify` says the campaign was purged rather than leave its empty streams unexplained.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import BigInteger, Column, Engine, Integer, String, Table, Text, select
from sqlalchemy import text as text_clause

from services.evaluation import purge as evaluation_purge
from services.notifier import purge as notifier_purge
from services.records.checkpoints import text
from services.registration import purge as registration_purge
from services.scoring import purge as scoring_purge
from shared.contracts.streams import StreamKeys
from shared.domain.student_file import CampaignFile
from shared.runtime.db import make_engine, new_metadata
from shared.runtime.keys.store import KeyStore
from shared.runtime.projection.dead_letters import DeadLetters

metadata = new_metadata()
campaign_archives = Table(
    "campaign_archives",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign", String(4), nullable=False, index=True),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("user_id", String(128), nullable=False),
)
campaign_purges = Table(
    "campaign_purges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign", String(4), nullable=False, index=True),
    Column("purged_at", String(40), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("archive_sha256", String(64), nullable=False),
    Column("counts", Text, nullable=False),
)
# Records of what was done to a campaign, not its data: in no service's views, the purge keeps them.
BATCH = 500


# --- the rules: pure --------------------------------------------------------------------------------


def closing_refusal(campaign: CampaignFile, now: datetime, delay: timedelta) -> str | None:
    """Why the campaign may not be purged yet, or None once it closed more than `delay` ago."""
    if not campaign.opened:
        return f"aucune campagne {campaign.campaign} n'a été ouverte dans cette académie."
    if campaign.closes_at is None:
        return (
            f"la campagne {campaign.campaign} n'a pas de date de clôture : elle n'a jamais été close, "
            "ses données ne peuvent pas être purgées."
        )
    allowed = campaign.closes_at + delay
    if now < campaign.closes_at:
        return (
            f"la campagne {campaign.campaign} n'est pas close (clôture le {campaign.closes_at:%d/%m/%Y %H:%M} UTC) ; "
            f"ses données doivent ensuite être gardées {delay.days} jours (délai de recours)."
        )
    if now < allowed:
        return (
            f"la campagne {campaign.campaign} a été close le {campaign.closes_at:%d/%m/%Y} ; ses données doivent être "
            f"gardées {delay.days} jours après la clôture (délai de recours), soit jusqu'au {allowed:%d/%m/%Y %H:%M} UTC."
        )
    return None


# --- the records --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveRecord:
    id: int
    campaign: str
    path: str
    sha256: str
    size: int
    created_at: str
    user_id: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def record_archive(engine: Engine, campaign: str, path: Path, sha256: str, size: int, created_at: str,
                   user_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(campaign_archives.insert().values(
            campaign=campaign, path=str(path), sha256=sha256, size=size, created_at=created_at, user_id=user_id,
        ))


def archives_of(engine: Engine, campaign: str) -> list[ArchiveRecord]:
    """The archives made of a campaign, newest first."""
    query = select(campaign_archives).where(campaign_archives.c.campaign == campaign).order_by(
        campaign_archives.c.id.desc()
    )
    with engine.connect() as conn:
        return [ArchiveRecord(**row._mapping) for row in conn.execute(query)]


def intact_archive(records: list[ArchiveRecord]) -> tuple[ArchiveRecord | None, list[str]]:
    """The newest recorded archive whose file is still there with its SHA-256, and what is wrong with the others."""
    problems = []
    for record in records:
        path = Path(record.path)
        if not path.is_file():
            problems.append(f"l'archive du {record.created_at[:10]} ({record.path}) n'existe plus")
            continue
        if file_sha256(path) != record.sha256:
            problems.append(f"l'archive du {record.created_at[:10]} ({record.path}) a été modifiée (SHA-256 différent)")
            continue
        return record, problems
    return None, problems


def record_purge(engine: Engine, campaign: str, purged_at: str, user_id: str, archive_sha256: str,
                 counts: dict[str, int]) -> None:
    with engine.begin() as conn:
        conn.execute(campaign_purges.insert().values(
            campaign=campaign, purged_at=purged_at, user_id=user_id, archive_sha256=archive_sha256,
            counts=json.dumps(counts, sort_keys=True),
        ))


def purges(engine: Engine) -> dict[str, dict]:
    """The latest purge of each purged campaign: when, by whom, with which archive."""
    found: dict[str, dict] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(campaign_purges).order_by(campaign_purges.c.id)):
            found[row.campaign] = {"purged_at": row.purged_at, "user_id": row.user_id,
                                   "archive_sha256": row.archive_sha256}
    return found


# --- the purge: I/O -----------------------------------------------------------------------------------


@dataclass
class Purged:
    redis_keys: int = 0
    dead_letters: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # "service.table" -> rows deleted
    wrapped_keys: int = 0

    def counts(self) -> dict[str, int]:
        return {"redis_keys": self.redis_keys, "dead_letters": self.dead_letters,
                "view_rows": sum(self.rows.values()), "wrapped_keys": self.wrapped_keys}


async def _unlink_matching(redis: Redis, pattern: str) -> int:
    deleted, batch = 0, []
    async for key in redis.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= BATCH:
            deleted += await redis.unlink(*batch)
            batch = []
    if batch:
        deleted += await redis.unlink(*batch)
    return deleted


async def delete_campaign_keys(redis: Redis, keys: StreamKeys, campaign: str) -> int:
    """Every key of the campaign: its streams, student streams, event-id index and access logs."""
    return await _unlink_matching(redis, f"{keys.prefix}:{campaign}:*")


async def delete_dead_letters(redis: Redis, keys: StreamKeys, campaign: str) -> int:
    """The campaign's dead letters and parked entries (they copy its entries' fields), their index,
    resolutions, open sets and parked students; the académie's other letters stay."""
    dead = DeadLetters(redis, keys)
    prefix, student_prefix = f"{keys.prefix}:{campaign}:", f"{campaign}:"
    letters: list[str] = []
    start = "-"
    while page := await redis.xrange(dead.stream, start, "+", count=1000):
        for letter_id, raw in page:
            fields = {text(k): text(v) for k, v in raw.items()}
            if fields.get("stream", "").startswith(prefix) or fields.get("student", "").startswith(student_prefix):
                letters.append(text(letter_id))
        start = f"({text(page[-1][0])}"
    for i in range(0, len(letters), BATCH):
        chunk = letters[i : i + BATCH]
        await redis.xdel(dead.stream, *chunk)
        await redis.hdel(dead.resolved, *chunk)
    # Index fields are `view|stream|entry`.
    indexed = [text(k) async for k, _ in redis.hscan_iter(dead.index, count=1000)
               if text(k).partition("|")[2].startswith(prefix)]
    for i in range(0, len(indexed), BATCH):
        await redis.hdel(dead.index, *indexed[i : i + BATCH])
    async for parked in redis.scan_iter(match=f"{dead.stream}:parked:*", count=1000):
        students = [text(s) async for s, _ in redis.hscan_iter(parked, count=1000) if text(s).startswith(student_prefix)]
        for i in range(0, len(students), BATCH):
            await redis.hdel(parked, *students[i : i + BATCH])
    await _unlink_matching(redis, f"{dead.stream}:open:*:{campaign}:*")
    return len(letters)


# Each service says what of a campaign its views hold (its public `purge_campaign`); none is found by inspection.
PURGES = {
    "registration": registration_purge.purge_campaign,
    "evaluation": evaluation_purge.purge_campaign,
    "scoring": scoring_purge.purge_campaign,
    "notifier": notifier_purge.purge_campaign,  # its ledger, retry queue, outbox, reminders and errors
}


def delete_view_rows(engine: Engine, service: str, keys: StreamKeys, campaign: str) -> dict[str, int]:
    """In one transaction, the service's own purge of the campaign: rows deleted per "service.table"."""
    with engine.begin() as conn:
        rows = PURGES[service](conn, campaign, f"{keys.prefix}:{campaign}:")
    return {f"{service}.{table}": n for table, n in rows.items()}


def _reachable(engines: list[Engine]) -> None:
    for engine in engines:
        with engine.connect() as conn:
            conn.execute(text_clause("SELECT 1"))


async def purge(
    redis: Redis,
    keys: StreamKeys,
    campaign: str,
    scoring_engine: Engine,
    other_views: list[tuple[str, str, str | None]],
    open_keystore: Callable[[], KeyStore],
    students: list[str],
    archive_sha256: str,
    user: str,
    purged_at: str,
) -> Purged:
    """The purge's I/O, once its rules allowed it: the campaign's log keys and dead letters, each service's
    view rows (`other_views`: (service, database URL, schema) besides scoring's), the students' wrapped keys,
    then the purge recorded. Every database is reached before anything is deleted."""
    opened = [(name, make_engine(url, schema or name)) for name, url, schema in other_views]
    engines = [("scoring", scoring_engine), *opened]
    try:
        await asyncio.to_thread(_reachable, [engine for _, engine in engines])
        keystore = await asyncio.to_thread(open_keystore)
        purged = Purged()
        purged.redis_keys = await delete_campaign_keys(redis, keys, campaign)
        purged.dead_letters = await delete_dead_letters(redis, keys, campaign)
        for name, engine in engines:
            purged.rows.update(await asyncio.to_thread(delete_view_rows, engine, name, keys, campaign))
        try:
            purged.wrapped_keys = await asyncio.to_thread(keystore.delete_campaign, campaign, students)
        finally:
            keystore.close()
        await asyncio.to_thread(record_purge, scoring_engine, campaign, purged_at, user, archive_sha256, purged.counts())
    finally:
        for _, engine in opened:
            engine.dispose()
    return purged
