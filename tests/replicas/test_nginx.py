"""Two processes of each service behind nginx (SPEC §9): writes and reads through nginx land on either
process and are right on both; each view is applied by one process at a time (its lease, read from
pg_locks); the holder of scoring's lease SIGKILLed, the other process takes over and nginx goes on.

Debian's nginx on loopback with a generated configuration (tests/replicas/nginx.py), the services as
`passpro serve` processes on one PostgreSQL database (one schema per service)."""

from __future__ import annotations

import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from nginx import behind_nginx, lease_holders  # noqa: E402
from passpro_processes import SERVICES, base_env, run_cli  # noqa: E402
from event_factories import CAMPAIGN  # noqa: E402  the campaign to come (2027 until its rentrée)

COLLEGE, LYCEE, FORMATION = "0752536Z", "0752845K", "2473121131"
NGINX_PORTS = {"registration": 19101, "evaluation": 19102, "scoring": 19103}
PROCESS_PORTS = {name: [19111 + 2 * i, 19112 + 2 * i] for i, name in enumerate(SERVICES)}


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    server = make_url(postgres_url)
    name = "t_" + uuid.uuid4().hex[:12]
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for_holders(database_url: str, condition, timeout: float = 20) -> dict[str, list[str]]:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        holders = lease_holders(database_url)
        if condition(holders) or time.monotonic() > deadline:
            return holders
        time.sleep(0.1)


def client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def created(answer: httpx.Response) -> dict:
    assert answer.status_code == 201, f"{answer.request.method} {answer.request.url} -> {answer.status_code} {answer.text}"
    return answer.json()


def test_two_processes_of_each_service_behind_nginx_serve_reads_and_writes_and_survive_the_lease_holders_death(
    redis_url: str, academie: str, database_url: str, tmp_path: Path
) -> None:
    env = base_env(redis_url, academie, secrets.token_hex(32), tmp_path) | {"PASSPRO_DATABASE_URL": database_url}
    run_cli(env, "migrate")
    with behind_nginx(env, tmp_path, PROCESS_PORTS, NGINX_PORTS) as (replicas, nginx):
        def token(role: str, user: str, uai: str | None = None) -> str:
            args = ["token", "--role", role, "--user", user, *(["--uai", uai] if uai else [])]
            return run_cli(env, *args).stdout.strip().splitlines()[-1]

        rectorat = client(nginx.url("scoring"), token("rectorat", "rectorat-1"))
        principal = client(nginx.url("registration"), token("principal", "principal-1", COLLEGE))
        referent = client(nginx.url("registration"), token("referent", "referent-1", COLLEGE))
        staff = client(nginx.url("evaluation"), token("lycee_staff", "staff-1", LYCEE))
        proviseur = client(nginx.url("evaluation"), token("proviseur", "proviseur-1", LYCEE))
        now = datetime.now(UTC)
        created(rectorat.post("/api/campaigns", json={"campaign": CAMPAIGN, "bonus_points": 2500}))

        # Each view applied by exactly one of its two processes.
        holders = wait_for_holders(database_url, lambda h: all(len(v) == 1 for v in h.values()))
        assert all(len(v) == 1 for v in holders.values()), holders

        ines = [f"{123456780 + n}AB" for n in range(6)]
        last = {}
        for ine in ines:  # round robin: the writes alternate between the two processes of each service
            created(principal.post("/api/students", json={
                "event_id": str(uuid.uuid4()), "student_ine": ine, "campaign": CAMPAIGN, "college_uai": COLLEGE,
                "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
                "referent": {"user_id": "referent-1", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"}}))
            created(referent.post(f"/api/students/{ine}/interviews", json={
                "lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": (now + timedelta(days=7)).isoformat(timespec="seconds"),
                "mode": "presentiel"}))
            created(principal.post(f"/api/students/{ine}/college-avis", json={
                "college_uai": COLLEGE, "avis": "favorable", "comment": "Élève motivée."}))
            created(staff.post(f"/api/students/{ine}/interviews/held", json={
                "lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": (now - timedelta(minutes=5)).isoformat(timespec="seconds"),
                "mode": "presentiel", "report": {"motivation": "tres_satisfaisante", "chances_of_success": "satisfaisante",
                                                 "advice": "Continuer."}}))
            last[ine] = created(proviseur.post(f"/api/students/{ine}/lycee-avis", json={
                "lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"}))["positions"]["service"]

        # Every process answers reads, the standby included, from the same database: the same bonuses on each.
        for port in PROCESS_PORTS["scoring"]:
            with client(f"http://127.0.0.1:{port}", rectorat.headers["Authorization"].split()[1]) as direct:
                for ine in ines:
                    answer = direct.get(f"/api/bonuses/{ine}", params={"min_position": last[ine]})
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["total_bonus_points"] == 2500
        for port in PROCESS_PORTS["registration"]:
            with client(f"http://127.0.0.1:{port}", principal.headers["Authorization"].split()[1]) as direct:
                listed = direct.get("/api/students", params={"min_position": last[ines[-1]]})
                assert listed.status_code == 200 and all(ine in listed.text for ine in ines)
        log = nginx.upstreams_used()
        assert log.count("POST /api/students ") >= len(ines)

        # The process holding scoring's lease dies: the other takes the lease; nginx sends everything to it.
        (holder,) = lease_holders(database_url)["scoring"]
        killed_at = time.monotonic()
        replicas.processes[holder].process.kill()
        replicas.processes[holder].process.wait()
        after = wait_for_holders(database_url, lambda h: h["scoring"] not in ([], [holder]))
        takeover = time.monotonic() - killed_at
        assert after["scoring"] and after["scoring"] != [holder], after
        print(f"\nscoring's lease taken over {takeover:.2f} s after its holder {holder} was killed, by {after['scoring']}")
        reserve = created(proviseur.post(f"/api/students/{ines[0]}/lycee-avis", json={
            "lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "reserve"}))["positions"]["service"]
        for _ in range(4):  # round robin meets the dead process: nginx answers from the living one
            answer = rectorat.get(f"/api/bonuses/{ines[0]}", params={"min_position": reserve})
            assert answer.status_code == 200, answer.text
            assert answer.json()["total_bonus_points"] == 0
