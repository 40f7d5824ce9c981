"""A student's way in goes with their data (`passpro forget`): once registration's view reads their
StudentForgotten, their access code's hash and their wrong tries are gone from its database and the old code
opens nothing; another student's code stays. A campaign's purge takes the codes too (they carry the campaign)."""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
import asyncio

from sqlalchemy import create_engine, select

from services.records.erasure import forget
from services.registration.purge import purge_campaign
from services.registration.views import access_codes, sign_in_failures
from shared.contracts.events import Actor
from shared.runtime.log.client import EventLog

COLLEGE = "0752536Z"
INE = "123456789AB"
OTHER_INE = "1234567890A"


def register_and_issue(passpro, registration, ine: str) -> str:
    body = {
        "student_ine": ine, "college_uai": COLLEGE, "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
        "referent": {"user_id": "referent-dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
    }
    assert registration.post("/api/students", json=body, headers=passpro.auth("principal", COLLEGE)).status_code == 201
    answer = registration.post(f"/api/students/{ine}/access-code", headers=passpro.auth("referent", COLLEGE))
    assert answer.status_code == 201, answer.text
    return answer.json()["code"]


def rows(passpro, table) -> list:
    engine = create_engine(passpro.database_url("registration"))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(table.c.ine))]
    finally:
        engine.dispose()


def erase(passpro, ine: str) -> str:
    """`passpro forget` as the CLI runs it; the StudentForgotten's position in scoring's stream."""
    from redis.asyncio import Redis

    settings = passpro.settings("scoring")

    async def run():
        keystore = settings.open_keystore()
        redis = Redis.from_url(passpro.redis_url, decode_responses=True)
        try:
            done = await forget(EventLog(redis, passpro.keys, keystore), keystore, None, ine,
                                "Demande de la famille du 3 mars", Actor(user_id="dpo", role="rectorat"))
        finally:
            await redis.aclose()
            keystore.close()
        return done.erasures[0].position

    return asyncio.run(run())


def test_forget_erases_the_students_access_code_and_tries_and_the_code_opens_nothing(passpro, registration):
    code = register_and_issue(passpro, registration, INE)
    other_code = register_and_issue(passpro, registration, OTHER_INE)
    assert registration.post("/api/eleve/session", json={"ine": INE, "code": "WRONG-CODE-0"}).status_code == 401
    assert sorted(rows(passpro, access_codes)) == [(OTHER_INE,), (INE,)]
    assert rows(passpro, sign_in_failures) == [(INE,)]

    position = erase(passpro, INE)
    # the view has read the erasure once a read waiting for its position answers
    assert registration.get(f"/api/students?min_position={position}", headers=passpro.auth("principal", COLLEGE)).status_code == 200

    assert rows(passpro, access_codes) == [(OTHER_INE,)]
    assert rows(passpro, sign_in_failures) == []
    assert registration.post("/api/eleve/session", json={"ine": INE, "code": code}).status_code == 401
    assert registration.post("/api/eleve/session", json={"ine": OTHER_INE, "code": other_code}).status_code == 201


def test_a_campaigns_purge_takes_its_access_codes(passpro, registration):
    register_and_issue(passpro, registration, INE)
    engine = create_engine(passpro.database_url("registration"))
    try:
        with engine.begin() as conn:
            deleted = purge_campaign(conn, CAMPAIGN, f"{passpro.keys.prefix}:{YEAR}:")
    finally:
        engine.dispose()
    assert deleted.get("student_access_codes") == 1
    assert rows(passpro, access_codes) == []
