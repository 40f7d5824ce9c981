"""What the commands share: each service's settings and app, a Redis client, tokens, campaigns, migrations,
and the French one-line refusals of a command that cannot reach what it needs."""

from __future__ import annotations

import asyncio
import errno
import sys
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from services.cli.datadir import cli_settings, data_dir

SERVICES = {"registration": 8101, "evaluation": 8102, "scoring": 8103}  # the default ports (passpro up --port-base)


class CliError(Exception):
    """A command cannot run; the message is one French sentence (`main` prints it, exit 2)."""


class Refused(Exception):
    """A rule forbids the command; the message is French."""


def fail(command: str, message: str, code: int = 2) -> int:
    """Say why `passpro <command>` stopped, in one French line on stderr; its exit code."""
    print(f"passpro {command} : {message}", file=sys.stderr)
    return code


def settings_class(name: str):
    if name == "registration":
        from services.registration.settings import RegistrationSettings as S
    elif name == "evaluation":
        from services.evaluation.settings import EvaluationSettings as S
    else:
        from services.scoring.settings import ScoringSettings as S
    return S


def service_settings(name: str):
    """A command's settings for one service (services/cli/datadir.py says where each value comes from)."""
    return cli_settings(settings_class(name))


def env_settings(name: str):
    """A service's own settings, from its environment only (`passpro serve`, `passpro up`'s children)."""
    return settings_class(name)()


def nothing_running() -> str:
    return f"aucun passpro up en cours dans {data_dir().resolve()}"


def log_url(settings) -> str:
    """The log's URL (or its cluster's nodes, or its Sentinels, SPEC §9), or a refusal naming where it was
    looked for."""
    if getattr(settings, "redis_cluster_nodes", ""):
        return settings.redis_cluster_nodes
    if getattr(settings, "redis_sentinels", ""):
        return settings.redis_sentinels
    if not settings.redis_url:
        raise CliError(f"journal introuvable : PASSPRO_REDIS_URL n'est pas fixée et {nothing_running()}.")
    return settings.redis_url


def unreachable_log(settings, exc: BaseException) -> CliError:
    from urllib.parse import urlsplit

    where = urlsplit(settings.redis_url)
    place = f"{where.hostname}:{where.port or 6379}"
    if getattr(settings, "redis_sentinels", ""):
        place = f"{settings.redis_sentinels} (Sentinels, service {settings.redis_sentinel_service})"
    if getattr(settings, "redis_cluster_nodes", ""):
        place = f"{settings.redis_cluster_nodes} (Redis Cluster)"
    text = str(exc).lower()
    cause = exc.__cause__ or exc.__context__
    if errno.ECONNREFUSED in (getattr(exc, "errno", None), getattr(cause, "errno", None)) or "refused" in text:
        why = "connexion refusée"
    elif "timeout" in text or "timed out" in text:
        why = "délai dépassé"
    else:
        why = "connexion impossible"
    return CliError(f"journal injoignable à {place} ({why}).")


def existing_database(settings, name: str) -> str:
    """The service's database URL; a SQLite file that does not exist is refused, not made."""
    from shared.runtime.db import is_sqlite

    url = settings.resolved_database_url()
    if is_sqlite(url) and not Path(url.removeprefix("sqlite:///")).exists():
        raise CliError(f"base de {name} introuvable ({url.removeprefix('sqlite:///')}) : "
                       f"{nothing_running()} — ou lancez passpro migrate.")
    return url


async def read_keyring(settings, students):
    """The students' keys for a command that only reads: it never makes a master key nor a key store (a key
    store that does not exist holds no key, and a sealed entry then reads as unreadable, never as empty)."""
    from shared.runtime.keys.crypto import MasterKey, StudentKeys, parse_master_key
    from shared.runtime.db import is_sqlite
    from shared.runtime.keys.store import KeyStore
    from shared.runtime.settings import sqlite_url

    if not settings.master_key:
        raise CliError(f"clé maîtresse introuvable : PASSPRO_MASTER_KEY n'est pas fixée et {nothing_running()}.")
    url = settings.keystore_database_url or sqlite_url(settings.data_dir, "keys")
    if is_sqlite(url) and not Path(url.removeprefix("sqlite:///")).exists():
        return StudentKeys({})
    keystore = await asyncio.to_thread(KeyStore.open, url, MasterKey(parse_master_key(settings.master_key)))
    try:
        return await keystore.keyring_async(students)
    finally:
        keystore.close()


