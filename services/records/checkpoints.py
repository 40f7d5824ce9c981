"""Signed checkpoints of the log's heads, kept in scoring's database — outside Redis, under a key Redis never sees.

A checkpoint is only ever signed over a history just checked: the chain is
followed from the previous checkpoint (or the start) to the head, so a
tampered history is refused rather than blessed. `passpro audit checkpoint`
records them on demand; the running scoring service every few minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from services.records.audit import Chain, Checkpoint, Difference, where
from services.scoring.views import checkpoints as checkpoints_table
from shared.contracts.streams import HASH, StreamKeys
from shared.runtime.redis_connect import redis_client

if TYPE_CHECKING:  # the service's types only: the CLI's audit imports this module without the HTTP edge
    from services.scoring.settings import ScoringSettings
    from shared.runtime.http.app import BackgroundTask, Runtime

log = logging.getLogger(__name__)

PAGE = 10_000
# Inside the service the chain is followed on the event loop: small pages keep each pause short.
SERVICE_PAGE = 1000
SETTLE_ATTEMPTS = 20  # reads of the new tail before signing without the length cross-check


def text(value: bytes | str) -> str:
    """A Redis reply as text; surrogateescape keeps the exact bytes so hashes recompute on any entry."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def entry_fields(raw: Mapping) -> dict[str, str]:
    if isinstance(next(iter(raw), ""), str):  # a client with decode_responses: already text
        return dict(raw)
    return {text(k): text(v) for k, v in raw.items()}


def audit_client(settings: Any) -> Redis:
    """The log's client for audits under these settings (through the Sentinels or on the cluster when set:
    shared/runtime/redis_connect.py): decoded in hiredis, yet keeping any byte Redis holds (so every hash
    recomputes)."""
    return redis_client(settings, decode_responses=True, encoding_errors="surrogateescape")


async def stream_pages(
    redis: Redis, key: str, *, after: str | None = None, page: int = PAGE
) -> AsyncIterator[list[tuple[str, dict[str, str]]]]:
    """Every entry of a stream after `after` (from the start without it), in pages of XRANGE."""
    start = "-" if after is None else f"({after}"
    while True:
        entries = await redis.xrange(key, start, "+", count=page)
        if not entries:
            return
        batch = [(text(entry_id), entry_fields(fields)) for entry_id, fields in entries]
        yield batch
        if len(entries) < page:
            return
        start = f"({batch[-1][0]}"


async def opened_campaigns(redis: Redis, keys: StreamKeys) -> list[str]:
    found: set[str] = set()
    async for page in stream_pages(redis, keys.rectorat):
        found |= {f.get("campaign", "") for _, f in page if f.get("event_type") == "CampaignOpened"}
    return sorted(c for c in found if c)


def streams_of(keys: StreamKeys, campaigns: list[str]) -> list[str]:
    """The streams whose heads are signed: the rectorat's and each campaign's service streams
    (the student streams hold the same entries, which `verify` cross-checks)."""
    return [keys.rectorat, *(key for c in campaigns for key in keys.campaign_streams(c))]


# --- the table --------------------------------------------------------------------------


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(row.stream, row.entry_id, row.hash, int(row.length), row.recorded_at, row.hmac)


def load_checkpoints(engine: Engine, streams: list[str] | None = None) -> list[Checkpoint]:
    """Every checkpoint (of `streams` if given), oldest first."""
    query = select(checkpoints_table).order_by(checkpoints_table.c.id)
    if streams is not None:
        query = query.where(checkpoints_table.c.stream.in_(streams))
    with engine.connect() as conn:
        return [_checkpoint(row) for row in conn.execute(query)]


def save_checkpoint(engine: Engine, checkpoint: Checkpoint) -> None:
    with engine.begin() as conn:
        conn.execute(
            checkpoints_table.insert().values(
                stream=checkpoint.stream,
                entry_id=checkpoint.entry_id,
                hash=checkpoint.hash,
                length=checkpoint.length,
                recorded_at=checkpoint.recorded_at,
                hmac=checkpoint.hmac,
            )
        )


# --- signing the heads ------------------------------------------------------------------


@dataclass
class CheckpointResult:
    stream: str
    status: Literal["recorded", "unchanged", "empty", "refused"]
    checkpoint: Checkpoint | None = None
    problems: list[Difference] = field(default_factory=list)


async def _follow(redis: Redis, chain: Chain, after: str | None, page_size: int) -> list[Difference]:
    problems: list[Difference] = []
    async for page in stream_pages(redis, chain.stream, after=after, page=page_size):
        for entry_id, fields in page:
            problems += chain.feed(entry_id, fields)
    return problems


