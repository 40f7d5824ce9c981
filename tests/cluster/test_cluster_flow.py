"""SPEC §9, issue 17 ("the cluster test"), black-box: three académies on one Redis Cluster of three primaries,
a replica each (its own ports 19641-19646; the services on 9600-9608). Each académie has its three services as
`passpro serve` processes (PASSPRO_REDIS_CLUSTER_NODES; PASSPRO_REDIS_URL points at nothing;
PASSPRO_REDIS_MIN_REPLICAS=1), all nine running at once, and its users drive its students over HTTP through the
whole flow, the three académies at the same time: registration, a lycée's slot opened and booked (or a free
time), collège avis, interview held, lycée avis, the collège's list. Then: each académie's scoring gives its
students' bonuses and knows no other académie's student, every key on the cluster belongs to one académie and
sits on the slot its hash tag names, on the primary serving that slot (the streams on its replica too), and
`passpro audit verify` passes for each académie. A key written without its hash tag fails it (tried once with
StreamKeys.access_log untagged: "passpro:lyon:2027:access:… carries no académie's hash tag")."""

from __future__ import annotations

import secrets
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from redis.cluster import key_slot

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
from redis_cluster import RedisClusterProcesses, start_cluster
from shared.contracts.reference import default_reference_text, parse_reference
from shared.contracts.streams import StreamKeys
from shared.runtime.http.auth import issue_token

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from passpro_processes import SERVICES, Passpro, base_env, running  # noqa: E402

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (shutil.which("redis-server") and shutil.which("redis-cli")),
                       reason="redis-server and redis-cli needed"),
]

BONUS = 2500  # `passpro campaign open`'s default bonus
# Their hash tags' slots (1541, 9244, 15310) fall on the three primaries of a cluster `redis-cli --cluster
# create` splits evenly: one académie on each shard.
ACADEMIES = ("lyon", "lille", "paris")
SERVICE_PORTS = {"lyon": 9600, "lille": 9603, "paris": 9606}  # each académie's three services: 9600-9608
REFERENCE = parse_reference(default_reference_text())
COLLEGE = next(e for e in REFERENCE.establishments if e.type == "college").uai
_LYCEE = next(e for e in REFERENCE.establishments if e.type == "lycee")
LYCEE, FORMATION = _LYCEE.uai, _LYCEE.formations[0].code
# Each académie's students (INEs of its own, so a leak shows): lycée avis, and booked on the slot or a free time.
STUDENTS = (("favorable", "slot"), ("reserve", "slot"), ("favorable", "free_time"))


def ines(academie: str) -> list[str]:
    return [f"{ACADEMIES.index(academie) + 1}{n:08d}CL" for n in range(1, len(STUDENTS) + 1)]


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory):
    processes = start_cluster(tmp_path_factory.mktemp("cluster"), first_port=19641)
    yield processes
    processes.stop()


class Api:
    """One user of one académie's service, over HTTP."""

    def __init__(self, url: str, secret: str, role: str, uai: str | None = None) -> None:
        token = issue_token(secret, user_id=f"{role}-1", role=role, uai=uai, reference=REFERENCE)
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def post(self, path: str, body: dict) -> dict:
        answer = self.http.post(path, json=body)
        assert answer.status_code == 201, f"POST {path} -> {answer.status_code} {answer.text}"
        return answer.json()

    def get(self, path: str, expect: int = 200, **params: str) -> dict:
        answer = self.http.get(path, params=params)
        assert answer.status_code == expect, f"GET {path} -> {answer.status_code} {answer.text}"
        return answer.json()


