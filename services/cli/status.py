"""`passpro status`: each view's position and lag, and the dead letters."""

from __future__ import annotations

import argparse
import asyncio

from services.cli.common import SERVICES, existing_database, log_url, redis_client, service_settings


def status(_: argparse.Namespace) -> int:
    from shared.contracts.streams import StreamKeys
    from shared.runtime.db import make_engine, new_metadata
    from shared.runtime.projection.dead_letters import DeadLetters
    from shared.runtime.projection.views import load_positions, positions_table

    table = positions_table(new_metadata())

    async def lag(settings, positions: dict[str, str]) -> list[tuple[str, str, int]]:
        async with redis_client(settings) as redis:
            rows = []
            for stream, position in sorted(positions.items()):
                behind = len(await redis.xrange(stream, f"({position}", "+", count=100_000))
                rows.append((stream, position, behind))
            dead = len(await DeadLetters(redis, StreamKeys(settings.academie)).letters())
            return rows, dead

    for name in SERVICES:
        settings = service_settings(name)
        log_url(settings)  # the log first: with no system to read, no database file is opened (nor made)
        engine = make_engine(existing_database(settings, name), settings.database_schema or name)
        with engine.connect() as conn:
            positions = load_positions(conn, table)
        engine.dispose()
        rows, dead = asyncio.run(lag(settings, positions))
        print(f"{name}:")
        for stream, position, behind in rows:
            print(f"  {stream:<50} {position:<22} en retard de {behind}")
    print(f"lettres mortes ouvertes (dont entrées en attente) : {dead}")
    from services.cli.notifier import print_status

    print_status()  # the notifier's lag and last errors (SPEC §7)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("status", help="each view's position and lag, and the dead letters").set_defaults(func=status)