async def checkpoint_stream(
    redis: Redis, stream: str, last: Checkpoint | None, key: bytes, now: datetime, page_size: int = PAGE
) -> CheckpointResult:
    """Check the stream from `last` (or its start) to its head, then sign the head."""
    if last is not None:
        if not last.is_authentic(key):
            message = "le dernier point de contrôle n'a pas une signature valide."
            problem = Difference("checkpoint_forged", where(stream, last.entry_id), message)
            return CheckpointResult(stream, "refused", problems=[problem])
        found = await redis.xrange(stream, last.entry_id, last.entry_id)
        if not found or entry_fields(found[0][1]).get(HASH) != last.hash:
            problem = Difference(
                "checkpoint_entry_missing" if not found else "checkpoint_hash_differs",
                where(stream, last.entry_id),
                "l'entrée du dernier point de contrôle a disparu ou changé : l'historique a été réécrit.",
            )
            return CheckpointResult(stream, "refused", problems=[problem])
        chain = Chain(stream, last.hash, last.length, last.entry_id)
    else:
        chain = Chain(stream)
    problems = await _follow(redis, chain, last.entry_id if last else None, page_size)
    # The length cross-check needs the head and XLEN read together; appends may land meanwhile, so follow them.
    for _ in range(SETTLE_ATTEMPTS):
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xlen(stream)
            pipe.xrevrange(stream, "+", "-", count=1)
            length, head = await pipe.execute()
        head_id = text(head[0][0]) if head else None
        if head_id == chain.head_id:
            if length != chain.length:
                problems.append(
                    Difference(
                        "length_differs",
                        where(stream),
                        f"le flux compte {length} entrées mais la chaîne en suit {chain.length} : des entrées ont été "
                        "supprimées avant le dernier point de contrôle.",
                    )
                )
            break
        problems += await _follow(redis, chain, chain.head_id, page_size)
    if problems:
        return CheckpointResult(stream, "refused", problems=problems)
    if chain.head_id is None:
        return CheckpointResult(stream, "empty")
    if last is not None and chain.head_id == last.entry_id:
        return CheckpointResult(stream, "unchanged", checkpoint=last)
    checkpoint = Checkpoint(stream, chain.head_id, chain.head_hash, chain.length, now.isoformat()).signed(key)
    return CheckpointResult(stream, "recorded", checkpoint=checkpoint)


async def record_checkpoints(
    redis: Redis,
    engine: Engine,
    keys: StreamKeys,
    key: bytes,
    *,
    campaign: str | None = None,
    now: datetime | None = None,
    page_size: int = PAGE,
) -> list[CheckpointResult]:
    """Sign the head of the rectorat stream and of each campaign's service streams (one campaign if given)."""
    campaigns = [campaign] if campaign else await opened_campaigns(redis, keys)
    streams = streams_of(keys, campaigns)
    existing = await asyncio.to_thread(load_checkpoints, engine, streams)
    latest = {cp.stream: cp for cp in existing}  # oldest first, so the last one wins
    outcomes = []
    for stream in streams:
        outcome = await checkpoint_stream(redis, stream, latest.get(stream), key, now or datetime.now(UTC), page_size)
        if outcome.status == "recorded":
            await asyncio.to_thread(save_checkpoint, engine, outcome.checkpoint)
        outcomes.append(outcome)
    return outcomes


# --- inside the running scoring service ---------------------------------------------------


async def keep_checkpointing(runtime: Runtime, key: bytes, interval: float, stop: asyncio.Event) -> None:
    """Sign the heads now and every `interval` seconds until `stop`; a refusal is logged loudly."""
    while not stop.is_set():
        try:
            outcomes = await record_checkpoints(runtime.redis, runtime.engine, runtime.keys, key, page_size=SERVICE_PAGE)
            for outcome in outcomes:
                if outcome.status == "refused":
                    for problem in outcome.problems:
                        log.error("checkpoint refused for %s: %s", outcome.stream, problem)
                elif outcome.status == "recorded":
                    signed = outcome.checkpoint
                    log.info("checkpoint %s at %s (%d entries)", outcome.stream, signed.entry_id, signed.length)
        except (RedisError, OSError, SQLAlchemyError) as exc:
            log.warning("checkpoints skipped: log or database unreachable (%s)", exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the service must outlive one failed round
            log.exception("checkpoints: unexpected error")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def background_tasks(settings: ScoringSettings) -> dict[str, BackgroundTask]:
    """What the scoring app runs while it is up (build_app's `background`): `keep_checkpointing`, or nothing
    without a checkpoint key or with no interval."""
    key = settings.checkpoint_key_bytes()
    interval = settings.checkpoint_interval_seconds
    if key is None or interval <= 0:
        return {}
    return {"checkpoints": lambda runtime, stop: keep_checkpointing(runtime, key, interval, stop)}
