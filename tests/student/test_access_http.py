"""Getting in over HTTP (SPEC §6): the principal or référent issues a code (StudentAccessIssued in the log, never
the code), the student exchanges INE + code for a token of role eleve; wrong code 401, 429 with Retry-After after 5
wrong tries even with the right code, an old code revoked by a new one, nothing stored on refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import create_engine, select

from services.registration import access_codes as ac
from services.registration.views import access_codes, sign_in_failures

COLLEGE = "0752536Z"  # Collège Voltaire
OTHER_COLLEGE = "0751790N"  # Collège Pierre Alviset
INE = "123456789AB"
OTHER_INE = "1234567890A"


def student_body(ine: str = INE, college: str = COLLEGE) -> dict:
    return {
        "student_ine": ine, "college_uai": college, "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
        "referent": {"user_id": "referent-dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
    }


def register(passpro, registration, ine: str = INE, college: str = COLLEGE) -> dict:
    answer = registration.post("/api/students", json=student_body(ine, college), headers=passpro.auth("principal", college))
    assert answer.status_code == 201, answer.text
    return answer.json()


def issue(passpro, registration, ine: str = INE, role: str = "referent", college: str = COLLEGE):
    return registration.post(f"/api/students/{ine}/access-code", headers=passpro.auth(role, college))


def sign_in(registration, ine: str, code: str):
    return registration.post("/api/eleve/session", json={"ine": ine, "code": code})


def stored_codes(passpro) -> list:
    engine = create_engine(passpro.database_url("registration"))
    try:
        with engine.connect() as conn:
            return conn.execute(select(access_codes)).all()
    finally:
        engine.dispose()


@pytest.mark.parametrize("role", ["principal", "referent"])
def test_the_principal_or_referent_issues_a_code_and_the_log_says_who_and_until_when_never_the_code(
    passpro, registration, role
):
    register(passpro, registration)
    answer = issue(passpro, registration, role=role)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    code = body["code"]
    assert len(code) == 14 and code.count("-") == 2
    assert answer.headers["Cache-Control"] == "no-store"
    assert body["event"]["event_type"] == "StudentAccessIssued"
    assert datetime.fromisoformat(body["event"]["payload"]["expires_at"]) == datetime.fromisoformat(body["expires_at"])
    assert code not in str(body["event"])
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=ac.CODE_DAYS - 1) < expires - datetime.now(UTC) <= timedelta(days=ac.CODE_DAYS)
    entries = passpro.redis.xrange(passpro.student_stream(INE))
    fields = {k.decode(): v.decode() for k, v in entries[-1][1].items()}
    assert fields["event_type"] == "StudentAccessIssued"
    assert json.loads(fields["payload"])["issued_by"] == f"{role}-{COLLEGE}"
    everything = b"".join(k + v for _, entry in entries for k, v in entry.items())
    for key in passpro.redis.scan_iter(match=f"passpro:{{{passpro.academie}}}*"):
        if passpro.redis.type(key) == b"stream":
            everything += b"".join(k + v for _, e in passpro.redis.xrange(key) for k, v in e.items())
    assert code.encode() not in everything and code.replace("-", "").encode() not in everything
    (row,) = stored_codes(passpro)
    assert code not in row.code_hash and code.replace("-", "") not in row.code_hash


def test_the_student_signs_in_with_the_code_and_gets_a_token_of_role_eleve(passpro, registration):
    register(passpro, registration)
    issued = issue(passpro, registration)
    code = issued.json()["code"]
    answer = sign_in(registration, " 123456789ab ", code.lower().replace("-", " "))
    assert answer.status_code == 201, answer.text
    token = answer.json()["token"]
    claims = jwt.decode(token, passpro.secret, algorithms=["HS256"], issuer="passpro")
    assert (claims["role"], claims["uai"], claims["ine"]) == ("eleve", COLLEGE, INE)
    assert datetime.fromtimestamp(claims["exp"], UTC) == datetime.fromisoformat(answer.json()["expires_at"])
    me = registration.get("/api/me", headers={"Authorization": f"Bearer {token}"},
                          params={"min_position": issued.json()["positions"]["service"]})
    assert me.status_code == 200, me.text
    assert me.json()["ine"] == INE and me.json()["first_name"] == "Léa"


def test_a_wrong_code_is_a_401_and_stores_nothing_in_the_log(passpro, registration):
    register(passpro, registration)
    issue(passpro, registration)
    before = passpro.snapshot()
    answer = sign_in(registration, INE, "AAAA-BBBB-CCCC")
    assert answer.status_code == 401
    assert answer.json()["error"] == "wrong_access_code"
    assert answer.headers["WWW-Authenticate"].startswith("AccessCode")
    assert passpro.snapshot() == before


def test_after_five_wrong_tries_the_right_code_too_answers_429_with_retry_after(passpro, registration):
    register(passpro, registration)
    code = issue(passpro, registration).json()["code"]
    for _ in range(ac.MAX_FAILURES):
        assert sign_in(registration, INE, "AAAA-BBBB-CCCC").status_code == 401
    before = passpro.snapshot()
    answer = sign_in(registration, INE, code)
    assert answer.status_code == 429
    assert answer.json()["error"] == "too_many_attempts"
    assert 0 < int(answer.headers["Retry-After"]) <= ac.LOCK_SECONDS
    assert "token" not in answer.json()
    assert passpro.snapshot() == before
    # another student is not held up by it
    register(passpro, registration, OTHER_INE)
    other = issue(passpro, registration, OTHER_INE).json()["code"]
    assert sign_in(registration, OTHER_INE, other).status_code == 201


def test_the_lock_holds_in_another_process_and_lifts_once_the_wait_is_over(passpro, registration):
    """Two apps on one database (two processes): the tries of one count in the other; once the lock's time
    has passed (moved back in the database, as the clock would move forward) the right code works."""
    register(passpro, registration)
    code = issue(passpro, registration).json()["code"]
    with passpro.client("registration") as other_process:
        for n in range(ac.MAX_FAILURES):
            client = registration if n % 2 else other_process
            assert sign_in(client, INE, "AAAA-BBBB-CCCC").status_code == 401
        assert sign_in(other_process, INE, code).status_code == 429
    engine = create_engine(passpro.database_url("registration"))
    try:
        with engine.begin() as conn:
            conn.execute(sign_in_failures.update().values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    finally:
        engine.dispose()
    assert sign_in(registration, INE, code).status_code == 201


def test_a_new_code_revokes_the_old_one(passpro, registration):
    register(passpro, registration)
    old = issue(passpro, registration).json()["code"]
    new = issue(passpro, registration, role="principal").json()["code"]
    assert old != new
    assert sign_in(registration, INE, old).status_code == 401
    assert sign_in(registration, INE, new).status_code == 201
    assert len(stored_codes(passpro)) == 1


@pytest.mark.parametrize(
    "body",
    [{}, {"ine": INE}, {"code": "AAAA"}, {"ine": "12", "code": "AAAA"}, {"ine": INE, "code": ""},
     {"ine": INE, "code": "A" * 41}, {"ine": INE, "code": 1234}, {"ine": INE, "code": "AAAA", "role": "principal"}],
    ids=["empty", "no code", "no ine", "bad ine", "empty code", "code too long", "code a number", "extra field"],
)
def test_a_malformed_sign_in_is_a_422_and_counts_no_try(passpro, registration, body):
    answer = registration.post("/api/eleve/session", json=body)
    assert answer.status_code == 422, answer.text
    engine = create_engine(passpro.database_url("registration"))
    try:
        with engine.connect() as conn:
            assert conn.execute(select(sign_in_failures)).all() == []
    finally:
        engine.dispose()


def test_an_unregistered_ine_answers_401_like_a_wrong_code(passpro, registration):
    assert sign_in(registration, OTHER_INE, "AAAA-BBBB-CCCC").status_code == 401


@pytest.mark.parametrize(
    ("role", "uai", "status"),
    [("principal", OTHER_COLLEGE, 404), ("referent", OTHER_COLLEGE, 404), ("lycee_staff", "0752845K", 403),
     ("proviseur", "0752845K", 403), ("rectorat", None, 403)],
)
def test_only_the_students_own_college_issues_a_code_and_a_refusal_stores_nothing(passpro, registration, role, uai, status):
    register(passpro, registration)
    before = passpro.snapshot()
    answer = registration.post(f"/api/students/{INE}/access-code", headers=passpro.auth(role, uai))
    assert answer.status_code == status, answer.text
    assert passpro.snapshot() == before
    assert stored_codes(passpro) == []


def test_a_student_cannot_issue_a_code_nor_an_unknown_student_get_one(passpro, registration):
    register(passpro, registration)
    eleve = {"Authorization": f"Bearer {passpro.token('eleve', COLLEGE, ine=INE)}"}
    before = passpro.snapshot()
    assert registration.post(f"/api/students/{INE}/access-code", headers=eleve).status_code == 403
    assert issue(passpro, registration, OTHER_INE).status_code == 404
    assert passpro.snapshot() == before
    assert stored_codes(passpro) == []


def test_a_withdrawn_student_gets_no_new_code(passpro, registration):
    register(passpro, registration)
    withdrawn = registration.post(
        f"/api/students/{INE}/withdrawal", json={"reason": "Déménagement"}, headers=passpro.auth("principal", COLLEGE)
    )
    assert withdrawn.status_code == 201
    before = passpro.snapshot()
    answer = issue(passpro, registration)
    assert answer.status_code == 409 and answer.json()["error"] == "student_withdrawn"
    assert passpro.snapshot() == before and stored_codes(passpro) == []


def test_the_colleges_list_says_when_the_last_code_was_given_never_the_code(passpro, registration):
    registered = register(passpro, registration)
    listed = registration.get("/api/students", headers=passpro.auth("referent", COLLEGE),
                              params={"min_position": registered["positions"]["service"]})
    assert listed.json()["items"][0]["access_code"] is None
    issued = issue(passpro, registration).json()
    listed = registration.get("/api/students", headers=passpro.auth("referent", COLLEGE),
                              params={"min_position": issued["positions"]["service"]})
    state = listed.json()["items"][0]["access_code"]
    assert datetime.fromisoformat(state["expires_at"]) == datetime.fromisoformat(issued["expires_at"])
    assert datetime.fromisoformat(state["issued_at"]) == datetime.fromisoformat(issued["event"]["occurred_at"])
    assert issued["code"] not in listed.text
