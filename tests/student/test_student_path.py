"""Where a student lands once signed in: ONE rule (student_api.student_path) for the access code's sign-in, the
demo's one click and EduConnect. A student page, a formation, else /eleve — never the collège's /eleves/…
(a prefix test once let it through), never the sign-in itself, never another site."""

from __future__ import annotations

import pytest
from test_student_pages import INE, Browser, code_for, register

from services.registration import educonnect, student_pages
from services.registration.student_api import student_path


@pytest.mark.parametrize(("asked", "lands"), [
    ("/eleve", "/eleve"),
    ("/eleve/entretiens/abc/preparation", "/eleve/entretiens/abc/preparation"),
    ("/eleve/lettres/0752845K/2473121131?fait=lettre", "/eleve/lettres/0752845K/2473121131?fait=lettre"),
    ("/formations", "/formations"),
    ("/formations/2473121131", "/formations/2473121131"),
    ("/eleves", "/eleve"),
    ("/eleves/123456789AB", "/eleve"),
    ("/elevesX", "/eleve"),
    ("/formationsX/1", "/eleve"),
    ("/eleve/connexion", "/eleve"),
    ("/eleve/connexion/demo", "/eleve"),
    ("/", "/eleve"),
    ("https://example.org/eleve", "/eleve"),
    ("//example.org/eleve", "/eleve"),
    ("", "/eleve"),
    (None, "/eleve"),
])
def test_a_student_lands_on_a_page_of_theirs_or_their_space(asked, lands):
    assert student_path(asked) == lands


def test_the_sign_in_pages_and_educonnect_share_the_one_rule():
    assert student_pages.student_path is student_path and educonnect.student_path is student_path
    assert not hasattr(student_pages, "_suite")


def test_signing_in_with_a_code_after_a_collège_page_lands_in_the_space(passpro, registration):
    register(passpro, registration)
    code = code_for(passpro, registration)
    browser = Browser(registration)
    browser.get("/eleve/connexion?suite=/eleves/" + INE)
    answer = browser.post("/eleve/connexion", {"ine": INE, "code": code, "suite": f"/eleves/{INE}"}, follow=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/eleve", answer.headers
