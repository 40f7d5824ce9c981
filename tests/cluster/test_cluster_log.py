"""SPEC §9, several académies on one Redis Cluster (issue 17 part 3): three académies on a 3-primary cluster
(each primary with a replica) started by the test on loopback. Each académie's flow goes through the log's
own client (PASSPRO_REDIS_CLUSTER_NODES: shared/runtime/redis_connect.py) — the append script with WAIT 1 on
the shard's primary, scoring's consumer, the checkpoints — then every key of an académie is on one slot and
one primary (and its replica), and `passpro audit verify` passes for each académie."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from redis.cluster import key_slot

from event_factories import RECTORAT, journey, make_event
from redis_cluster import RedisClusterProcesses, start_cluster
from services.cli import main
from services.records.checkpoints import record_checkpoints
from services.scoring.app import MIGRATIONS
from services.scoring.views import BonusProjection
from shared.contracts.events import CampaignOpened
from shared.contracts.streams import StreamKeys
from shared.runtime.db import make_engine
from shared.runtime.log.client import EventLog, Replication
from shared.runtime.migrations import upgrade
from shared.runtime.projection.consumer import Consumer
from shared.runtime.redis_connect import redis_client

pytestmark = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("redis-cli")), reason="redis-server and redis-cli needed"
)

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
# Their hash tags' slots (1541, 9244, 15310) fall on the three primaries of a cluster `redis-cli --cluster
# create` splits evenly: one académie on each shard.
ACADEMIES = ("lyon", "lille", "paris")
STUDENTS = {"000000001LA": "favorable", "000000002LA": "reserve", "000000003LA": None}
CHECKPOINT_KEY = secrets.token_urlsafe(40)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    processes = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield processes
    processes.stop()


def cluster_client(cluster: RedisClusterProcesses):
    settings = SimpleNamespace(redis_url="", redis_cluster_nodes=cluster.nodes)
    return redis_client(settings, decode_responses=True, encoding_errors="surrogateescape")


async def flow(cluster: RedisClusterProcesses, academie: str, engine) -> None:
    """The campaign opened and three students' journeys, each append acknowledged once on the shard's
    replica; a retry answers `duplicate`, a stale version `conflict`; scoring's view caught up; checkpoints."""
    client = cluster_client(cluster)
    keys = StreamKeys(academie)
    try:
        log = EventLog(client, keys, replication=Replication(replicas=1, timeout_ms=5000))
        opened = make_event(CampaignOpened(bonus_points=2500), actor=RECTORAT, campaign=CAMPAIGN)
        assert (await log.append(opened, "rectorat", 0, "f")).status == "ok"
        for ine, avis in STUDENTS.items():
            for version, (service, payload, actor) in enumerate(journey(avis)):
                event = make_event(payload, actor=actor, ine=ine)
                appended = await log.append(event, service, version, "f")
                assert appended.status == "ok", appended
                again = await log.append(event, service, version, "f")
                assert again.status == "duplicate" and again.positions.as_dict() == appended.positions.as_dict()
            stale = make_event(journey(avis)[0][1], actor=journey(avis)[0][2], ine=ine)
            assert (await log.append(stale, "registration", 0, "f")).status == "conflict"
        applied = await Consumer(client, engine, keys, BonusProjection(), keystore=None).catch_up()
        assert applied > 0
        outcomes = await record_checkpoints(client, engine, keys, CHECKPOINT_KEY.encode())
        assert {o.stream for o in outcomes if o.status == "recorded"} == {
            keys.rectorat, *keys.campaign_streams(CAMPAIGN)[:2]
        }
    finally:
        await client.aclose()


