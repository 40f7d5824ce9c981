"""`passpro token`, `passpro master-key`, `passpro reference import` (`passpro campaign` is in campaign.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from services.cli.common import CliError, make_token, nothing_running, redis_client, service_settings


def token(args: argparse.Namespace) -> int:
    from shared.runtime.http.auth import InvalidToken
    from shared.runtime.settings import MIN_SECRET_LENGTH

    settings = service_settings("registration")
    if not settings.jwt_secret:
        raise CliError(f"secret des jetons introuvable : PASSPRO_JWT_SECRET n'est pas fixée et {nothing_running()}.")
    if len(settings.jwt_secret) < MIN_SECRET_LENGTH:
        raise CliError(f"PASSPRO_JWT_SECRET est trop courte ({MIN_SECRET_LENGTH} caractères au moins).")
    try:
        print(make_token(settings, role=args.role, uai=args.uai, user=args.user, ttl=args.ttl, ine=args.ine))
    except InvalidToken as exc:
        print(f"passpro token: {exc}", file=sys.stderr)
        return 2
    return 0


def master_key(_: argparse.Namespace) -> int:
    from shared.runtime.keys.crypto import format_master_key, new_key

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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="print a signed token")
    p.add_argument(
        "--role", required=True, choices=["principal", "referent", "lycee_staff", "proviseur", "rectorat", "eleve"]
    )
    p.add_argument("--uai")
    p.add_argument("--ine", help="the student's INE (role eleve only)")
    p.add_argument("--user", required=True)
    p.add_argument("--ttl", type=int, default=8 * 3600)
    p.set_defaults(func=token)

    sub.add_parser("master-key", help="print a new random master key (PASSPRO_MASTER_KEY)").set_defaults(func=master_key)

    reference = sub.add_parser("reference", help="reference data").add_subparsers(dest="action", required=True)
    p = reference.add_parser("import", help="replace the reference data")
    p.add_argument("file")
    p.set_defaults(func=reference_import)
