"""The report reaches the collège (SPEC §6, issue 13 part 6): GET /api/students gives each interview its `report`
and `lycee_avis`, the collège's student page shows them, and « Mes élèves » no longer counts as to do a collège
avis that can no longer be given (an interview held without it); migration 0006 backfills that from the files."""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
import html
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from services.registration import queries
from services.registration.app import MIGRATIONS
from shared.runtime.db import make_engine
from shared.runtime.migrations import upgrade

COLLEGE = "0752536Z"
LYCEE = "0752845K"
FORMATION = "2473121131"
INE = "123456789AB"
OTHER_INE = "1234567890A"
ADVICE = "Visite l'atelier de vente et renseigne-toi sur les stages."


def post(passpro, client, role, uai, path, body) -> dict:
    answer = client.post(path, json=body, headers=passpro.auth(role, uai))
    assert answer.status_code == 201, answer.text
    return answer.json()


def register(passpro, registration, ine: str) -> None:
    post(passpro, registration, "principal", COLLEGE, "/api/students", {
        "student_ine": ine, "college_uai": COLLEGE, "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
        "referent": {"user_id": "referent-dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
    })


def held_without_avis(passpro, registration, evaluation, ine: str, lycee_avis: str | None) -> str | None:
    post(passpro, registration, "referent", COLLEGE, f"/api/students/{ine}/interviews", {
        "lycee_uai": LYCEE, "formation_code": FORMATION, "mode": "presentiel",
        "scheduled_at": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
    })
    answer = post(passpro, evaluation, "lycee_staff", LYCEE, f"/api/students/{ine}/interviews/held", {
        "lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "report": {"motivation": "satisfaisante", "chances_of_success": "fragile", "advice": ADVICE},
    })
    if lycee_avis:
        answer = post(passpro, evaluation, "proviseur", LYCEE, f"/api/students/{ine}/lycee-avis",
                      {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": lycee_avis})
    return answer["positions"]["service"]


def test_the_students_list_gives_each_interview_its_report_and_lycee_avis(passpro, registration, evaluation):
    register(passpro, registration, INE)
    position = held_without_avis(passpro, registration, evaluation, INE, "favorable")
    answer = registration.get(f"/api/students?min_position={position}", headers=passpro.auth("referent", COLLEGE))
    assert answer.status_code == 200, answer.text
    (interview,) = answer.json()["items"][0]["interviews"]
    assert interview["report"] == {"motivation": "satisfaisante", "chances_of_success": "fragile", "advice": ADVICE}
    assert interview["lycee_avis"] == "favorable"


def test_a_scheduled_interview_has_no_report_nor_avis_yet(passpro, registration):
    register(passpro, registration, INE)
    scheduled = post(passpro, registration, "referent", COLLEGE, f"/api/students/{INE}/interviews", {
        "lycee_uai": LYCEE, "formation_code": FORMATION, "mode": "presentiel",
        "scheduled_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
    })
    answer = registration.get(f"/api/students?min_position={scheduled['positions']['service']}",
                              headers=passpro.auth("principal", COLLEGE))
    (interview,) = answer.json()["items"][0]["interviews"]
    assert interview["report"] is None and interview["lycee_avis"] is None


def test_the_colleges_student_page_shows_the_report_and_the_lycee_avis(passpro, registration, evaluation):
    register(passpro, registration, INE)
    position = held_without_avis(passpro, registration, evaluation, INE, "reserve")
    registration.get("/connexion")
    page = registration.get(f"/eleves/{INE}?position={position}", cookies={
        "passpro_registration": passpro.token("principal", COLLEGE)})
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert "Compte rendu : " in text and ADVICE in text
    assert "Fragile" in text and "Réservé" in text


def test_an_avis_that_can_no_longer_be_given_is_not_counted_to_do(passpro, registration, evaluation):
    register(passpro, registration, INE)  # no avis, no interview: to do
    register(passpro, registration, OTHER_INE)
    position = held_without_avis(passpro, registration, evaluation, OTHER_INE, None)  # held without it: closed
    registration.get(f"/api/students?min_position={position}", headers=passpro.auth("principal", COLLEGE))
    engine = make_engine(passpro.database_url("registration"))
    try:
        with engine.connect() as conn:
            counts = queries.college_counts(conn, CAMPAIGN, COLLEGE)
    finally:
        engine.dispose()
    assert counts["active"] == 2
    assert counts["avis_to_give"] == 1


def test_migration_0006_backfills_the_held_interviews_from_the_files(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'registration.sqlite3'}"
    upgrade(MIGRATIONS, url, None)  # to head, then back to 0005 to plant rows as they were
    from alembic import command

    from shared.runtime.migrations import alembic_config

    command.downgrade(alembic_config(MIGRATIONS, url, None), "0005")
    engine = make_engine(url)
    held = {"interviews": {"a": {"status": "held", "lycee_uai": LYCEE, "formation_code": FORMATION}}}
    scheduled = {"interviews": {"a": {"status": "scheduled", "lycee_uai": LYCEE, "formation_code": FORMATION}}}
    try:
        with engine.begin() as conn:
            for ine, file in ((INE, held), (OTHER_INE, scheduled)):
                conn.execute(sa.text(
                    f"INSERT INTO student_files (campaign, ine, college_uai, version, file) VALUES ('{YEAR}', :ine, :c, 1, :f)"
                ), {"ine": ine, "c": COLLEGE, "f": json.dumps(file)})
                conn.execute(sa.text(
                    "INSERT INTO student_progress (campaign, ine, college_uai, withdrawn, college_avis_given, "
                    f"scheduled_interviews, favorable_voeux) VALUES ('{YEAR}', :ine, :c, 0, 0, 0, 0)"
                ), {"ine": ine, "c": COLLEGE})
    finally:
        engine.dispose()
    upgrade(MIGRATIONS, url, None)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = dict(conn.execute(sa.text("SELECT ine, interview_held FROM student_progress")).all())
    finally:
        engine.dispose()
    assert rows == {INE: 1, OTHER_INE: 0}
