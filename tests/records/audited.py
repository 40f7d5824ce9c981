"""A small audited world for the audit and checkpoint tests: a real log (own académie), a migrated scoring
database (SQLite file or PostgreSQL schema), the projection caught up, and the `passpro` command's environment.

Everything is synchronous on purpose: the commands under test run their own event loop (`asyncio.run`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import redis as redis_sync
from redis.asyncio import Redis
from sqlalchemy import Engine

from services.scoring.app import MIGRATIONS
from services.records.audit import entry_hash
from services.records.verify import VerifyReport, verify_log
from services.records.checkpoints import CheckpointResult, audit_client, record_checkpoints
from services.scoring.views import BonusProjection
from shared.contracts.events import CampaignOpened
from shared.contracts.streams import StreamKeys
from shared.runtime.projection.consumer import Consumer
from shared.runtime.db import ensure_schema, make_engine
from shared.runtime.log.client import EventLog
from shared.runtime.migrations import upgrade

from event_factories import RECTORAT, journey, make_event

T = TypeVar("T")
from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)


@dataclass
class Audited:
    redis_url: str
    academie: str
    database_url: str
    schema: str | None
    data_dir: Path
    checkpoint_key: str = field(default_factory=lambda: secrets.token_urlsafe(40))
    engine: Engine | None = None
    redis: redis_sync.Redis | None = None  # string replies, as redis-cli shows them

    @property
    def keys(self) -> StreamKeys:
        return StreamKeys(self.academie)

    @property
    def key(self) -> bytes:
        return self.checkpoint_key.encode()

    def stream(self, service: str) -> str:
        return self.keys.service(CAMPAIGN, service)

    def student(self, ine: str) -> str:
        return self.keys.student(CAMPAIGN, ine)

    def run(self, work: Callable[[Redis], Awaitable[T]]) -> T:
        async def main() -> T:
            client = audit_client(SimpleNamespace(redis_url=self.redis_url))  # as the `passpro audit` commands make it
            try:
                return await work(client)
            finally:
                await client.aclose()

        return asyncio.run(main())

    # --- the log and the projection ------------------------------------------------------------

    def open_campaign(self, bonus: int = 2500) -> None:
        async def work(r: Redis) -> None:
            event = make_event(CampaignOpened(bonus_points=bonus), actor=RECTORAT, campaign=CAMPAIGN)
            assert (await EventLog(r, self.keys).append(event, "rectorat", 0, "f")).status == "ok"

        self.run(work)

    def append(self, ine: str, steps: list[tuple[str, Any, Any]], start_version: int = 0) -> list:
        """Append (service, payload, actor) steps for one student through the real script; their positions."""

        async def work(r: Redis) -> list:
            log, done = EventLog(r, self.keys), []
            for version, (service, payload, actor) in enumerate(steps, start=start_version):
                appended = await log.append(make_event(payload, actor=actor, ine=ine), service, version, "f")
                assert appended.status == "ok", appended
                done.append(appended.positions)
            return done

        return self.run(work)

    def journey(self, ine: str, lycee_avis_given: str | None = "favorable") -> list:
        return self.append(ine, journey(lycee_avis_given))

    def catch_up(self) -> int:
        return self.run(lambda r: Consumer(r, self.engine, self.keys, BonusProjection(), keystore=None).catch_up())

    def checkpoint(self) -> list[CheckpointResult]:
        return self.run(lambda r: record_checkpoints(r, self.engine, self.keys, self.key))

    def verify(self, *, key: bytes | None | str = "own", campaign: str | None = None) -> VerifyReport:
        chosen = self.key if key == "own" else key
        return self.run(lambda r: verify_log(r, self.engine, self.keys, campaign=campaign, checkpoint_key=chosen))

    # --- tampering, as someone with redis-cli would ----------------------------------------------

    def entries(self, key: str) -> list[tuple[str, dict[str, str]]]:
        return self.redis.xrange(key)

    def rewrite(self, key: str, entries: list[tuple[str | None, dict[str, str]]]) -> None:
        """Delete a stream and add these entries again (`None` id: a new one)."""
        self.redis.delete(key)
        for entry_id, fields in entries:
            self.redis.xadd(key, fields, id=entry_id or "*")

    @staticmethod
    def rechained(entries: list[tuple[str, dict[str, str]]]) -> list[tuple[str, dict[str, str]]]:
        """The entries with every prev_hash/hash recomputed, as an attacker without the key can do."""
        previous, out = "0" * 40, []
        for entry_id, fields in entries:
            fields = {k: v for k, v in fields.items() if k != "hash"} | {"prev_hash": previous}
            fields["hash"] = entry_hash(fields)
            previous = fields["hash"]
            out.append((entry_id, fields))
        return out

    # --- the command line ------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            "PASSPRO_REDIS_URL": self.redis_url,
            "PASSPRO_ACADEMIE": self.academie,
            "PASSPRO_CAMPAIGN": CAMPAIGN,
            "PASSPRO_SCORING_DATABASE_URL": self.database_url,
            "PASSPRO_JWT_SECRET": "s" * 48,
            "PASSPRO_MASTER_KEY": "bWFzdGVyLWtleS1mb3ItdGhlLWF1ZGl0ZWQtdGVzdHM=",
            "PASSPRO_CHECKPOINT_KEY": self.checkpoint_key,
            "PASSPRO_DATA_DIR": str(self.data_dir),
            **({"PASSPRO_SCORING_DATABASE_SCHEMA": self.schema} if self.schema else {}),
        }


def make_audited(redis_url: str, academie: str, database_url: str, schema: str | None, data_dir: Path) -> Audited:
    ensure_schema(database_url, schema)
    upgrade(MIGRATIONS, database_url, schema)
    world = Audited(redis_url, academie, database_url, schema, data_dir)
    world.engine = make_engine(database_url, schema)
    world.redis = redis_sync.Redis.from_url(redis_url, decode_responses=True)
    return world


def close(world: Audited) -> None:
    world.engine.dispose()
    world.redis.close()
