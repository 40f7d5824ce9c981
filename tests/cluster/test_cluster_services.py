"""The services on a Redis Cluster (PASSPRO_REDIS_CLUSTER_NODES): two académies' registration services in
process, each writing a student over HTTP (the handlers' reads in one MULTI, the append with WAIT 1 on the
académie's shard) and listing it once its own view (the consumer on the cluster) has applied it. Its own
cluster on ports 19631-19636."""

from __future__ import annotations

import shutil

import pytest
from redis.cluster import key_slot

from event_factories import CAMPAIGN  # the campaign to come, which open_campaign opens
from in_services_world import load
from redis_cluster import start_cluster

world = load()
COLLEGE = "0752536Z"  # Collège Voltaire (the shipped reference)


def student_body(ine: str) -> dict:
    referent = {"user_id": "referent-dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"}
    return {"student_ine": ine, "college_uai": COLLEGE, "last_name": "Martin", "first_name": "Léa",
            "class_name": "3e B", "referent": referent}

pytestmark = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("redis-cli")), reason="redis-server and redis-cli needed"
)


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory):
    processes = start_cluster(tmp_path_factory.mktemp("cluster"), first_port=19631)
    yield processes
    processes.stop()


def test_two_academies_register_students_through_the_services(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("PASSPRO_REDIS_CLUSTER_NODES", cluster.nodes)
    monkeypatch.setenv("PASSPRO_REDIS_MIN_REPLICAS", "1")
    for academie, ine in (("lyon", "000000001LA"), ("paris", "000000002LA")):
        passpro = world.Passpro(redis_url="redis://127.0.0.1:1/0", academie=academie, data_dir=tmp_path / academie)
        passpro.data_dir.mkdir()
        passpro.open_campaign()
        with passpro.client("registration") as registration:
            principal = passpro.auth("principal", COLLEGE)
            written = registration.post("/api/students", json=student_body(ine), headers=principal)
            assert written.status_code == 201, written.text
            position = written.json()["positions"]["service"]
            listed = registration.get("/api/students", params={"min_position": position}, headers=principal)
            assert listed.status_code == 200, listed.text  # the view applied it (read-your-writes)
            assert [s["ine"] for s in listed.json()["items"]] == [ine]
        owner = cluster.client(cluster.owner(key_slot(passpro.keys.rectorat.encode())))
        assert owner.xlen(passpro.keys.student(CAMPAIGN, ine)) == 1
