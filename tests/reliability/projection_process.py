"""Scoring's projection catching up in processes of their own, for the tests that kill them; each entry's
applications are counted in the same transaction (`entries_view.CountedBonuses`), so a double apply shows.

    python tests/reliability/projection_process.py REDIS_URL ACADEMIE DATABASE_URL [SCHEMA]

A small fork server, so that each projection process starts in milliseconds rather than after a
second of imports: it prints `ready`, then obeys one command per line on stdin:
`start` forks a process that builds its own engine, Redis client and Consumer and applies the log
until it has caught up (answers `started <pid>`); `kill` sends it SIGKILL if it is still running,
`wait` waits for it (both answer `killed` or `exited <code>`). The server reaps its child only
when told, so the pid it kills is always its own child's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import traceback

from redis.asyncio import Redis

from shared.contracts.streams import StreamKeys
from shared.runtime.projection.consumer import Consumer
from shared.runtime.db import make_engine

from entries_view import CountedBonuses

# Small pages: many commits inside the kill window (0-0.5 s), so a kill often lands between two commits,
# where a double apply would show (with 500 per stream, most kills landed inside the first page).
PAGE_SIZE = 100


async def catch_up(redis_url: str, academie: str, database_url: str, schema: str | None) -> None:
    redis = Redis.from_url(redis_url)
    engine = make_engine(database_url, schema)
    try:
        await Consumer(redis, engine, StreamKeys(academie), CountedBonuses(), page_size=PAGE_SIZE, keystore=None).catch_up()
    finally:
        await redis.aclose()
        engine.dispose()


def run_child(args: list[str]) -> None:
    """The forked projection process: never returns into the server's loop."""
    code = 0
    try:
        redis_url, academie, database_url, *schema = args
        asyncio.run(catch_up(redis_url, academie, database_url, schema[0] if schema else None))
    except BaseException:  # noqa: BLE001 - reported to the test through stderr and the exit code
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def outcome(status: int) -> str:
    if os.WIFSIGNALED(status):
        return "killed" if os.WTERMSIG(status) == signal.SIGKILL else f"signalled {os.WTERMSIG(status)}"
    return f"exited {os.WEXITSTATUS(status)}"


def serve(args: list[str]) -> None:
    print("ready", flush=True)
    child = None
    for command in sys.stdin:
        command = command.strip()
        if command == "start":
            child = os.fork()
            if child == 0:
                run_child(args)
            print(f"started {child}", flush=True)
        elif command in ("kill", "wait") and child is not None:
            pid, status = os.waitpid(child, os.WNOHANG)  # reaps it only if it has already exited
            if pid == 0:
                if command == "kill":
                    os.kill(child, signal.SIGKILL)
                _, status = os.waitpid(child, 0)
            child = None
            print(outcome(status), flush=True)


if __name__ == "__main__":
    serve(sys.argv[1:])