def env(cluster: RedisClusterProcesses, academie: str, database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        "PASSPRO_REDIS_CLUSTER_NODES": cluster.nodes,
        "PASSPRO_ACADEMIE": academie,
        "PASSPRO_CAMPAIGN": CAMPAIGN,
        "PASSPRO_SCORING_DATABASE_URL": database_url,
        "PASSPRO_JWT_SECRET": "s" * 48,
        "PASSPRO_MASTER_KEY": "bWFzdGVyLWtleS1mb3ItdGhlLWF1ZGl0ZWQtdGVzdHM=",
        "PASSPRO_CHECKPOINT_KEY": CHECKPOINT_KEY,
        "PASSPRO_DATA_DIR": str(data_dir),
    }


def test_three_academies_each_on_its_own_shard_and_each_verifies(cluster, tmp_path, monkeypatch, capsys):
    owners = {a: cluster.owner(key_slot(StreamKeys(a).rectorat.encode())) for a in ACADEMIES}
    assert sorted(owners.values()) == cluster.primaries()  # one académie on each primary

    for academie in ACADEMIES:
        database_url = f"sqlite:///{tmp_path / f'scoring-{academie}.sqlite3'}"
        upgrade(MIGRATIONS, database_url, None)
        engine = make_engine(database_url, None)
        try:
            asyncio.run(flow(cluster, academie, engine))
        finally:
            engine.dispose()

        for name, value in env(cluster, academie, database_url, tmp_path / academie).items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("PASSPRO_REDIS_SENTINELS", raising=False)
        monkeypatch.delenv("PASSPRO_SCORING_DATABASE_SCHEMA", raising=False)
        assert main(["audit", "verify"]) == 0, capsys.readouterr()
        said = capsys.readouterr().out
        assert "Aucune différence" in said, said

    for academie in ACADEMIES:
        pattern = f"{StreamKeys(academie).prefix}:*"
        held = {port: sorted(cluster.client(port).keys(pattern)) for port in cluster.primaries()}
        # Every key of the académie on the primary owning its hash tag's slot, none on the others.
        assert {port for port, found in held.items() if found} == {owners[academie]}
        found = held[owners[academie]]
        assert len(found) >= 3 + 1 + 2 + 2  # students, rectorat, two service streams, event ids...
        first = cluster.client(owners[academie])
        slots = {first.cluster("keyslot", key) for key in found}
        assert slots == {key_slot(StreamKeys(academie).rectorat.encode())}
        # WAIT 1 acknowledged each write once on the shard's replica: the replica holds the streams.
        replica = cluster.client(replica_of(cluster, owners[academie]))
        replica.execute_command("READONLY")
        student = StreamKeys(academie).student(CAMPAIGN, "000000001LA")
        assert replica.xlen(student) == first.xlen(student) == len(journey("favorable"))


def replica_of(cluster: RedisClusterProcesses, primary: int) -> int:
    """The port of the primary's replica, as the primary sees it (CLUSTER SLOTS lists it only once gossiped)."""
    return int(cluster.client(primary).info("replication")["slave0"]["port"])


def test_an_append_sent_to_a_primary_that_no_longer_owns_the_slot_follows_the_move(cluster):
    """The client's slot table says the académie is on another primary (as after a failover or a
    resharding): that primary answers MOVED, the client reloads the slots and appends on the right one."""
    academie = "versailles"
    keys = StreamKeys(academie)

    async def run():
        client = cluster_client(cluster)
        try:
            await client.initialize()
            slot = key_slot(keys.rectorat.encode())
            right = client.get_node_from_key(keys.rectorat)
            wrong = next(node for node in client.get_primaries() if node.name != right.name)
            client.nodes_manager.slots_cache[slot] = [wrong]
            log = EventLog(client, keys, replication=Replication(replicas=1, timeout_ms=5000))
            opened = make_event(CampaignOpened(bonus_points=2500), actor=RECTORAT, campaign="2031")
            appended = await log.append(opened, "rectorat", 0, "f")
            return appended, client.get_node_from_key(keys.rectorat).name, right.name
        finally:
            await client.aclose()

    appended, now, right = asyncio.run(run())
    assert appended.status == "ok"
    assert now == right
    owner = cluster.owner(key_slot(keys.rectorat.encode()))
    assert cluster.client(owner).xlen(keys.rectorat) == 1
