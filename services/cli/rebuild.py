"""`passpro rebuild`: rebuild scoring's projection from the log with a progress bar, then swap it in."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from services.cli.common import existing_database, redis_client, service_settings


def progress_bar(stream=sys.stderr) -> callable:
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        share = done / total if total else 1.0
        filled = int(share * 30)
        rate = done / max(time.monotonic() - started, 1e-6)
        stream.write(f"\rReconstruction [{'#' * filled}{'.' * (30 - filled)}] {share:4.0%}  {done}/{total} entrées  {rate:,.0f}/s ")
        stream.flush()

    return show


def rebuild(args: argparse.Namespace) -> int:
    from services.records.rebuild import rebuild as run_rebuild
    from shared.contracts.streams import StreamKeys
    from shared.runtime.redis_connect import replication

    settings = service_settings("scoring")

    database = existing_database(settings, "scoring")  # before the key store: nothing made for a missing base

    async def run():
        async with redis_client(settings, decode_responses=True) as redis:
            keystore = settings.open_keystore()
            try:
                return await run_rebuild(
                    redis, StreamKeys(settings.academie), keystore, database,
                    settings.database_schema or "scoring", progress_bar(), replication(settings),
                )
            finally:
                keystore.close()

    started = time.monotonic()
    result = asyncio.run(run())
    print(
        f"\nProjection reconstruite et mise en service : {result.entries} entrées relues, "
        f"{result.students} élèves, {result.voeux} vœux, en {time.monotonic() - started:.1f} s."
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("rebuild", help="rebuild the scoring projection from the log, then swap it in").set_defaults(
        func=rebuild
    )
