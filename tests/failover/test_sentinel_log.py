"""SPEC §9, in process: the log's client through three Sentinels follows a failover without a restart (the
append script loaded again on the new primary), a write is acknowledged only once on the replicas
(WAITAOF), and one not replicated in time is refused as unavailable — the retry with the same event_id
answers as the original once it is replicated."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from event_factories import college_avis, ine_number, make_event, registered
from sentinel_group import SentinelGroup
from shared.contracts.streams import StreamKeys
from shared.runtime.http.guard import UNAVAILABLE_ERRORS
from shared.runtime.log.client import EventLog, NotReplicated, Replication
from shared.runtime.redis_connect import min_replicas, parse_sentinels, redis_client

NODE_PORTS = [19010, 19011, 19012]
SENTINEL_PORTS = [19020, 19021, 19022]


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path_factory.mktemp("sentinels"), NODE_PORTS, SENTINEL_PORTS)
    try:
        group.start()
        yield group
    finally:
        group.stop()


def settings_for(group: SentinelGroup, **more) -> SimpleNamespace:
    return SimpleNamespace(
        redis_url="redis://127.0.0.1:1/0",  # nothing there: the Sentinels take precedence
        redis_sentinels=group.sentinels_setting, redis_sentinel_service="passpro", **more,
    )


def on_every_node(group: SentinelGroup, key: str) -> dict[int, int]:
    return {port: redis.Redis(port=port).xlen(key) for port in group.node_ports}


def test_settings_of_the_sentinels() -> None:
    assert parse_sentinels("a:26379, b:26380,c") == [("a", 26379), ("b", 26380), ("c", 26379)]
    with pytest.raises(ValueError, match="hôte:port"):
        parse_sentinels("a:port")
    assert min_replicas(SimpleNamespace(redis_sentinels="a:1", redis_min_replicas=None)) == 1
    assert min_replicas(SimpleNamespace(redis_sentinels="", redis_min_replicas=None)) == 0
    assert min_replicas(SimpleNamespace(redis_sentinels="a:1", redis_min_replicas=2)) == 2
    cluster = {"redis_sentinels": "", "redis_cluster_nodes": "a:7000"}  # each shard's primary has a replica
    assert min_replicas(SimpleNamespace(**cluster, redis_min_replicas=None)) == 1
    assert min_replicas(SimpleNamespace(**cluster, redis_min_replicas=0)) == 0
    assert issubclass(NotReplicated, UNAVAILABLE_ERRORS)  # the API answers it 503, with the retry message


async def test_acknowledged_on_the_replicas_and_across_failovers(group: SentinelGroup) -> None:
    keys = StreamKeys("failover-a")
    client = redis_client(settings_for(group), decode_responses=True)
    log = EventLog(client, keys, replication=Replication(replicas=2, timeout_ms=5000, aof=True))
    try:
        first = make_event(registered(), ine=ine_number(1))
        done = await log.append(first, "registration", 0, "fp-1")
        assert done.status == "ok"
        first_positions = done.positions
        student = keys.student(first.campaign, first.student_ine)
        assert set(on_every_node(group, student).values()) == {1}  # on the primary and both replicas
        assert log._waitaof  # Valkey 9 has WAITAOF: fsynced on the primary's AOF and the replicas'

        for n in range(2, 5):  # three lost primaries, the same client all along
            old, new = group.lose_primary()
            assert new != old
            started = time.monotonic()
            event = make_event(registered(), ine=ine_number(n))
            done = await log.append(event, "registration", 0, f"fp-{n}")  # NOSCRIPT on the new primary: loaded
            assert done.status == "ok", done
            assert time.monotonic() - started < 15
            group.wait_replicas(new, 2)
            # every acknowledged write survived each loss, once
            for m in range(1, n + 1):
                assert redis.Redis(port=new).xlen(keys.student(first.campaign, ine_number(m))) == 1

        again = await log.append(first, "registration", 0, "fp-1")  # a retry after the failovers
        assert again.status == "duplicate" and again.fingerprint == "fp-1"
        assert again.positions.as_dict() == first_positions.as_dict()
    finally:
        await client.aclose()


async def test_not_replicated_in_time_is_unavailable_and_the_retry_is_safe(group: SentinelGroup) -> None:
    keys = StreamKeys("failover-b")
    client = redis_client(settings_for(group), decode_responses=True)
    try:
        group.wait_replicas(group.primary_port(), 2)
        impossible = EventLog(client, keys, replication=Replication(replicas=3, timeout_ms=200))  # 2 replicas only
        event = make_event(registered(), ine=ine_number(7))
        with pytest.raises(NotReplicated):
            await impossible.append(event, "registration", 0, "fp-7")
        student = keys.student(event.campaign, event.student_ine)
        assert redis.Redis(port=group.primary_port()).xlen(student) == 1  # it may have been stored: it was

        with pytest.raises(NotReplicated):  # the retry too waits for the original's replication
            await impossible.append(event, "registration", 0, "fp-7")
        with pytest.raises(NotReplicated):
            await impossible.prior_append(str(event.event_id), event.campaign)

        log = EventLog(client, keys, replication=Replication(replicas=2, timeout_ms=5000))
        retried = await log.append(event, "registration", 0, "fp-7")
        assert retried.status == "duplicate" and retried.fingerprint == "fp-7"
        prior = await log.prior_append(str(event.event_id), event.campaign)
        assert prior is not None and prior.positions == retried.positions
        assert set(on_every_node(group, student).values()) == {1}  # stored once, everywhere

        following = make_event(college_avis(), ine=ine_number(7))
        assert (await log.append(following, "registration", 1, "fp-8")).status == "ok"
        assert set(on_every_node(group, student).values()) == {2}
    finally:
        await client.aclose()


def test_a_log_without_replicas_required_answers_as_before(tmp_path: Path) -> None:
    assert Replication().replicas == 0
