"""The whole scheme over HTTP, with the three services as separate processes (SPEC §1, §3, §5).

A collège registers a student, schedules an interview and gives its avis; the
lycée holds the interview and gives its avis; the rectorat sees the bonus —
then a correction, and a scoring service that restarts and catches up.
Runs once with SQLite files and once with PostgreSQL for the views.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from passpro_processes import SERVICES, Passpro, base_env

pytestmark = pytest.mark.e2e

REFERENCE = json.loads((Path(__file__).resolve().parents[2] / "shared/contracts/reference/paris.json").read_text())
COLLEGE = next(e for e in REFERENCE["establishments"] if e["type"] == "college")["uai"]
_LYCEE = next(e for e in REFERENCE["establishments"] if e["type"] == "lycee")
LYCEE, FORMATION = _LYCEE["uai"], _LYCEE["formations"][0]["code"]
from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
INE = "123456789AB"


# --- the system under test ------------------------------------------------------------


@pytest.fixture
def database_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Where the views live: one SQLite file per service, or a fresh PostgreSQL database (one schema per service)."""
    if request.param == "sqlite":
        yield {
            f"PASSPRO_{name.upper()}_DATABASE_URL": f"sqlite:///{tmp_path / f'{name}.sqlite3'}" for name in SERVICES
        }
        return
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(request.getfixturevalue("postgres_url"))
    name = "t_" + uuid.uuid4().hex[:12]
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"PASSPRO_DATABASE_URL": server.set(database=name).render_as_string(hide_password=False)}
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def passpro(redis_url: str, academie: str, database_env: dict[str, str], tmp_path: Path) -> Iterator[Passpro]:
    """`passpro migrate`, then the three services, each `passpro serve <name>` in its own process."""
    env = base_env(redis_url, academie, secrets.token_hex(32), tmp_path) | database_env
    system = Passpro(env=env, workdir=tmp_path)
    try:
        system.cli("migrate")
        for name in SERVICES:
            system.start(name)
        for name in SERVICES:
            system.wait_ready(name)
        yield system
    finally:
        system.stop_all()
        print(system.logs())  # shown by pytest only when the test failed


class Api:
    """An HTTP client for one user of one service."""

    def __init__(self, base_url: str, token: str) -> None:
        self.client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=20)

    def post(self, path: str, body: dict, expect: int = 201) -> dict:
        answer = self.client.post(path, json=body)
        assert answer.status_code == expect, f"POST {path} -> {answer.status_code} {answer.text}"
        return answer.json()

    def get(self, path: str, expect: int = 200, **params: str) -> dict:
        answer = self.client.get(path, params=params)
        assert answer.status_code == expect, f"GET {path} -> {answer.status_code} {answer.text}"
        return answer.json()


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def bonus_of(scoring: Api, position: str) -> dict:
    return scoring.get(f"/api/bonuses/{INE}", min_position=position)


# --- the flow -------------------------------------------------------------------------


