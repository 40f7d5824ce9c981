"""`passpro rebuild`'s work in a process of its own, reporting its catch-up as values, for the bench.

    python -m bench.rebuild_run      (with the scoring service's PASSPRO_* environment, as `passpro rebuild`)

The command's own steps — the scoring service's settings and key store, then
`services.records.rebuild.rebuild` (a fresh projection catching up from the start of the log into a
workspace, then the swap) — with its progress callback keeping (time, entries done) per page instead of
drawing the French progress bar; one JSON line on stdout at the end. The bench reads the catch-up
rate from it (`bench/processes.py`), not from the bar's text.
"""

from __future__ import annotations

import asyncio
import json
import time

from services.cli.common import service_settings
from services.records.rebuild import rebuild
from shared.contracts.streams import StreamKeys
from shared.runtime.redis_connect import redis_client


def main() -> None:
    started = time.monotonic()
    settings = service_settings("scoring")
    pages: list[tuple[float, int]] = []  # (when, entries done): once before the first page, then after each

    def progress(done: int, total: int) -> None:
        pages.append((time.monotonic(), done))

    async def run():
        redis = redis_client(settings, decode_responses=True)  # through the Sentinels or the cluster when set
        keystore = settings.open_keystore()
        try:
            return await rebuild(redis, StreamKeys(settings.academie), keystore, settings.resolved_database_url(),
                                 settings.database_schema or "scoring", progress)
        finally:
            await redis.aclose()
            keystore.close()

    result = asyncio.run(run())
    (first_at, first_done), (last_at, last_done) = pages[0], pages[-1]
    print(json.dumps({
        "entries": result.entries, "students": result.students, "voeux": result.voeux,
        "catch_up_events": last_done - first_done, "catch_up_seconds": last_at - first_at,
        "seconds": time.monotonic() - started,
    }), flush=True)


if __name__ == "__main__":
    main()
