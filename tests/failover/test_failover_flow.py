"""SPEC §9, black-box on loopback: the log survives the loss of its server.

A Valkey primary, two replicas and three Sentinels (sentinel_group.py); two `passpro serve` processes of
each service behind Debian's nginx (tests/replicas/nginx.py), all finding the primary through
PASSPRO_REDIS_SENTINELS (PASSPRO_REDIS_URL points at nothing), the two of a service sharing its PostgreSQL
views, whose lease decides which one applies them. Eight workers drive students through the flow
(registration, interview, collège avis, interview held, lycée avis, then the rectorat reads the bonus)
through nginx only, each write retried with its event_id until acknowledged; meanwhile the primary is lost
three times as a machine is (SIGKILL, data directory deleted). Then: every acknowledged event is in the log
exactly once (and nothing else is), every student's stream is the flow in order with its versions 1..n,
`passpro audit verify` finds the projection equal to its replay, every bonus read was right, every process
answered requests (nginx's log), each view had at most one lease holder whenever looked at (pg_locks), and
the time from each kill to the next acknowledged write is reported."""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

from sentinel_group import SentinelGroup

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replicas"))
from nginx import Nginx, Replicas, behind_nginx, lease_holders  # noqa: E402
from passpro_processes import SERVICES, Passpro, base_env  # noqa: E402

pytestmark = pytest.mark.e2e

REFERENCE = json.loads((Path(__file__).resolve().parents[2] / "shared/contracts/reference/paris.json").read_text())
COLLEGE = next(e for e in REFERENCE["establishments"] if e["type"] == "college")["uai"]
_LYCEE = next(e for e in REFERENCE["establishments"] if e["type"] == "lycee")
LYCEE, FORMATION = _LYCEE["uai"], _LYCEE["formations"][0]["code"]
from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
ACADEMIE = "failover"
NODE_PORTS = [19050, 19051, 19052]
SENTINEL_PORTS = [19060, 19061, 19062]
NGINX_PORTS = {"registration": 19070, "evaluation": 19071, "scoring": 19072}  # the clients' only addresses
PROCESS_PORTS = {name: [9410 + 2 * i, 9411 + 2 * i] for i, name in enumerate(SERVICES)}
WORKERS = 8
KILLS = 3
LAGGING_S = 0.5  # the replicas cut off this long before each loss: writes meanwhile wait for them, or are lost
FLOW = ["StudentRegistered", "InterviewScheduled", "CollegeAvisGiven", "InterviewHeld", "LyceeAvisGiven"]
STEP_PATIENCE_S = 60  # a write not acknowledged after this long fails the test


@dataclass
class Acknowledged:
    event_id: str
    ine: str
    event_type: str
    at: float  # time.monotonic() of the acknowledgement
    sent: float  # time.monotonic() when the attempt acknowledged was sent


@dataclass
class Record:
    lock: threading.Lock = field(default_factory=threading.Lock)
    writes: list[Acknowledged] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # answers other than 201/200 meanwhile, by status

    def ack(self, write: Acknowledged) -> None:
        with self.lock:
            self.writes.append(write)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path / "log", NODE_PORTS, SENTINEL_PORTS)
    (tmp_path / "log").mkdir()
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(postgres_url)
    name = "t_" + uuid.uuid4().hex[:12]
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Deployment:
    passpro: Passpro  # the CLI (migrate, token, audit verify), on the services' settings
    replicas: Replicas
    nginx: Nginx
    database_url: str


