"""The notifier's resources, opened and closed in one place: its database (migrated), the log's client, the
key store (the référents' addresses are sealed in the log), the reference data and the sender. Used by the app
(`passpro serve notifier`), by `python -m services.notifier` (the worker alone) and by the tests."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

from services.notifier.settings import NotifierSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(settings: NotifierSettings) -> None:
    from shared.runtime.migrations import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(MIGRATIONS, settings.resolved_database_url(), settings.database_schema or "notifier")


@asynccontextmanager
async def opened(settings: NotifierSettings, *, clock=None, sender=None):
    """A Notifier ready to run; `sender` None takes SMTP from the settings, or the outbox without them."""
    from services.notifier.worker import Notifier, smtp_sender, utc_now
    from shared.contracts.streams import StreamKeys
    from shared.runtime.db import make_engine
    from shared.runtime.log.client import EventLog
    from shared.runtime.redis_connect import redis_client
    from shared.runtime.reference_store import load_reference

    await asyncio.to_thread(migrate, settings)
    engine = make_engine(settings.resolved_database_url(), settings.database_schema or "notifier")
    redis = redis_client(settings)  # the services' one place: the Sentinels' primary when they are set
    keystore = await asyncio.to_thread(settings.open_keystore)
    try:
        keys = StreamKeys(settings.academie)
        if sender is None and settings.smtp_url:
            sender = smtp_sender(settings)
        yield Notifier(settings, redis=redis, engine=engine, event_log=EventLog(redis, keys, keystore),
                       reference=await load_reference(redis, keys), clock=clock or utc_now, sender=sender)
    finally:
        await redis.aclose()
        keystore.close()
        engine.dispose()
