"""What the commands share: each service's settings and app, a Redis client, tokens, campaigns, migrations."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from datetime import datetime

SERVICES = {"registration": 8101, "evaluation": 8102, "scoring": 8103}


def service_settings(name: str):
    if name == "registration":
        from services.registration.settings import RegistrationSettings as S
    elif name == "evaluation":
        from services.evaluation.settings import EvaluationSettings as S
    else:
        from services.scoring.settings import ScoringSettings as S
    return S()


def app_factory(name: str):
    if name == "registration":
        from services.registration.app import MIGRATIONS, create_app
    elif name == "evaluation":
        from services.evaluation.app import MIGRATIONS, create_app
    else:
        from services.scoring.app import MIGRATIONS, create_app
    return create_app, MIGRATIONS


@asynccontextmanager
async def redis_client(settings):
    from redis.asyncio import Redis

    client = Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


def migrate_all() -> None:
    from shared.runtime.migrations import upgrade

    for name in SERVICES:
        settings = service_settings(name)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        _, migrations = app_factory(name)
        upgrade(migrations, settings.resolved_database_url(), settings.database_schema or name)


async def _reference(settings):
    from redis.exceptions import RedisError

    from shared.contracts.reference import default_reference_text, parse_reference
    from shared.contracts.streams import StreamKeys
    from shared.runtime.reference_store import load_reference

    try:
        async with redis_client(settings) as redis:
            return await load_reference(redis, StreamKeys(settings.academie))
    except (OSError, RedisError):  # no log reachable: the shipped file is the reference
        return parse_reference(default_reference_text())


def make_token(settings, *, role: str, uai: str | None, user: str, ttl: int) -> str:
    from shared.runtime.auth import issue_token

    reference = asyncio.run(_reference(settings))
    uai = uai.strip().upper() if uai else None
    return issue_token(
        settings.jwt_secret, user_id=user, role=role, uai=uai, reference=reference, ttl_seconds=ttl,
        issuer=settings.jwt_issuer,
    )


async def open_campaign(settings, year: str, bonus: int, closes_at: datetime | None, *, quiet_if_open: bool = False):
    from services.scoring import domain
    from shared.contracts.errors import RuleViolation
    from shared.contracts.events import Actor
    from shared.contracts.streams import StreamKeys
    from shared.runtime.commands import execute, fingerprint
    from shared.runtime.log import EventLog

    async with redis_client(settings) as redis:
        log = EventLog(redis, StreamKeys(settings.academie))
        command = domain.OpenCampaign(bonus, closes_at)
        try:
            outcome = await execute(
                log, service="rectorat", campaign=year, ine=None,
                actor=Actor(user_id="passpro-cli", role="rectorat", uai=None),
                event_id=uuid.uuid4(),
                request_fingerprint=fingerprint("open-campaign", {"year": year, "bonus": bonus}),
                decide=lambda _f, campaign, now: domain.decide(campaign, now, command),
            )
        except RuleViolation as exc:
            if quiet_if_open and exc.code == "campaign_already_open":
                return None
            raise
        return outcome
