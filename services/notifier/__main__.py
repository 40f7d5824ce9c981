"""`python -m services.notifier`: the notifier's worker alone (no pages), configured by its environment, until
SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal

from services.notifier.process import opened
from services.notifier.settings import NotifierSettings


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with opened(NotifierSettings()) as notifier:
        await notifier.run(stop)


if __name__ == "__main__":
    asyncio.run(main())
