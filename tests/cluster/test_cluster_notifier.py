"""The notifier on a Redis Cluster (PASSPRO_REDIS_CLUSTER_NODES): its own client (redis_connect) and FastStream's
RedisClusterBroker read the académie's streams on the shard its hash tag names, and it mails a booking's
convocation. Its own cluster on ports 19621-19626."""

from __future__ import annotations

import asyncio
import shutil
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from redis_cluster import start_cluster
from services.notifier.process import opened
from services.notifier.settings import NotifierSettings
from shared.contracts.streams import StreamKeys
from shared.runtime.log.client import EventLog
from shared.runtime.redis_connect import redis_client
from tests.shared.event_factories import CAMPAIGN, T0, ine_number, make_event, registered, scheduled

sys.path.insert(0, str(Path(__file__).parents[1] / "notifier"))
from notifier_world import SERVICE_OF, Clock, SmtpServer, wait_async  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("redis-cli")), reason="redis-server and redis-cli needed"
)
AT = T0 + timedelta(days=10)


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory):
    processes = start_cluster(tmp_path_factory.mktemp("cluster"), first_port=19621)
    yield processes
    processes.stop()


async def test_the_notifier_reads_its_academie_on_the_cluster(cluster, tmp_path):
    with SmtpServer() as smtp:
        settings = NotifierSettings(
            redis_url="redis://127.0.0.1:1/0",  # nothing there: the cluster's nodes take precedence
            redis_cluster_nodes=cluster.nodes, academie="lille",
            campaign=CAMPAIGN, data_dir=tmp_path / "n", smtp_url=smtp.url, block_ms=50, timer_seconds=0.1)
        writer = redis_client(settings)
        log = EventLog(writer, StreamKeys(settings.academie))
        try:
            for n in (70, 71):
                ine = ine_number(n)
                for version, payload in enumerate((registered(), scheduled(at=AT))):
                    event = make_event(payload, ine=ine)
                    appended = await log.append(event, SERVICE_OF[payload.EVENT_TYPE], version, str(event.event_id))
                    assert appended.status == "ok", appended
            async with opened(settings, clock=Clock(T0)) as notifier:
                stop = asyncio.Event()
                task = asyncio.create_task(notifier.run(stop))
                try:
                    await wait_async(lambda: len(smtp.inbox.messages) >= 2, timeout=30, what="the two convocations")
                finally:
                    stop.set()
                    await task
        finally:
            await writer.aclose()
        keys = sorted(str(m["X-Passpro-Notification"]).strip().split(":")[2] for m in smtp.inbox.messages)
        assert keys == [ine_number(70), ine_number(71)]  # each once
