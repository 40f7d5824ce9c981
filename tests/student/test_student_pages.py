"""The student's pages (SPEC §6) in process: signing in at /eleve/connexion with INE + code (refusals as pages:
401, 429 with Retry-After, 422 nothing counted), the space with its steps, référent and collège avis, an
interview's page with the lycée's address, stops and journey planner, and after the interview the report, the
lycée avis and the bonus; rights: staff out of /eleve, a student out of the collège's pages, another student's
interview 404; the demo's one-click students."""

from __future__ import annotations

from event_factories import YEAR  # the year of the campaign to come (2027 until its rentrée)
import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.registration import access_codes as ac
from services.registration.app import create_app

COLLEGE = "0752536Z"  # Collège Voltaire
LYCEE = "0752845K"  # LP Théophile Gautier
FORMATION = "2473121131"
INE = "123456789AB"
OTHER_INE = "1234567890A"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def text(answer) -> str:
    return html.unescape(answer.text)


class Browser:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, path: str):
        answer = self.client.get(path)
        if found := CSRF.search(answer.text):
            self.csrf = found.group(1)
        return answer

    def post(self, path: str, form: dict, follow: bool = True):
        answer = self.client.post(path, data={**form, "csrf": self.csrf}, follow_redirects=follow)
        if found := CSRF.search(answer.text):
            self.csrf = found.group(1)
        return answer

    def sign_in(self, ine: str, code: str, follow: bool = True):
        self.get("/eleve/connexion")
        return self.post("/eleve/connexion", {"ine": ine, "code": code}, follow=follow)


def api(passpro, client: TestClient, role: str, uai: str, path: str, body: dict | None = None) -> dict:
    answer = client.post(path, json=body, headers=passpro.auth(role, uai)) if body is not None else \
        client.post(path, headers=passpro.auth(role, uai))
    assert answer.status_code == 201, answer.text
    return answer.json()