def flow(system: Passpro, secret: str, academie: str) -> None:
    """One académie's users drive its students through the flow; its rectorat then sees its bonuses only."""
    urls = {name: service.url for name, service in system.services.items()}
    principal = Api(urls["registration"], secret, "principal", COLLEGE)
    referent = Api(urls["registration"], secret, "referent", COLLEGE)
    staff = Api(urls["evaluation"], secret, "lycee_staff", LYCEE)
    proviseur = Api(urls["evaluation"], secret, "proviseur", LYCEE)
    rectorat = Api(urls["scoring"], secret, "rectorat")
    now = datetime.now(UTC).replace(microsecond=0)
    slot = staff.post("/api/slots", {
        "lycee_uai": LYCEE, "formation_code": FORMATION, "starts_at": (now + timedelta(days=30)).isoformat(),
        "duration_minutes": 20, "capacity": 2, "mode": "presentiel", "place": "Salle 12",
    })["event"]["payload"]["slot_id"]
    last = {}
    for ine, (avis, booking) in zip(ines(academie), STUDENTS):
        principal.post("/api/students", {
            "student_ine": ine, "campaign": CAMPAIGN, "college_uai": COLLEGE, "last_name": "Martin",
            "first_name": "Léa", "class_name": "3e B",
            "referent": {"user_id": "referent-1", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
        })
        booked = {"slot_id": slot} if booking == "slot" else {
            "lycee_uai": LYCEE, "formation_code": FORMATION, "mode": "presentiel",
            "scheduled_at": (now + timedelta(days=7)).isoformat()}
        scheduled = referent.post(f"/api/students/{ine}/interviews", booked)["event"]["payload"]
        assert (scheduled.get("slot_id") == slot) == (booking == "slot"), scheduled
        collected = principal.post(f"/api/students/{ine}/college-avis",
                                   {"college_uai": COLLEGE, "avis": "favorable", "comment": "Élève motivée."})
        staff.post(f"/api/students/{ine}/interviews/held", {
            "lycee_uai": LYCEE, "formation_code": FORMATION, "mode": "presentiel",
            "held_at": (now - timedelta(minutes=5)).isoformat(),
            "report": {"motivation": "tres_satisfaisante", "chances_of_success": "satisfaisante",
                       "advice": "Continuer ainsi."},
        })
        last = proviseur.post(f"/api/students/{ine}/lycee-avis",
                              {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": avis})
    # The collège's list (its reading logged in each student's access stream): its students, no one else's.
    listed = principal.get("/api/students", min_position=collected["positions"]["service"])["items"]
    assert sorted(s["ine"] for s in listed) == ines(academie), (academie, listed)
    position = last["positions"]["service"]  # scoring's view has applied the last write: read-your-writes
    for ine, (avis, _) in zip(ines(academie), STUDENTS):
        bonus = rectorat.get(f"/api/bonuses/{ine}", min_position=position)
        expected = BONUS if avis == "favorable" else 0
        assert bonus["total_bonus_points"] == expected, (academie, ine, bonus)
        assert [(v["lycee_uai"], v["lycee_avis"], v["bonus_points"]) for v in bonus["voeux"]] == [
            (LYCEE, avis, expected)]
    rows = rectorat.get("/api/bonuses", min_position=position)["items"]
    assert sorted(row["ine"] for row in rows) == ines(academie), (academie, rows)
    for other in ACADEMIES:
        if other != academie:
            rectorat.get(f"/api/bonuses/{ines(other)[0]}", expect=404)


def verify(system: Passpro) -> str:
    """`passpro audit verify` once scoring's view has applied the whole log."""
    deadline = time.monotonic() + 60
    while True:
        said = system.cli("audit", "verify").stdout
        if "pas encore appliquées" not in said or time.monotonic() > deadline:
            return said
        time.sleep(0.5)


def test_three_academies_run_the_whole_flow_over_http_each_on_its_own_shard(cluster: RedisClusterProcesses, tmp_path):
    slots = {a: key_slot(StreamKeys(a).rectorat.encode()) for a in ACADEMIES}
    owners = {a: cluster.owner(slots[a]) for a in ACADEMIES}
    assert sorted(owners.values()) == cluster.primaries()  # one académie on each primary

    started = time.monotonic()
    with ExitStack() as stack:
        secrets_of = {a: secrets.token_hex(32) for a in ACADEMIES}

        def start(academie: str) -> Passpro:
            workdir = tmp_path / academie
            workdir.mkdir()
            env = base_env("redis://127.0.0.1:1/0", academie, secrets_of[academie], workdir) | {
                "PASSPRO_REDIS_CLUSTER_NODES": cluster.nodes, "PASSPRO_REDIS_MIN_REPLICAS": "1",
            } | {f"PASSPRO_{name.upper()}_DATABASE_URL": f"sqlite:///{workdir / f'{name}.sqlite3'}"
                 for name in SERVICES}
            ports = {name: SERVICE_PORTS[academie] + n for n, name in enumerate(SERVICES)}
            return stack.enter_context(running(Passpro(env=env, workdir=workdir), CAMPAIGN, ports))

        with ThreadPoolExecutor(len(ACADEMIES)) as pool:  # the académies started side by side
            systems = dict(zip(ACADEMIES, pool.map(start, ACADEMIES)))
        ready = time.monotonic()
        # Each answering port is this test's process (a port another program took would answer /readyz too).
        assert all(s.running() for system in systems.values() for s in system.services.values())

        failures: list[BaseException] = []

        def drive(academie: str) -> None:
            try:
                flow(systems[academie], secrets_of[academie], academie)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=drive, args=(a,)) for a in ACADEMIES]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        assert not failures, failures
        flowed = time.monotonic()

        # Every key on the cluster is one académie's, on its hash tag's slot and the primary serving it.
        held: dict[str, set[str]] = {a: set() for a in ACADEMIES}
        for port in cluster.primaries():
            node = cluster.client(port)
            for key in node.scan_iter(count=1000):
                academie = next((a for a in ACADEMIES if key.startswith(f"{StreamKeys(a).prefix}:")), None)
                assert academie, f"{key} (on {port}) carries no académie's hash tag"
                assert node.cluster("keyslot", key) == slots[academie], key
                assert port == owners[academie], f"{key} on {port}, its académie on {owners[academie]}"
                held[academie].add(key)
        for academie in ACADEMIES:
            keys = StreamKeys(academie)
            streams = {keys.rectorat, keys.service(CAMPAIGN, "registration"), keys.service(CAMPAIGN, "evaluation"),
                       *(keys.student(CAMPAIGN, i) for i in ines(academie))}
            assert streams <= held[academie], streams - held[academie]
            assert any(":slot:" in key for key in held[academie]), held[academie]
            assert {keys.access_log(CAMPAIGN, i) for i in ines(academie)} <= held[academie], held[academie]
            # Each write was acknowledged once on the shard's replica (WAIT 1): the replica holds the streams.
            primary = cluster.client(owners[academie])
            replica = cluster.client(int(primary.info("replication")["slave0"]["port"]))
            replica.execute_command("READONLY")
            for stream in sorted(streams):
                assert replica.xlen(stream) == primary.xlen(stream), stream

        with ThreadPoolExecutor(len(ACADEMIES)) as pool:
            for academie, said in zip(ACADEMIES, pool.map(verify, systems.values())):
                assert "Aucune différence" in said, (academie, said)
        verified = time.monotonic()
    print(f"\ncluster flow: {len(ACADEMIES)} académies × {len(SERVICES)} services ready in {ready - started:.1f} s, "
          f"{len(STUDENTS)} students each through the flow at once in {flowed - ready:.1f} s, "
          f"audit verify ×{len(ACADEMIES)} in {verified - flowed:.1f} s")