@pytest.fixture
def deployment(group: SentinelGroup, database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    env = base_env("redis://127.0.0.1:1/0", ACADEMIE, secrets.token_hex(32), tmp_path) | {
        "PASSPRO_REDIS_SENTINELS": group.sentinels_setting,
        "PASSPRO_REDIS_SENTINEL_SERVICE": "passpro",
        "PASSPRO_DATABASE_URL": database_url,
    }
    passpro = Passpro(env=env, workdir=tmp_path)
    passpro.cli("migrate")
    with behind_nginx(env, tmp_path, PROCESS_PORTS, NGINX_PORTS) as (replicas, nginx):
        yield Deployment(passpro, replicas, nginx, database_url)


def until_answered(
    send: Callable[[], httpx.Response], what: str, record: Record, retry_503: Callable[[dict], bool],
    explain: Callable[[], object] = lambda: "",
) -> tuple[httpx.Response, float]:
    """send() until 200/201: that answer, and when its attempt was sent. In between, a 503 the service says
    may be retried (`retry_503` of its body: while the log changes primary), nginx's 502/504 (no process took
    it, or one died with it) or a connection refused is counted and sent again; anything else fails."""
    deadline = time.monotonic() + STEP_PATIENCE_S
    seen: list[object] = []
    while True:
        sent = time.monotonic()
        try:
            answer = send()
        except httpx.TransportError as exc:
            record.error(type(exc).__name__)
            seen.append(type(exc).__name__)
        else:
            if answer.status_code in (200, 201):
                return answer, sent
            if answer.status_code in (502, 504):  # nginx's own
                record.error(f"{answer.status_code} nginx")
            elif answer.status_code == 503:
                assert retry_503(answer.json()), answer.text
                record.error("503")
            else:
                raise AssertionError(f"{what} -> {answer.status_code} {answer.text} after {seen}; {explain()}")
            seen.append(answer.status_code)
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not answered after {STEP_PATIENCE_S} s: {seen}")
        time.sleep(0.1)


def post_until_acknowledged(
    client: httpx.Client, path: str, body: dict, record: Record, ine: str, event_type: str
) -> dict:
    """POST with the body's event_id until 201 (or 200: the same write, already stored), recorded then."""

    def nodes() -> str:  # where the student's entries are, node by node, for the failure's message
        info = []
        for port in NODE_PORTS:
            try:
                r = redis.Redis(port=port, decode_responses=True, socket_timeout=1)
                key = f"passpro:{{{ACADEMIE}}}:{CAMPAIGN}:student:{ine}"
                info.append((port, r.role()[0], r.xlen(key), r.xlen(f"passpro:{{{ACADEMIE}}}:rectorat")))
            except redis.RedisError as exc:
                info.append((port, repr(exc)))
        return f"nodes {info}"

    answer, sent = until_answered(
        lambda: client.post(path, json=body), f"POST {path}", record, lambda refusal: "même event_id" in refusal["message"], nodes
    )
    record.ack(Acknowledged(body["event_id"], ine, event_type, time.monotonic(), sent))
    return answer.json()


def drive(worker: int, nginx: Nginx, tokens: dict[str, str], record: Record, stop: threading.Event,
          failures: list[BaseException]) -> None:
    def client(service: str, role: str) -> httpx.Client:
        return httpx.Client(base_url=nginx.url(service), headers={"Authorization": f"Bearer {tokens[role]}"}, timeout=30)

    principal, referent = client("registration", "principal"), client("registration", "referent")
    staff, proviseur = client("evaluation", "staff"), client("evaluation", "proviseur")
    rectorat = client("scoring", "rectorat")
    n = 0
    try:
        while not stop.is_set():
            n += 1
            ine = f"{worker:03d}{n:06d}FO"
            now = datetime.now(UTC)
            steps = [
                (principal, "/api/students", {
                    "student_ine": ine, "campaign": CAMPAIGN, "college_uai": COLLEGE, "last_name": "Martin",
                    "first_name": "Léa", "class_name": "3e B",
                    "referent": {"user_id": "referent-1", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
                }),
                (referent, f"/api/students/{ine}/interviews", {
                    "lycee_uai": LYCEE, "formation_code": FORMATION, "mode": "presentiel",
                    "scheduled_at": (now + timedelta(days=7)).isoformat(timespec="seconds"),
                }),
                (principal, f"/api/students/{ine}/college-avis", {
                    "college_uai": COLLEGE, "avis": "favorable", "comment": "Élève motivée.",
                }),
                (staff, f"/api/students/{ine}/interviews/held", {
                    "lycee_uai": LYCEE, "formation_code": FORMATION, "mode": "presentiel",
                    "held_at": (now - timedelta(minutes=5)).isoformat(timespec="seconds"),
                    "report": {"motivation": "tres_satisfaisante", "chances_of_success": "satisfaisante",
                               "advice": "Continuer ainsi."},
                }),
                (proviseur, f"/api/students/{ine}/lycee-avis", {
                    "lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable",
                }),
            ]
            for (http, path, body), event_type in zip(steps, FLOW):
                done = post_until_acknowledged(http, path, {"event_id": str(uuid.uuid4()), **body}, record, ine, event_type)
            # The rectorat reads the bonus through nginx, from either scoring process (the lease's standby too),
            # at least as recent as the lycée's avis.
            answer, _ = until_answered(
                lambda: rectorat.get(f"/api/bonuses/{ine}", params={"min_position": done["positions"]["service"]}),
                f"GET /api/bonuses/{ine}", record, lambda refusal: refusal["error"] in ("unavailable", "view_behind"),
            )
            assert answer.json()["total_bonus_points"] == 2500, answer.text
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        failures.append(exc)
        stop.set()
    finally:
        for http in (principal, referent, staff, proviseur, rectorat):
            http.close()


def log_entries(port: int) -> dict[str, list[dict[str, str]]]:
    """Every stream of the académie on the node at `port`, entries as field dicts."""
    client = redis.Redis(port=port, decode_responses=True)
    streams = {}
    for key in client.scan_iter(match=f"passpro:{{{ACADEMIE}}}:*", count=1000):
        if client.type(key) == "stream":
            streams[key] = [fields for _, fields in client.xrange(key)]
    return streams


def watch_leases(database_url: str, stop: threading.Event, held: dict[str, set[str]], doubled: list) -> None:
    """Until `stop`: who holds each view's lease (pg_locks), every second; two holders at once go to `doubled`."""
    while not stop.is_set():
        for service, names in lease_holders(database_url).items():
            held.setdefault(service, set()).update(names)
            if len(names) > 1:
                doubled.append((service, names))
        stop.wait(1)


def served_by(access_log: str) -> dict[str, int]:
    """Requests answered 200/201 by each process, from nginx's log (its format in nginx.py: the request, its
    status, the processes tried and their statuses): the last process tried is the one that answered."""
    counts: dict[str, int] = {}
    for line in access_log.splitlines():
        status, *tried = line.partition('" ')[2].split()
        if status in ("200", "201"):
            last = [t.rstrip(",") for t in tried if ":" in t][-1]
            counts[last] = counts.get(last, 0) + 1
    return counts


def test_acknowledged_writes_survive_three_lost_primaries(group: SentinelGroup, deployment: Deployment) -> None:
    passpro, nginx = deployment.passpro, deployment.nginx
    tokens = {
        "principal": passpro.token("principal", "principal-1", COLLEGE),
        "referent": passpro.token("referent", "referent-1", COLLEGE),
        "staff": passpro.token("lycee_staff", "staff-1", LYCEE),
        "proviseur": passpro.token("proviseur", "proviseur-1", LYCEE),
        "rectorat": passpro.token("rectorat", "rectorat-1"),
    }
    with httpx.Client(base_url=nginx.url("scoring"), timeout=30,
                      headers={"Authorization": f"Bearer {tokens['rectorat']}"}) as rectorat:
        opened = rectorat.post("/api/campaigns", json={"campaign": CAMPAIGN, "bonus_points": 2500})
        assert opened.status_code == 201, opened.text

    record, stop, failures = Record(), threading.Event(), []
    held: dict[str, set[str]] = {}
    doubled: list = []
    workers = [threading.Thread(target=drive, args=(w, nginx, tokens, record, stop, failures)) for w in range(WORKERS)]
    workers.append(threading.Thread(target=watch_leases, args=(deployment.database_url, stop, held, doubled)))
    started = time.monotonic()
    for thread in workers:
        thread.start()
    kills: list[tuple[float, float]] = []  # (kill time, failover seen by the harness)
    try:
        for _ in range(KILLS):
            time.sleep(4)
            assert not failures, failures
            _, new = group.lose_primary(lagging=LAGGING_S)
            kills.append((group.killed_at, time.monotonic()))
            group.wait_replicas(new, 2, timeout=60)  # the replacement in sync before the next loss
        time.sleep(3)
    finally:
        stop.set()
        for thread in workers:
            thread.join(STEP_PATIENCE_S * 2)
    assert not failures, failures
    run_s = time.monotonic() - started

    recovery = []
    for killed_at, _ in kills:
        after = [w.at for w in record.writes if w.sent > killed_at]  # a write asked after the kill
        assert after, "no write acknowledged after a kill"
        recovery.append(min(after) - killed_at)
    acknowledged = {w.event_id: w for w in record.writes}
    print(
        f"\nfailover: {len(acknowledged)} writes acknowledged by {WORKERS} workers in {run_s:.1f} s, "
        f"{KILLS} primaries lost; kill -> next acknowledged write: "
        + ", ".join(f"{r:.2f} s" for r in recovery)
        + f"; failover seen by Sentinels after: " + ", ".join(f"{f - k:.2f} s" for k, f in kills)
        + f"; answers meanwhile: {record.errors}"
        + f"; answered by process: {served_by(nginx.upstreams_used())}; lease holders seen: {held}"
    )

    # Both processes of each service answered (writes; scoring's, the bonus reads); one lease holder at a time.
    answered = served_by(nginx.upstreams_used())
    assert all(answered.get(f"127.0.0.1:{port}", 0) > 0 for ports in PROCESS_PORTS.values() for port in ports), answered
    assert not doubled, f"two lease holders at once: {doubled}"
    assert set(held) == set(SERVICES) and all(held.values()), held

    # The log, as the primary holds it now: every acknowledged event once, nothing else, in flow order.
    streams = log_entries(group.primary_port())
    prefix = f"passpro:{{{ACADEMIE}}}:{CAMPAIGN}"
    students = {k: v for k, v in streams.items() if k.startswith(f"{prefix}:student:")}
    service_streams = {k: v for k, v in streams.items() if k in {f"{prefix}:registration", f"{prefix}:evaluation"}}
    in_students = [e["event_id"] for entries in students.values() for e in entries]
    in_services = [e["event_id"] for entries in service_streams.values() for e in entries]
    assert len(in_students) == len(set(in_students)), "an event twice in the students' streams"
    assert len(in_services) == len(set(in_services)), "an event twice in the service streams"
    assert set(in_students) == set(in_services) == set(acknowledged), (
        f"lost: {len(set(acknowledged) - set(in_students))}, never acknowledged: {len(set(in_students) - set(acknowledged))}"
    )
    for key, entries in students.items():
        types = [e["event_type"] for e in entries]
        assert types == FLOW[: len(types)], (key, types)
        assert [int(e["student_version"]) for e in entries] == list(range(1, len(entries) + 1)), key
        ine = key.rsplit(":", 1)[1]
        assert all(acknowledged[e["event_id"]].ine == ine for e in entries), key

    # The projection equals the replay (scoring's view caught up first), and the chain holds.
    deadline = time.monotonic() + 60
    while True:
        done = passpro.cli("audit", "verify")
        if "pas encore appliquées" not in done.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "Aucune différence" in done.stdout, done.stdout
    # The target is under 10 s (Sentinels' down-after 2.5 s, then the election and the clients' retries); a split
    # vote among the three Sentinels costs twice failover-timeout more (3 s here): bounded at 20 s, told above.
    assert max(recovery) < 20, f"kill -> next acknowledged write: {recovery}"