def register(passpro, registration, ine: str = INE, first: str = "Léa") -> None:
    """The student registered, once the service's view shows it (the staff's and the student's pages read it)."""
    registered = api(passpro, registration, "principal", COLLEGE, "/api/students", {
        "student_ine": ine, "college_uai": COLLEGE, "last_name": "Martin", "first_name": first, "class_name": "3e B",
        "referent": {"user_id": "referent-dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
    })
    seen = registration.get("/api/students", headers=passpro.auth("principal", COLLEGE),
                            params={"min_position": registered["positions"]["service"]})
    assert seen.status_code == 200, seen.text


def code_for(passpro, registration, ine: str = INE) -> str:
    """A new code for the student, once the service's view shows everything written so far (the code's event is
    the latest): the student's pages read that view."""
    issued = api(passpro, registration, "referent", COLLEGE, f"/api/students/{ine}/access-code")
    seen = registration.get("/api/students", headers=passpro.auth("referent", COLLEGE),
                            params={"min_position": issued["positions"]["service"]})
    assert seen.status_code == 200, seen.text
    return issued["code"]


def schedule(passpro, registration, ine: str = INE, when: datetime | None = None, mode: str = "presentiel") -> dict:
    when = when or datetime.now(UTC) + timedelta(days=7)
    return api(passpro, registration, "referent", COLLEGE, f"/api/students/{ine}/interviews", {
        "lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": when.isoformat(), "mode": mode,
        "remote_equipment_ready": mode == "distanciel", **({"room": "Salle 204"} if mode == "distanciel" else {}),
    })


def test_a_student_signs_in_with_their_code_and_sees_their_space(passpro, registration):
    register(passpro, registration)
    api(passpro, registration, "principal", COLLEGE, f"/api/students/{INE}/college-avis",
        {"college_uai": COLLEGE, "avis": "assez_favorable", "comment": "Élève curieuse, doit s'organiser."})
    code = code_for(passpro, registration)
    browser = Browser(registration)
    page = browser.get("/eleve/connexion")
    assert page.status_code == 200 and "Mon code d'accès" in text(page)
    answer = browser.sign_in("123456789ab", code.lower(), follow=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/eleve"
    space = browser.get("/eleve")
    assert space.status_code == 200
    for expected in ("Bonjour Léa", "Claire Dupont", "claire.dupont@ac-paris.fr", "Assez favorable",
                 "Élève curieuse, doit s'organiser.", "À faire maintenant", "Collège Voltaire"):
        assert expected in text(space), expected
    assert 'aria-current="step"' in text(space)
    assert "Tu n'as pas encore d'entretien" in text(space)


def test_a_wrong_code_shows_the_sign_in_again_401_then_429_with_retry_after(passpro, registration):
    register(passpro, registration)
    code = code_for(passpro, registration)
    browser = Browser(registration)
    for _ in range(ac.MAX_FAILURES):
        answer = browser.sign_in(INE, "AAAA-BBBB-CCCC")
        assert answer.status_code == 401
        assert "INE ou code d'accès incorrect" in text(answer)
    locked = browser.sign_in(INE, code)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert "Trop d'essais" in text(locked)
    assert browser.get("/eleve").history  # still signed out: sent to the sign-in page


def test_an_incomplete_sign_in_form_says_what_is_missing_and_counts_no_try(passpro, registration):
    register(passpro, registration)
    code = code_for(passpro, registration)
    browser = Browser(registration)
    for _ in range(ac.MAX_FAILURES + 1):
        answer = browser.sign_in("12", "")
        assert answer.status_code == 422
    assert "Cet INE n'a pas la bonne forme" in text(answer) and "Écris le code d'accès" in text(answer)
    assert browser.sign_in(INE, code).status_code == 200


def test_the_interview_page_shows_where_the_lycee_is_and_how_to_get_there(passpro, registration):
    register(passpro, registration)
    scheduled_on = datetime(YEAR, 3, 10, 13, 30, tzinfo=UTC)
    scheduled = schedule(passpro, registration, when=scheduled_on)
    interview_id = scheduled["event"]["payload"]["interview_id"]
    browser = Browser(registration)
    browser.sign_in(INE, code_for(passpro, registration))
    space = browser.get("/eleve")
    weekday = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")[scheduled_on.weekday()]
    assert f"{weekday} 10 mars {YEAR} à 14\u00a0h\u00a030" in text(space)  # Paris time
    page = browser.get(f"/eleve/entretiens/{interview_id}")
    assert page.status_code == 200
    lycee = passpro.reference.get(LYCEE)
    assert lycee.name in text(page) and lycee.address in text(page)
    assert lycee.access, "the reference data gives the lycée's stops"
    assert lycee.access[0].stop in text(page)
    assert "https://www.openstreetmap.org/directions?to=" in text(page)
    assert "ne te demande jamais ton adresse" in text(page)
    # the letter's, the checklist's and the convocation's pages (services/registration/letters.py), linked
    assert f'href="/eleve/lettres/{LYCEE}/{FORMATION}"' in page.text
    assert f'href="/eleve/entretiens/{interview_id}/preparation"' in page.text
    assert f'href="/eleve/entretiens/{interview_id}/convocation"' in page.text


def test_a_distanciel_interview_says_it_is_followed_from_the_college(passpro, registration):
    register(passpro, registration)
    interview_id = schedule(passpro, registration, mode="distanciel")["event"]["payload"]["interview_id"]
    browser = Browser(registration)
    browser.sign_in(INE, code_for(passpro, registration))
    page = browser.get(f"/eleve/entretiens/{interview_id}")
    assert "Au collège (Collège Voltaire), salle : Salle 204" in text(page)


def test_after_the_interview_the_student_reads_the_advice_the_avis_and_the_bonus(passpro, registration, evaluation):
    register(passpro, registration)
    api(passpro, registration, "principal", COLLEGE, f"/api/students/{INE}/college-avis",
        {"college_uai": COLLEGE, "avis": "favorable", "comment": "Très motivée."})
    interview_id = schedule(passpro, registration, when=datetime.now(UTC) - timedelta(hours=3))["event"]["payload"]["interview_id"]
    api(passpro, evaluation, "lycee_staff", LYCEE, f"/api/students/{INE}/interviews/held", {
        "lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "report": {"motivation": "tres_satisfaisante", "chances_of_success": "satisfaisante",
                   "advice": "Visite l'atelier de vente lors des portes ouvertes."},
    })
    avis = api(passpro, evaluation, "proviseur", LYCEE, f"/api/students/{INE}/lycee-avis",
               {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"})
    browser = Browser(registration)
    browser.sign_in(INE, code_for(passpro, registration))
    # registration's view follows evaluation's stream: wait until it shows the avis
    page = browser.get(f"/eleve/entretiens/{interview_id}?position={avis['positions']['service']}")
    assert page.status_code == 200, page.text
    for expected in ("Visite l'atelier de vente lors des portes ouvertes.", "Très satisfaisante", "Satisfaisante",
                 "Favorable", "2\u202f500\u00a0points"):
        assert expected in text(page), expected
    space = browser.get("/eleve")
    assert "Mon bonus Affelnet" in text(space) and "2\u202f500\u00a0points" in text(space)


def test_staff_cannot_open_the_students_pages_and_a_student_not_the_colleges(passpro, registration):
    register(passpro, registration)
    staff = Browser(registration)
    staff.get("/connexion")
    assert staff.post("/connexion", {"jeton": passpro.token("referent", COLLEGE)}).status_code == 200
    assert staff.get("/eleve").status_code == 403
    student = Browser(registration)
    student.sign_in(INE, code_for(passpro, registration))
    assert student.get("/eleve").status_code == 200
    assert student.get(f"/eleves/{INE}").status_code == 403
    home = student.client.get("/", follow_redirects=False)  # a student's home is their own space
    assert home.status_code == 303 and home.headers["location"] == "/eleve"


def test_another_students_interview_reads_as_not_found(passpro, registration):
    register(passpro, registration)
    register(passpro, registration, OTHER_INE, first="Hugo")
    others = schedule(passpro, registration, OTHER_INE)["event"]["payload"]["interview_id"]
    browser = Browser(registration)
    browser.sign_in(INE, code_for(passpro, registration))
    page = browser.get(f"/eleve/entretiens/{others}")
    assert page.status_code == 404
    assert "Hugo" not in text(page)


def test_signed_out_the_space_sends_to_the_students_sign_in(passpro, registration):
    answer = registration.get("/eleve", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/eleve/connexion")


@pytest.fixture
def demo_registration(passpro):
    passpro.migrate("registration")
    settings = passpro.settings("registration").model_copy(update={"demo": True})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_in_the_demo_a_student_is_one_click_away(passpro, demo_registration):
    from shared.runtime.demo_users import demo_students

    students = demo_students(passpro.reference)
    browser = Browser(demo_registration)
    page = browser.get("/eleve/connexion")
    assert all(s["name"] in text(page) for s in students)
    first = students[0]
    # the demo student exists once passpro up --demo loaded them; here, registered by hand
    registered = api(passpro, demo_registration, "principal", first["uai"], "/api/students", {
        "student_ine": first["ine"], "college_uai": first["uai"], "last_name": "Martin", "first_name": "Léa",
        "class_name": "3e A",
        "referent": {"user_id": "referent-x", "name": "Mme Garnier", "email": "garnier@ac-paris.fr"},
    })
    # the one-click sign-in opens /eleve, read from the view: once the view shows the registration
    seen = demo_registration.get("/api/students", headers=passpro.auth("principal", first["uai"]),
                                 params={"min_position": registered["positions"]["service"]})
    assert seen.status_code == 200
    answer = browser.post("/eleve/connexion/demo", {"user_id": first["user_id"]})
    assert answer.status_code == 200 and "Bonjour Léa" in text(answer)


def test_the_one_click_sign_in_does_not_exist_outside_the_demo(passpro, registration):
    browser = Browser(registration)
    page = browser.get("/eleve/connexion")
    assert "Démonstration" not in text(page)
    assert browser.post("/eleve/connexion/demo", {"user_id": "eleve.270000100DM"}).status_code == 404


CODE_ON_PAGE = re.compile(r'class="access-code">([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})<')


def staff_browser(passpro, registration, role: str = "referent", uai: str = COLLEGE) -> Browser:
    staff = Browser(registration)
    staff.get("/connexion")
    assert staff.post("/connexion", {"jeton": passpro.token(role, uai)}).status_code == 200
    return staff


def test_the_referent_gives_a_code_from_the_students_page_and_the_student_signs_in_with_it(passpro, registration):
    register(passpro, registration)
    staff = staff_browser(passpro, registration)
    page = staff.get(f"/eleves/{INE}")
    assert "Donner un nouveau code d'accès à l'élève" in text(page) and "Aucun code donné pour l'instant." in text(page)
    shown = staff.post(f"/eleves/{INE}/code-acces", {})
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    assert "Pour Léa Martin" in text(shown) and "/eleve/connexion" in text(shown)
    code = CODE_ON_PAGE.search(shown.text).group(1)
    second = CODE_ON_PAGE.search(staff.post(f"/eleves/{INE}/code-acces", {}).text).group(1)
    assert "Dernier code donné le" in text(staff.get(f"/eleves/{INE}"))
    student = Browser(registration)  # the same cookie jar: the staff's session ends here
    assert student.sign_in(INE, code).status_code == 401  # the first code, replaced
    assert "Bonjour Léa" in text(student.sign_in(INE, second))


def test_only_the_students_college_gives_a_code_from_the_pages(passpro, registration):
    register(passpro, registration)
    before = passpro.snapshot()
    other = staff_browser(passpro, registration, "principal", "0751790N")
    assert other.post(f"/eleves/{INE}/code-acces", {}).status_code == 404
    assert passpro.snapshot() == before
    student = Browser(registration)
    student.sign_in(INE, code_for(passpro, registration))
    after_code = passpro.snapshot()
    assert student.post(f"/eleves/{INE}/code-acces", {}).status_code == 403
    assert passpro.snapshot() == after_code
