"""SPEC §9 over HTTP, in process: a write that cannot be had on the required replicas in time answers 503
with the true message (it may have been stored; send it again with the same event_id), and the retry is
safe: it answers as the original once the original is replicated, never storing it twice.

The log here is the tests' Redis 7.0 with no replica: WAITAOF is unknown there, so the log falls back to
WAIT (the path a Redis before 7.2 takes), which finds no replica."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync
from fastapi.testclient import TestClient

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
from tests.in_services_world import load

world_module = load()
REFERENCE = json.loads((Path(__file__).resolve().parents[2] / "shared/contracts/reference/paris.json").read_text())
COLLEGE = next(e for e in REFERENCE["establishments"] if e["type"] == "college")["uai"]


@pytest.fixture
def world(redis_url: str, academie: str, tmp_path: Path) -> Iterator:
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        replicas = client.info("replication").get("connected_slaves", 0)
        if replicas:
            pytest.skip(f"the tests' Redis has {replicas} replica(s): this test needs one without")
        passpro = world_module.Passpro(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client)
        passpro.open_campaign()
        yield passpro


@contextlib.contextmanager
def registration(world, **replication) -> Iterator[TestClient]:
    _, _, create_app = world_module._service("registration")
    world.migrate("registration")
    settings = world.settings("registration").model_copy(update=replication)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_not_on_its_replicas_in_time_answers_503_and_the_retry_answers_as_the_original(world) -> None:
    ine = "123456789FR"
    body = {
        "event_id": str(uuid.uuid4()), "student_ine": ine, "campaign": CAMPAIGN, "college_uai": COLLEGE,
        "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
        "referent": {"user_id": "referent-1", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
    }
    headers = world.auth("principal", COLLEGE)
    with registration(world, redis_min_replicas=1, redis_replica_timeout_ms=100) as api:
        refused = api.post("/api/students", json=body, headers=headers)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "unavailable"
        assert "a pu être enregistrée" in refused.json()["message"] and "même event_id" in refused.json()["message"]
        assert refused.headers["Retry-After"]
        assert world.xlen(world.student_stream(ine)) == 1  # it may have been stored: here it was, once

        again = api.post("/api/students", json=body, headers=headers)  # still no replica: still not acknowledged
        assert again.status_code == 503, again.text
        assert world.xlen(world.student_stream(ine)) == 1

    with registration(world, redis_min_replicas=0) as api:  # what the retry answers once replicated
        retried = api.post("/api/students", json=body, headers=headers)
        assert retried.status_code == 200, retried.text
        assert retried.json()["event"]["event_id"] == body["event_id"]
        assert world.xlen(world.student_stream(ine)) == 1
        assert world.xlen(world.service_stream("registration")) == 1
