"""SPEC §9 on a Redis Cluster: an académie's shard loses its primary (SIGKILL) — the cluster promotes one of
its replicas, and the log's append (shared/runtime/log/client.py `_on_shard`) follows: the write waiting
meanwhile is acknowledged on the new primary, with WAIT 1 on its remaining replica, and nothing acknowledged
before is lost. Its own cluster (ports 19611-19619: three primaries, two replicas each)."""

from __future__ import annotations

import asyncio
import shutil
import time
from types import SimpleNamespace

import pytest
from redis.cluster import key_slot

from event_factories import CAMPAIGN, PRINCIPAL, RECTORAT, make_event, registered
from redis_cluster import start_cluster
from shared.contracts.events import CampaignOpened
from shared.contracts.streams import StreamKeys
from shared.runtime.log.client import EventLog, Replication
from shared.runtime.redis_connect import redis_client

pytestmark = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("redis-cli")), reason="redis-server and redis-cli needed"
)


def test_an_append_follows_its_shard_when_the_primary_is_killed(tmp_path):
    cluster = start_cluster(tmp_path / "cluster", first_port=19611, replicas=2, node_timeout_ms=1000)
    keys = StreamKeys("lyon")
    slot = key_slot(keys.rectorat.encode())
    try:
        before = cluster.owner(slot)

        async def run():
            client = redis_client(SimpleNamespace(redis_url="", redis_cluster_nodes=cluster.nodes))
            try:
                log = EventLog(client, keys, replication=Replication(replicas=1, timeout_ms=5000))
                opened = make_event(CampaignOpened(bonus_points=2500), actor=RECTORAT, campaign=CAMPAIGN)
                assert (await log.append(opened, "rectorat", 0, "f")).status == "ok"
                cluster.kill(before)
                started = time.monotonic()
                event = make_event(registered(), actor=PRINCIPAL, ine="000000001LA")
                appended = await log.append(event, "registration", 0, "f")
                took = time.monotonic() - started
                again = await log.append(event, "registration", 0, "f")
                return appended, again, took
            finally:
                await client.aclose()

        appended, again, took = asyncio.run(run())
        assert appended.status == "ok" and again.status == "duplicate"
        after = cluster.owner(slot)
        assert after != before
        new_primary = cluster.client(after)
        assert new_primary.xlen(keys.rectorat) == 1  # acknowledged before the kill: still there
        assert new_primary.xlen(keys.student(CAMPAIGN, "000000001LA")) == 1
        print(f"append after the primary's kill acknowledged in {took:.1f} s")
        assert took < 15
    finally:
        cluster.stop()
