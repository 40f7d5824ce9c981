"""The notifier finds the log as the services do (shared/runtime/redis_connect.py, PASSPRO_REDIS_SENTINELS):
its own client and FastStream's RedisSentinelBroker ask the Sentinels for the primary; when the primary is
lost (SIGKILL, data deleted) and a replica promoted, the notifier, never restarted, goes on reading its group
and mails the next booking. The replicated log is tests/failover/sentinel_group.py's, on ports 19510-19522."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from notifier_world import SERVICE_OF, Clock, SmtpServer, wait_async

from services.notifier.process import opened
from services.notifier.settings import NotifierSettings
from shared.contracts.streams import StreamKeys
from shared.runtime.log.client import EventLog
from shared.runtime.redis_connect import redis_client
from tests.shared.event_factories import CAMPAIGN, T0, ine_number, make_event, registered, scheduled

sys.path.insert(0, str(Path(__file__).parents[1] / "failover"))
from sentinel_group import SentinelGroup  # noqa: E402

NODE_PORTS = [19510, 19511, 19512]
SENTINEL_PORTS = [19520, 19521, 19522]
AT = T0 + timedelta(days=10)


@pytest.fixture
def group(tmp_path_factory: pytest.TempPathFactory):
    group = SentinelGroup(tmp_path_factory.mktemp("sentinels"), NODE_PORTS, SENTINEL_PORTS)
    try:
        group.start()
        yield group
    finally:
        group.stop()


async def book(log: EventLog, ine: str) -> None:
    for version, payload in enumerate((registered(), scheduled(at=AT))):
        event = make_event(payload, ine=ine)
        appended = await log.append(event, SERVICE_OF[payload.EVENT_TYPE], version, str(event.event_id))
        assert appended.status == "ok", appended


async def test_the_notifier_follows_the_primary_the_sentinels_name(group, tmp_path):
    with SmtpServer() as smtp:
        settings = NotifierSettings(
            redis_url="redis://127.0.0.1:1/0",  # nothing there: the Sentinels take precedence
            redis_sentinels=group.sentinels_setting, redis_sentinel_service="passpro", academie="tsentinel",
            campaign=CAMPAIGN, data_dir=tmp_path / "n", smtp_url=smtp.url, block_ms=50, timer_seconds=0.1)
        writer = redis_client(settings)
        log = EventLog(writer, StreamKeys(settings.academie))
        try:
            await book(log, ine_number(60))
            async with opened(settings, clock=Clock(T0)) as notifier:
                stop = asyncio.Event()
                task = asyncio.create_task(notifier.run(stop))
                try:
                    await wait_async(lambda: len(smtp.inbox.messages) >= 1, what="the convocation before")
                    old, new = await asyncio.to_thread(group.lose_primary)
                    assert new != old
                    await book(log, ine_number(61))
                    await wait_async(lambda: len(smtp.inbox.messages) >= 2, timeout=60,
                                     what="the convocation after the failover")
                finally:
                    stop.set()
                    await task
        finally:
            await writer.aclose()
        keys = sorted(str(m["X-Passpro-Notification"]).strip().split(":")[2] for m in smtp.inbox.messages)
        assert keys == [ine_number(60), ine_number(61)]  # each once
