"""`passpro token`, `passpro campaign open`, `passpro reference import`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path

from services.cli.common import make_token, open_campaign, redis_client, service_settings


def token(args: argparse.Namespace) -> int:
    from shared.runtime.auth import InvalidToken

    settings = service_settings("registration")
    settings.require_secret()
    try:
        print(make_token(settings, role=args.role, uai=args.uai, user=args.user, ttl=args.ttl))
    except InvalidToken as exc:
        print(f"passpro token: {exc}", file=sys.stderr)
        return 2
    return 0


def master_key(_: argparse.Namespace) -> int:
    from shared.runtime.crypto import format_master_key, new_key

    print(format_master_key(new_key()))
    return 0


def reference_import(args: argparse.Namespace) -> int:
    from shared.contracts.streams import StreamKeys
    from shared.runtime.reference_store import import_reference

    settings = service_settings("registration")
    text = Path(args.file).read_text(encoding="utf-8")

    async def run():
        async with redis_client(settings) as redis:
            return await import_reference(redis, StreamKeys(settings.academie), text)

    data = asyncio.run(run())
    print(f"Référentiel {data.version} importé : {len(data.establishments)} établissements. Redémarrez les services.")
    return 0


def campaign_open(args: argparse.Namespace) -> int:
    from shared.contracts.errors import RuleViolation
    from shared.contracts.identifiers import check_campaign

    settings = service_settings("scoring")
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="print a signed token")
    p.add_argument("--role", required=True, choices=["principal", "referent", "lycee_staff", "proviseur", "rectorat"])
    p.add_argument("--uai")
    p.add_argument("--user", required=True)
    p.add_argument("--ttl", type=int, default=8 * 3600)
    p.set_defaults(func=token)

    campaign = sub.add_parser("campaign", help="campaigns").add_subparsers(dest="action", required=True)
    p = campaign.add_parser("open", help="CampaignOpened")
    p.add_argument("year")
    p.add_argument("--bonus", type=int, default=2500)
    p.add_argument("--closes-at")
    p.set_defaults(func=campaign_open)

    sub.add_parser("master-key", help="print a new random master key (PASSPRO_MASTER_KEY)").set_defaults(func=master_key)

    reference = sub.add_parser("reference", help="reference data").add_subparsers(dest="action", required=True)
    p = reference.add_parser("import", help="replace the reference data")
    p.add_argument("file")
    p.set_defaults(func=reference_import)