def app_factory(name: str):
    if name == "registration":
        from services.registration.app import MIGRATIONS, create_app
    elif name == "evaluation":
        from services.evaluation.app import MIGRATIONS, create_app
    else:
        from services.scoring.app import MIGRATIONS

        create_app = scoring_app
    return create_app, MIGRATIONS


def scoring_app(settings):
    """Scoring's app as it runs: with the records' audit timeline, student pages and checkpointing composed in
    (scoring never imports records). The one composition, used by `serve`, `docs` and the tests."""
    from services.records import http as records
    from services.scoring.app import create_app

    return create_app(settings, extra_routers=records.routers(), background=records.background_tasks(settings))


@asynccontextmanager
async def redis_client(settings, **options):
    """A client of the log; a log that does not answer becomes a CliError naming it."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from shared.runtime.redis_connect import redis_client as build_client

    log_url(settings)  # refused with where it was looked for when nothing is configured
    client = build_client(settings, **options)
    try:
        yield client
    except (RedisConnectionError, RedisTimeoutError, ConnectionError) as exc:
        raise unreachable_log(settings, exc) from exc
    finally:
        await client.aclose()


def audit_client(settings):
    """The log's client for audits: decoded in hiredis, yet keeping any byte Redis holds (so every hash
    recomputes; services/records/checkpoints.py `audit_client`)."""
    return redis_client(settings, decode_responses=True, encoding_errors="surrogateescape")


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

    elsewhere = getattr(settings, "redis_sentinels", "") or getattr(settings, "redis_cluster_nodes", "")
    if not (settings.redis_url or elsewhere):
        return parse_reference(default_reference_text())
    try:
        async with redis_client(settings) as redis:
            return await load_reference(redis, StreamKeys(settings.academie))
    except (OSError, RedisError, CliError):  # no log reachable: the shipped file is the reference
        return parse_reference(default_reference_text())


def make_token(settings, *, role: str, uai: str | None, user: str, ttl: int, ine: str | None = None) -> str:
    from shared.runtime.http.auth import issue_token

    reference = asyncio.run(_reference(settings))
    uai = uai.strip().upper() if uai else None
    return issue_token(
        settings.jwt_secret, user_id=user, role=role, uai=uai, reference=reference, ttl_seconds=ttl,
        issuer=settings.jwt_issuer, ine=ine,
    )


@asynccontextmanager
async def rectorat_command(settings):
    """(runtime, principal) to run one of scoring's handlers from the CLI as the rectorat (`passpro-cli`): the
    part of the runtime a command uses — the log, no view nor reference — on a client closed on exit. The
    bodies the CLI sends name no person, so their request digest needs no key (commands.fingerprint)."""
    from shared.contracts.streams import StreamKeys
    from shared.runtime.http.app import Runtime
    from shared.runtime.http.auth import Principal
    from shared.runtime.log.client import EventLog
    from shared.runtime.redis_connect import replication

    async with redis_client(settings) as redis:
        keys = StreamKeys(settings.academie)
        log = EventLog(redis, keys, replication=replication(settings))
        rt = Runtime(
            name="scoring", settings=settings, keys=keys, redis=redis, engine=None, log=log,
            reference=None, consumer=None, view=None, fingerprint_key=None, verified_tokens=None,
        )
        yield rt, Principal(user_id="passpro-cli", role="rectorat", uai=None)


async def open_campaign(settings, year: str, bonus: int, closes_at: datetime | None, *, quiet_if_open: bool = False):
    """CampaignOpened, by the CLI as the rectorat, through scoring's handler (the one `POST /api/campaigns`
    runs): the same role check, decision and append. A bonus out of the API's bounds is a ValueError in French."""
    from pydantic import ValidationError

    from services.scoring.handlers import CampaignBody
    from services.scoring.handlers import open_campaign as open_campaign_handler
    from shared.domain.errors import RuleViolation

    try:
        body = CampaignBody(campaign=year, bonus_points=bonus, closes_at=closes_at)
    except ValidationError as exc:
        fields = ", ".join(str(error["loc"][0]) for error in exc.errors())
        raise ValueError(f"campagne refusée ({fields}) : le bonus est un entier de 0 à 100 000 points, "
                         "la fermeture une date avec fuseau.") from None
    async with rectorat_command(settings) as (rt, rectorat):
        try:
            return await open_campaign_handler(rt, rectorat, body)
        except RuleViolation as exc:
            if quiet_if_open and exc.code == "campaign_already_open":
                return None
            raise
