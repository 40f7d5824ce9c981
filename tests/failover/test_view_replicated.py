"""SPEC §9, black-box on loopback: a view never applies an entry its replicas do not have.

A Valkey primary, two replicas, three Sentinels (sentinel_group.py) and registration as a `passpro serve`
process through PASSPRO_REDIS_SENTINELS (one replica required, the default). With the replicas frozen
(SIGSTOP) a registration answers 503 but its entry is on the primary: registration's consumer reads it, and
does not apply it (its reader's marker, written at each try, shows it tried); thawed, the entry is
replicated and the student listed. With the replicas killed, an entry on the primary alone is never
applied, and the primary lost with it: the replicas come back, one is promoted, the entry is gone from the
log and the view never had it; the next registration is listed."""

from __future__ import annotations

import json
import secrets
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from sentinel_group import SentinelGroup

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from passpro_processes import Passpro, base_env  # noqa: E402

pytestmark = pytest.mark.e2e

REFERENCE = json.loads((Path(__file__).resolve().parents[2] / "shared/contracts/reference/paris.json").read_text())
COLLEGE = next(e for e in REFERENCE["establishments"] if e["type"] == "college")["uai"]
from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
ACADEMIE = "replicated-view"
NODE_PORTS = [9500, 9501, 9502]
SENTINEL_PORTS = [9510, 9511, 9512]
REGISTRATION_PORT = 9520
READER = f"passpro:{{{ACADEMIE}}}:reader:registration-students"  # the consumer's marker (consumer.py)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    (tmp_path / "log").mkdir()
    group = SentinelGroup(tmp_path / "log", NODE_PORTS, SENTINEL_PORTS)
    try:
        group.start()
        yield group
    finally:
        for node in group.nodes.values():  # a frozen node would never stop
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGCONT)
        group.stop()


@pytest.fixture
def registration(group: SentinelGroup, tmp_path: Path) -> Iterator[httpx.Client]:
    env = base_env("redis://127.0.0.1:1/0", ACADEMIE, secrets.token_hex(32), tmp_path) | {
        "PASSPRO_REDIS_SENTINELS": group.sentinels_setting,
        "PASSPRO_REDIS_REPLICA_TIMEOUT_MS": "500",
    }
    system = Passpro(env=env, workdir=tmp_path)
    try:
        system.cli("migrate")
        system.cli("campaign", "open", CAMPAIGN)
        service = system.start("registration", REGISTRATION_PORT)
        system.wait_ready("registration", timeout=60)
        token = system.token("principal", "principal-1", COLLEGE)
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            yield client
    finally:
        system.stop_all()
        print(system.logs()[-20000:])  # shown by pytest only when the test failed


def register(client: httpx.Client, ine: str, event_id: str | None = None) -> httpx.Response:
    return client.post("/api/students", json={
        "event_id": event_id or str(uuid.uuid4()), "student_ine": ine, "campaign": CAMPAIGN, "college_uai": COLLEGE,
        "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
        "referent": {"user_id": "referent-1", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
    })


def listed(client: httpx.Client, min_position: str | None = None) -> set[str]:
    params = {"min_position": min_position} if min_position else {}
    answer = client.get("/api/students", params=params)
    assert answer.status_code == 200, answer.text
    return {s["ine"] for s in answer.json()["items"]}


def on_primary(group: SentinelGroup, ine: str) -> int:
    return redis.Redis(port=group.primary_port()).xlen(f"passpro:{{{ACADEMIE}}}:{CAMPAIGN}:student:{ine}")


def tried_not_applied(group: SentinelGroup, client: httpx.Client, moment: float, ine: str, tries: int = 3,
                      timeout: float = 30) -> None:
    """Until registration's consumer has tried `tries` times since `moment` to have its page replicated (its
    marker holds the time of its last try: it did read the entry), the student never listed meanwhile."""
    log = redis.Redis(port=group.primary_port())
    deadline, seen = time.monotonic() + timeout, set()
    while len(seen) < tries:
        assert ine not in listed(client), f"{ine} applied by the view while on no replica"
        assert time.monotonic() < deadline, f"registration's consumer tried {len(seen)} times in {timeout} s"
        value = log.get(READER)
        if value is not None and float(value) > moment:
            seen.add(value)
        time.sleep(0.05)


def until_listed(client: httpx.Client, ine: str, timeout: float = 30) -> float:
    started = time.monotonic()
    while ine not in listed(client):
        assert time.monotonic() - started < timeout, f"{ine} not listed after {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_the_view_waits_for_the_replicas(group: SentinelGroup, registration: httpx.Client) -> None:
    first = register(registration, "100000001RV")
    assert first.status_code == 201, first.text
    assert "100000001RV" in listed(registration, first.json()["positions"]["service"])

    primary = group.primary_port()
    replicas = [group.nodes[port] for port in NODE_PORTS if port != primary]
    for node in replicas:  # frozen: connected, acknowledging nothing
        node.process.send_signal(signal.SIGSTOP)
    try:
        moment = time.time()
        refused = register(registration, "100000002RV")
        assert refused.status_code == 503, refused.text  # not on a replica in time
        assert on_primary(group, "100000002RV") == 1  # but stored on the primary
        tried_not_applied(group, registration, moment, "100000002RV")  # read, and not applied
    finally:
        for node in replicas:
            node.process.send_signal(signal.SIGCONT)
    waited = until_listed(registration, "100000002RV")  # replicated now: applied
    print(f"\nlisted {waited:.2f} s after the replicas were thawed")

    # The replicas lost (their disks kept): an entry on the primary alone, then the primary lost with it.
    for node in replicas:
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(10)
        node.process = None
    moment = time.time()
    refused = register(registration, "100000003RV")
    assert refused.status_code == 503, refused.text
    assert on_primary(group, "100000003RV") == 1
    tried_not_applied(group, registration, moment, "100000003RV")
    group.nodes[primary].kill()  # SIGKILL, its data directory deleted
    for node in replicas:
        node.start(primary)  # back from their disks, replicas of a primary that is gone
    deadline = time.monotonic() + 60
    while group.primary_port() == primary:
        assert time.monotonic() < deadline, "no failover after 60 s"
        time.sleep(0.1)
    new = group.primary_port()
    group.wait_sentinels_agree(new)
    assert on_primary(group, "100000003RV") == 0  # gone from the log with its primary

    deadline, event_id = time.monotonic() + 60, str(uuid.uuid4())
    while (after := register(registration, "100000004RV", event_id)).status_code == 503:  # the replica left lags a moment
        assert time.monotonic() < deadline, after.text
        time.sleep(0.2)
    assert after.status_code in (200, 201), after.text
    waited = until_listed(registration, "100000004RV", timeout=60)
    print(f"listed {waited:.2f} s after acknowledged")
    assert listed(registration, after.json()["positions"]["service"]) == {"100000001RV", "100000002RV", "100000004RV"}