@pytest.mark.parametrize("database_env", ["sqlite", "postgres"], indirect=True)
def test_a_favorable_lycee_avis_gives_the_bonus_and_a_restarted_scoring_catches_up(passpro: Passpro) -> None:
    urls = {name: service.url for name, service in passpro.services.items()}
    rectorat = Api(urls["scoring"], passpro.token("rectorat", "rectorat-1"))
    principal = Api(urls["registration"], passpro.token("principal", "principal-1", COLLEGE))
    referent = Api(urls["registration"], passpro.token("referent", "referent-1", COLLEGE))
    staff = Api(urls["evaluation"], passpro.token("lycee_staff", "staff-1", LYCEE))
    proviseur = Api(urls["evaluation"], passpro.token("proviseur", "proviseur-1", LYCEE))
    now = datetime.now(UTC)

    # The rectorat opens the campaign.
    opened = rectorat.post("/api/campaigns", {"campaign": CAMPAIGN, "bonus_points": 2500})
    assert opened["event"]["event_type"] == "CampaignOpened"
    assert opened["event"]["payload"]["bonus_points"] == 2500

    # The collège registers the student, with a referent (a retry with the same event_id changes nothing).
    registration_body = {
        "event_id": str(uuid.uuid4()),
        "student_ine": INE,
        "campaign": CAMPAIGN,
        "college_uai": COLLEGE,
        "last_name": "Martin",
        "first_name": "Léa",
        "class_name": "3e B",
        "referent": {"user_id": "referent-1", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
    }
    registered = principal.post("/api/students", registration_body)
    assert registered["event"]["event_type"] == "StudentRegistered"
    assert registered["event"]["student_ine"] == INE and registered["event"]["campaign"] == CAMPAIGN
    assert set(registered["positions"]) == {"service", "student"}
    assert principal.post("/api/students", registration_body, expect=200) == registered

    # The referent registers the student for an interview; the principal gives the collège avis.
    scheduled = referent.post(
        f"/api/students/{INE}/interviews",
        {"lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": iso(now + timedelta(days=7)), "mode": "presentiel"},
    )
    assert scheduled["event"]["event_type"] == "InterviewScheduled"
    assert scheduled["event"]["payload"]["interview_id"]
    avis = principal.post(
        f"/api/students/{INE}/college-avis",
        {"college_uai": COLLEGE, "avis": "favorable", "comment": "Élève motivée, très investie dans son projet."},
    )
    assert avis["event"]["event_type"] == "CollegeAvisGiven"

    # The lycée holds the interview (the collège avis is there) and its proviseur gives a favorable avis.
    held = staff.post(
        f"/api/students/{INE}/interviews/held",
        {
            "lycee_uai": LYCEE,
            "formation_code": FORMATION,
            "held_at": iso(now - timedelta(minutes=5)),
            "mode": "presentiel",
            "report": {
                "motivation": "tres_satisfaisante",
                "chances_of_success": "satisfaisante",
                "advice": "Continuer à se renseigner sur les métiers de la filière.",
            },
        },
    )
    assert held["event"]["event_type"] == "InterviewHeld"
    assert held["event"]["payload"]["college_avis_present"] is True
    favorable = proviseur.post(
        f"/api/students/{INE}/lycee-avis", {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"}
    )
    assert favorable["event"]["event_type"] == "LyceeAvisGiven"

    # The rectorat sees the 2500 points on the vœu, as soon as its view has reached that write.
    bonus = bonus_of(rectorat, favorable["positions"]["service"])
    assert bonus["ine"] == INE and bonus["campaign"] == CAMPAIGN
    assert bonus["total_bonus_points"] == 2500
    [voeu] = bonus["voeux"]
    assert (voeu["lycee_uai"], voeu["formation_code"]) == (LYCEE, FORMATION)
    assert voeu["bonus_points"] == 2500 and voeu["lycee_avis"] == "favorable"
    assert voeu["college_avis_present"] is True

    # Each side sees the student in its own list.
    students = principal.get("/api/students", min_position=favorable["positions"]["service"])
    assert students["total"] >= 1 and INE in json.dumps(students["items"])
    interviews = staff.get("/api/interviews", min_position=favorable["positions"]["service"])
    assert interviews["total"] >= 1 and INE in json.dumps(interviews["items"])

    # A correction to "reserve": the latest avis counts, the bonus goes.
    reserve = proviseur.post(
        f"/api/students/{INE}/lycee-avis", {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "reserve"}
    )
    bonus = bonus_of(rectorat, reserve["positions"]["service"])
    assert bonus["total_bonus_points"] == 0
    assert [v["bonus_points"] for v in bonus["voeux"]] == [0]

    # Scoring goes down; a correction is written meanwhile; scoring restarts on its database and catches up.
    passpro.stop("scoring")
    again = proviseur.post(
        f"/api/students/{INE}/lycee-avis", {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"}
    )
    passpro.start("scoring")
    passpro.wait_ready("scoring")
    rectorat = Api(passpro.services["scoring"].url, rectorat.client.headers["Authorization"].removeprefix("Bearer "))
    bonus = bonus_of(rectorat, again["positions"]["service"])
    assert bonus["total_bonus_points"] == 2500
    assert [v["bonus_points"] for v in bonus["voeux"]] == [2500]
