"""`passpro rebuild`: rebuild scoring's projection from the log with a progress bar, then swap it in."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from services.cli.common import service_settings


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
    from redis.asyncio import Redis

    from services.scoring.rebuild import rebuild as run_rebuild
    from shared.contracts.streams import StreamKeys

    settings = service_settings("scoring")

    async def run():
        redis = Redis.from_url(settings.redis_url, decode_responses=True)
        keystore = settings.open_keystore()
        try:
            return await run_rebuild(
                redis, StreamKeys(settings.academie), keystore, settings.resolved_database_url(),
                settings.database_schema or "scoring", progress_bar(),
            )
        finally:
            await redis.aclose()
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
