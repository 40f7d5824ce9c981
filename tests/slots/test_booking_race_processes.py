"""Rule 9 across real processes (issue 15): two `passpro serve registration` processes (each its own view database)
and `passpro serve evaluation`, one log; 40 référents of 8 collèges book 40 students onto a slot of 5 places at
once, split over the two registration processes, ten times: exactly 5 × 201 and 35 × 409 `slot_full` each time,
and the slot's stream and every student's stream consistent. Run with `-m e2e -s` for the figures."""

from __future__ import annotations

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
import asyncio
import json
import secrets
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from passpro_processes import Passpro, base_env  # noqa: E402
from services.cli.serve import KEEP_ALIVE_SECONDS  # noqa: E402
from shared.contracts.identifiers import uai_check_letter  # noqa: E402
from shared.contracts.personal import ErasedKeyring  # noqa: E402
from shared.contracts.reference import Establishment, default_reference_text, parse_reference  # noqa: E402
from shared.contracts.streams import StreamKeys  # noqa: E402
from shared.domain.slots import fold_slot  # noqa: E402
from shared.runtime.http.auth import issue_token  # noqa: E402
from shared.runtime.log.client import EventLog  # noqa: E402

pytestmark = pytest.mark.e2e

LYCEE, FORMATION = "0752845K", "2473121131"
ROUNDS, STUDENTS, CAPACITY = 10, 40, 5


@pytest.fixture
def system(redis_url: str, academie: str, tmp_path: Path):
    reference = parse_reference(default_reference_text())
    extra = "0759999" + uai_check_letter("0759999")
    reference = reference.model_copy(update={"establishments": (*reference.establishments, Establishment(
        uai=extra, name="Collège de la course", type="college", address="1 rue de la Course, 75020 Paris"))})
    (tmp_path / "reference.json").write_text(reference.model_dump_json())
    secret = secrets.token_hex(32)
    env = base_env(redis_url, academie, secret, tmp_path) | {
        f"PASSPRO_{n.upper()}_DATABASE_URL": f"sqlite:///{tmp_path / f'{n}.sqlite3'}"
        for n in ("registration", "evaluation", "scoring")
    }
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    second_env = env | {"PASSPRO_REGISTRATION_DATABASE_URL": f"sqlite:///{second_dir / 'registration.sqlite3'}",
                        "PASSPRO_DATA_DIR": str(tmp_path)}  # the same key store: one student, one key
    first, second = Passpro(env=env, workdir=tmp_path), Passpro(env=second_env, workdir=second_dir)
    try:
        first.cli("migrate")
        second.cli("migrate")
        first.cli("reference", "import", str(tmp_path / "reference.json"))
        first.cli("campaign", "open", CAMPAIGN)
        first.start("registration")
        first.start("evaluation")
        second.start("registration")
        for p, name in ((first, "registration"), (first, "evaluation"), (second, "registration")):
            p.wait_ready(name)
        yield {
            "registrations": [first.services["registration"].url, second.services["registration"].url],
            "evaluation": first.services["evaluation"].url,
            "colleges": [e.uai for e in reference.establishments if e.type == "college"],
            "token": lambda role, uai: issue_token(secret, user_id=f"{role}-{uai}", role=role, uai=uai,
                                                    reference=reference),
            "keys": StreamKeys(academie), "redis_url": redis_url,
        }
    finally:
        first.stop_all()
        second.stop_all()
        print(first.logs(), second.logs())


def test_forty_bookings_from_eight_colleges_race_for_five_places_across_processes(system):
    colleges, registrations = system["colleges"], system["registrations"]
    assert len(colleges) == 8

    def auth(role: str, uai: str) -> dict:
        return {"Authorization": f"Bearer {system['token'](role, uai)}"}

    async def run() -> list[float]:
        redis = Redis.from_url(system["redis_url"])
        log = EventLog(redis, system["keys"])
        figures, number = [], 0
        # Idle connections dropped before the service's 5 s (KEEP_ALIVE_SECONDS): at httpx's default, also 5 s, a
        # request could go out on a connection the service closes at that instant and end in a ReadError.
        limits = httpx.Limits(max_connections=STUDENTS + 10, keepalive_expiry=KEEP_ALIVE_SECONDS - 3)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
            for round_ in range(ROUNDS):
                students = []
                for n in range(STUDENTS):
                    number += 1
                    students.append((f"{number:09d}PR", colleges[n % 8]))
                registered = await asyncio.gather(*(
                    http.post(f"{registrations[n % 2]}/api/students", headers=auth("principal", college), json={
                        "student_ine": ine, "college_uai": college, "last_name": "Martin", "first_name": "Léa",
                        "class_name": "3e B", "referent": {"user_id": "r", "name": "Claire Dupont",
                                                           "email": "claire.dupont@ac-paris.fr"}})
                    for n, (ine, college) in enumerate(students)))
                assert {r.status_code for r in registered} == {201}
                opened = await http.post(f"{system['evaluation']}/api/slots", headers=auth("lycee_staff", LYCEE), json={
                    "lycee_uai": LYCEE, "formation_code": FORMATION, "starts_at": (start + timedelta(hours=round_)).isoformat(),
                    "duration_minutes": 20, "capacity": CAPACITY, "mode": "presentiel", "place": "Atelier A"})
                assert opened.status_code == 201, opened.text
                slot_id = opened.json()["event"]["payload"]["slot_id"]
                began = time.perf_counter()
                answers = await asyncio.gather(*(
                    http.post(f"{registrations[n % 2]}/api/students/{ine}/interviews",
                              headers=auth("referent", college), json={"slot_id": slot_id})
                    for n, (ine, college) in enumerate(students)))
                figures.append(time.perf_counter() - began)
                counted = Counter((a.status_code, a.json().get("error")) for a in answers)
                assert counted == {(201, None): CAPACITY, (409, "slot_full"): STUDENTS - CAPACITY}, counted
                history = await log.read_stream(system["keys"].slot(CAMPAIGN, slot_id), ErasedKeyring())
                slot = fold_slot(slot_id, [h.event for h in history])
                winners = {ine for (ine, _), a in zip(students, answers) if a.status_code == 201}
                assert slot.taken == CAPACITY and set(slot.bookings.values()) == winners
                for ine, _ in students:
                    own = await log.read_student(CAMPAIGN, ine, ErasedKeyring())
                    assert [h.student_version for h in own] == list(range(1, len(own) + 1))
                    assert len(own) == (2 if ine in winners else 1)
        await redis.aclose()
        return figures

    figures = asyncio.run(run())
    print(f"\nprocesses race: {ROUNDS} rounds of {STUDENTS} bookings (8 collèges) for {CAPACITY} places over 2 "
          f"registration processes: {CAPACITY} × 201 and {STUDENTS - CAPACITY} × 409 slot_full every round; "
          f"40 answers in median {statistics.median(figures) * 1000:.0f} ms, max {max(figures) * 1000:.0f} ms")
