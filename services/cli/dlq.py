"""`passpro dlq list` and `passpro dlq retry [ID]`: the dead letters, and replaying them once the cause is fixed.

A letter names its view; each view belongs to one service, whose settings say where its database is, so a
retry applies the entries through that view's own code, in that service's database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from services.cli.common import existing_database, redis_client, service_settings


def views() -> dict[str, tuple[str, type]]:
    """Each view's name -> (its service, its class)."""
    from services.evaluation.views import InterviewsView
    from services.registration.views import StudentsView
    from services.scoring.views import BonusProjection

    return {cls.name: (service, cls) for service, cls in
            [("registration", StudentsView), ("evaluation", InterviewsView), ("scoring", BonusProjection)]}


def dlq_list(args: argparse.Namespace) -> int:
    from shared.contracts.streams import StreamKeys
    from shared.runtime.projection.dead_letters import DeadLetters

    settings = service_settings("scoring")

    async def run():
        async with redis_client(settings) as redis:
            return await DeadLetters(redis, StreamKeys(settings.academie)).letters(include_resolved=args.all)

    letters = asyncio.run(run())
    if args.json:
        print(json.dumps([letter.as_dict() for letter in letters], ensure_ascii=False, indent=2))
        return 0
    if not letters:
        print("Aucune lettre morte." if not args.all else "Aucune lettre morte, même résolue.")
        return 0
    print(f"{'id':<16} {'vue':<22} {'flux':<28} {'entrée':<16} {'type':<20} {'tentatives':>10}  {'date':<25} motif")
    for letter in letters:
        state = f" (résolue le {letter.resolved_at})" if letter.resolved_at else ""
        print(f"{letter.id:<16} {letter.view:<22} {letter.stream.split('}:', 1)[-1]:<28} {letter.entry_id:<16} "
              f"{letter.event_type:<20} {letter.attempts:>10}  {letter.failed_at:<25} {letter.reason}{state}")
    return 0


def dlq_retry(args: argparse.Namespace) -> int:
    from shared.contracts.streams import StreamKeys
    from shared.runtime.db import make_engine
    from shared.runtime.projection.dead_letters import DeadLetters, retry, retry_groups

    known_views = views()
    settings = service_settings("scoring")

    async def run() -> int:
        async with redis_client(settings) as redis:
            dead = DeadLetters(redis, StreamKeys(settings.academie))
            try:
                groups = retry_groups(await dead.letters(), args.id)
            except LookupError:
                print(f"Aucune lettre morte ouverte d'identifiant {args.id}.", file=sys.stderr)
                return 2
            if not groups:
                print("Aucune lettre morte à rejouer.")
                return 0
            failing = 0
            for view_name, student in groups:
                if view_name not in known_views:
                    print(f"Vue inconnue {view_name!r} : lettres laissées en place.", file=sys.stderr)
                    failing += 1
                    continue
                service, view_class = known_views[view_name]
                service_config = service_settings(service)
                engine = make_engine(existing_database(service_config, service),
                                     service_config.database_schema or service)
                keystore = service_config.open_keystore()
                try:
                    outcome = await retry(dead, redis, engine, view_class(), student, keystore)
                finally:
                    engine.dispose()
                    keystore.close()
                who = f"élève {student}" if ":" in student else f"lettre {student}"
                print(f"{view_name}, {who} : {len(outcome.applied)} entrée(s) rejouée(s).")
                if outcome.still_failing:
                    failing += 1
                    first = outcome.still_failing[0]
                    print(f"  toujours en échec : {first.stream} {first.entry_id} ({outcome.reason}) ; "
                          f"{len(outcome.still_failing)} entrée(s) restent en attente.", file=sys.stderr)
            return 1 if failing else 0

    return asyncio.run(run())


def register(sub: argparse._SubParsersAction) -> None:
    dlq = sub.add_parser("dlq", help="dead letters").add_subparsers(dest="action", required=True)
    p = dlq.add_parser("list", help="the open dead letters (and parked entries)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="resolved ones too")
    p.set_defaults(func=dlq_list)
    p = dlq.add_parser("retry", help="replay the dead letters (of one letter's student with ID) through their view")
    p.add_argument("id", nargs="?")
    p.set_defaults(func=dlq_retry)
