"""The `eleve` role (SPEC §6): a token names the student's collège and INE, and reaches only the student's
paths (and the reference data, any signed-in user's); every staff endpoint answers 403, whatever the body, and
stores nothing."""

from __future__ import annotations

import jwt
import pytest

from shared.runtime.http.auth import InvalidToken, read_token

COLLEGE = "0752536Z"  # Collège Voltaire
LYCEE = "0752845K"  # LP Théophile Gautier
INE = "123456789AB"


def test_an_eleve_token_carries_the_ine_and_reads_back_as_a_student(passpro):
    token = passpro.token("eleve", COLLEGE, user="eleve-lea", ine=" 123456789ab ")
    assert jwt.decode(token, options={"verify_signature": False})["ine"] == INE
    who = read_token(token, passpro.secret, passpro.reference)
    assert (who.role, who.uai, who.ine, who.user_id) == ("eleve", COLLEGE, INE, "eleve-lea")
    assert who.actor.role == "eleve"


@pytest.mark.parametrize(
    ("uai", "ine"),
    [(COLLEGE, None), (COLLEGE, "12345"), (LYCEE, INE), (None, INE)],
    ids=["no INE", "malformed INE", "a lycée", "no establishment"],
)
def test_an_eleve_token_needs_a_college_and_a_valid_ine(passpro, uai, ine):
    with pytest.raises(InvalidToken):
        passpro.token("eleve", uai, ine=ine)


def test_only_a_student_token_names_an_ine(passpro):
    with pytest.raises(InvalidToken):
        passpro.token("referent", COLLEGE, ine=INE)
    forged = passpro.forged({"role": "referent", "uai": COLLEGE, "ine": INE})
    with pytest.raises(InvalidToken):
        read_token(forged, passpro.secret, passpro.reference)


@pytest.mark.parametrize(
    "claims",
    [{"role": "eleve", "uai": COLLEGE}, {"role": "eleve", "uai": COLLEGE, "ine": 12345678901},
     {"role": "eleve", "uai": LYCEE, "ine": INE}],
    ids=["no ine", "ine not a string", "lycée"],
)
def test_the_api_answers_401_to_a_malformed_student_token(passpro, registration, claims):
    answer = registration.get("/api/me", headers={"Authorization": f"Bearer {passpro.forged(claims)}"})
    assert answer.status_code == 401


STAFF_ENDPOINTS = [
    ("registration", "GET", "/api/students"),
    ("registration", "POST", "/api/students"),
    ("registration", "POST", f"/api/students/{INE}/college-avis"),
    ("registration", "POST", f"/api/students/{INE}/interviews"),
    ("registration", "POST", f"/api/students/{INE}/withdrawal"),
    ("evaluation", "GET", "/api/interviews"),
    ("evaluation", "POST", f"/api/students/{INE}/interviews/held"),
    ("evaluation", "POST", f"/api/students/{INE}/lycee-avis"),
    ("scoring", "GET", f"/api/bonuses/{INE}"),
    ("scoring", "GET", "/api/bonuses"),
    ("scoring", "POST", "/api/campaigns"),
    ("scoring", "GET", "/api/exports/affelnet.csv"),
]


@pytest.mark.parametrize(("service", "method", "path"), STAFF_ENDPOINTS)
def test_a_student_gets_403_from_every_staff_endpoint_and_nothing_is_stored(passpro, service, method, path):
    headers = {"Authorization": f"Bearer {passpro.token('eleve', COLLEGE, ine=INE)}"}
    before = passpro.snapshot()
    with passpro.client(service) as client:
        answer = client.request(method, path, headers=headers, json={} if method == "POST" else None)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "role_forbidden"
    assert passpro.snapshot() == before


def test_a_student_reads_the_reference_data_like_any_signed_in_user(passpro, registration):
    headers = {"Authorization": f"Bearer {passpro.token('eleve', COLLEGE, ine=INE)}"}
    answer = registration.get("/api/establishments", headers=headers)
    assert answer.status_code == 200 and answer.json()["total"] > 0
