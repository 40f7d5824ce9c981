"""The letter, checklist and convocation pages (SPEC §6): the student fills, saves and marks ready their letter,
prints it, ticks their checklist and prints their convocation; the collège reads the letters (logged), ticks a
checklist and sees who is not ready for an interview in the next seven days. Forms run the API's handlers:
a refusal shows next to its field and stores nothing.
"""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
import html
import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from matrix import (  # noqa: F401  (world: the module's fixture)
    COLLEGE,
    FORMATION,
    LYCEE,
    OTHER_REFERENT,
    PRINCIPAL,
    PROVISEUR,
    REFERENT,
    STAFF,
    World,
    held_body,
    lycee_avis_body,
    register_body,
    world,
)
from services.registration.letters import not_ready
from shared.contracts.letter import default_letter_template
from shared.contracts.events import (
    Actor,
    Event,
    InterviewPreparationUpdated,
    InterviewScheduled,
    MotivationLetterSaved,
    Referent,
    StudentRegistered,
)
from shared.domain.student_file import StudentFile, fold

TEMPLATE = default_letter_template()
FULL = {f"answers.{q.id}": f"Ma réponse : {q.prompt}" for q in TEMPLATE.questions}
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def spaced(page: str) -> str:
    """The page's text with its entities decoded and French typography's no-break spaces as plain ones."""
    return html.unescape(page).replace("\u202f", " ").replace("\xa0", " ")


class Browser:
    """One signed-in browser on the registration service: its session cookie, and the CSRF token it last read."""

    def __init__(self, w: World, token: str) -> None:
        self.client = w.clients["registration"]
        self.client.cookies.clear()
        self.client.cookies.set("passpro_registration", token)
        self.csrf = ""

    def get(self, path: str, status: int = 200) -> str:
        answer = self.client.get(path)
        assert answer.status_code == status, answer.text[:2000]
        if found := _CSRF.search(answer.text):
            self.csrf = found.group(1)
        return spaced(answer.text)

    def post(self, path: str, form: dict[str, str], status: int = 200) -> str:
        answer = self.client.post(path, data={**form, "csrf": self.csrf}, follow_redirects=True)
        assert answer.status_code == status, answer.text[:2000]
        if found := _CSRF.search(answer.text):
            self.csrf = found.group(1)
        return spaced(answer.text)


def student(w: World, ine: str) -> Browser:
    return Browser(w, w.passpro.token("eleve", COLLEGE, user=f"eleve-{ine}", ine=ine))


def staff(w: World, caller) -> Browser:
    return Browser(w, w.passpro.token(caller.role, caller.uai))


def scheduled(w: World, *, mode: str = "presentiel", days: float = 3) -> tuple[str, str]:
    ine = w.prepare("registered")
    body = {"lycee_uai": LYCEE, "formation_code": FORMATION, "mode": mode,
            "scheduled_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
            "remote_equipment_ready": mode == "distanciel", **({"room": "Salle 204"} if mode == "distanciel" else {})}
    answer = w.ok("registration", f"/api/students/{ine}/interviews", body, REFERENT)
    caught_up(w, answer)
    return ine, answer["event"]["payload"]["interview_id"]


def caught_up(w: World, answer: dict) -> None:
    """Until the registration and evaluation views show the write that answered `answer`."""
    position = answer["positions"]["service"]
    for service, path, caller in (("registration", "/api/students", REFERENT), ("evaluation", "/api/interviews", STAFF)):
        assert w.get(service, path, caller, params={"min_position": position, "limit": 1}).status_code == 200


LETTER = f"/eleve/lettres/{LYCEE}/{FORMATION}"


def test_the_student_fills_saves_twice_marks_ready_and_prints_their_letter(world: World):
    ine, interview_id = scheduled(world)
    browser = student(world, ine)
    page = browser.get(LETTER)
    assert "Ma lettre de motivation" in page and "Lycée professionnel Théophile Gautier" in page
    assert all(q.prompt in page and q.help in page for q in TEMPLATE.questions)

    page = browser.post(LETTER, {"answers.pourquoi": "Le contact avec les clients."})
    assert "Ta lettre est enregistrée" in page and "brouillon" in page and "Le contact avec les clients." in page
    page = browser.post(LETTER, {**FULL, "ready": "on"})
    assert "marquée prête" in page
    mine = world.clients["registration"].get("/api/me/letters", headers={
        "Authorization": f"Bearer {world.passpro.token('eleve', COLLEGE, ine=ine)}"}).json()
    assert mine["letters"][0]["ready"] is True
    assert mine["letters"][0]["answers"] == {k.removeprefix("answers."): v for k, v in FULL.items()}

    printable = browser.get(f"{LETTER}/imprimer")
    assert "letter-page" in printable and all(v in printable for v in FULL.values())
    assert "Martin" in printable.replace("MARTIN", "Martin")


def test_a_refused_letter_shows_next_to_its_field_and_stores_nothing(world: World):
    ine, _ = scheduled(world)
    browser = student(world, ine)
    browser.get(LETTER)
    before = world.log_state()
    page = browser.post(LETTER, {"answers.pourquoi": "Seule réponse.", "ready": "on"}, status=409)
    assert "réponds à toutes les questions" in page and 'aria-invalid="true"' in page
    assert "Seule réponse." in page  # what was typed is kept
    page = browser.post(LETTER, {"answers.trajet": "x" * 301}, status=422)
    assert "300 caractères au plus" in page
    assert world.log_state() == before


def test_a_held_interview_s_letter_is_frozen_on_the_page(world: World):
    ine, _ = scheduled(world)
    browser = student(world, ine)
    browser.get(LETTER)
    browser.post(LETTER, {**FULL, "ready": "on"})
    caught_up(world, world.ok("evaluation", f"/api/students/{ine}/interviews/held", held_body(), STAFF))
    before = world.log_state()
    page = browser.get(LETTER)
    assert "ne peut plus changer" in page and "<textarea" not in page
    assert browser.post(LETTER, {**FULL}, status=409) and world.log_state() == before


def test_the_student_ticks_their_checklist_and_prints_their_convocation(world: World):
    ine, interview_id = scheduled(world, mode="distanciel")
    browser = student(world, ine)
    page = browser.get(f"/eleve/entretiens/{interview_id}/preparation")
    assert "J'ai préparé mon itinéraire" in page and "salle et le matériel du collège" in page
    page = browser.post(f"/eleve/entretiens/{interview_id}/preparation",
                        {"itinerary_ready": "on", "letter_printed": "on", "materials_ready": "on"})
    assert "Ta préparation est enregistrée" in page and "Tout est prêt" not in page  # the equipment is missing
    page = browser.post(f"/eleve/entretiens/{interview_id}/preparation",
                        {"itinerary_ready": "on", "letter_printed": "on", "materials_ready": "on",
                         "equipment_ready": "on"})
    assert "Tout est prêt" in page

    convocation = browser.get(f"/eleve/entretiens/{interview_id}/convocation")
    for said in ("Convocation à un entretien", "Léa MARTIN", "3e B", "Lycée professionnel Théophile Gautier",
                 "Distanciel", "ta lettre de motivation, imprimée", "un stylo et des feuilles",
                 "Claire Dupont", "claire.dupont@ac-paris.fr", "heure de Paris"):
        assert said in convocation, said


def test_a_presentiel_convocation_gives_the_address_access_and_time_in_paris(world: World):
    ine = world.prepare("registered")
    answer = world.ok("registration", f"/api/students/{ine}/interviews",
                      {"lycee_uai": LYCEE, "formation_code": FORMATION, "mode": "presentiel",
                       "scheduled_at": "2030-03-12T13:30:00+00:00"}, REFERENT)
    caught_up(world, answer)
    interview_id = answer["event"]["payload"]["interview_id"]
    page = student(world, ine).get(f"/eleve/entretiens/{interview_id}/convocation")
    assert "12 mars 2030 à 14 h 30" in page, page[page.find("Date et heure"):][:300]  # 13:30 UTC is 14:30 in Paris (winter time)
    assert "Présentiel" in page and "Adresse" in page and "Pour y aller" in page
    assert staff(world, REFERENT).get(f"/eleves/{ine}/entretiens/{interview_id}/convocation").count("14 h 30") >= 1


def test_a_student_reaches_only_their_own_pages(world: World):
    ine, interview_id = scheduled(world)
    other, others_interview = scheduled(world)
    browser = student(world, ine)
    browser.get(f"/eleve/entretiens/{others_interview}/preparation", status=404)
    browser.get(f"/eleve/entretiens/{others_interview}/convocation", status=404)
    browser.get(f"/eleves/{other}/lettres", status=403)
    browser.get("/preparation", status=403)
    staff(world, REFERENT).get(LETTER, status=403)  # the student's pages are the student's


def test_the_college_reads_the_letters_ticks_and_the_read_is_logged(world: World):
    ine, interview_id = scheduled(world)
    browser = student(world, ine)
    browser.get(LETTER)
    browser.post(LETTER, {"answers.metier": "Conseiller les clients en magasin."})
    access_key = world.passpro.keys.access_log(CAMPAIGN, ine)
    logged = world.passpro.redis.xlen(access_key)

    referent = staff(world, REFERENT)
    page = referent.get(f"/eleves/{ine}/lettres")
    assert "Brouillon" in page and "Conseiller les clients en magasin." in page
    assert world.passpro.redis.xlen(access_key) == logged + 1
    page = referent.post(f"/eleves/{ine}/entretiens/{interview_id}/preparation", {"itinerary_ready": "on"})
    assert "La préparation de l'entretien est enregistrée" in page and "par référent(e)" in page
    staff(world, OTHER_REFERENT).get(f"/eleves/{ine}/lettres", status=404)
    assert "Lettres de motivation et préparation" in staff(world, PRINCIPAL).get(f"/eleves/{ine}")


def test_the_referents_list_shows_who_is_not_ready_in_the_next_seven_days(world: World):
    soon, soon_interview = scheduled(world, days=2)
    ready, ready_interview = scheduled(world, days=3)
    later, _ = scheduled(world, days=20)
    browser = student(world, ready)
    browser.get(LETTER)
    browser.post(LETTER, {**FULL, "ready": "on"})
    browser.get(f"/eleve/entretiens/{ready_interview}/preparation")
    browser.post(f"/eleve/entretiens/{ready_interview}/preparation",
                 {"itinerary_ready": "on", "letter_printed": "on", "materials_ready": "on"})
    page = staff(world, REFERENT).get("/preparation")
    assert f"/eleves/{soon}/lettres" in page and "Pas commencée" in page
    assert f"/eleves/{ready}/lettres" not in page and f"/eleves/{later}/lettres" not in page


def file_with(ine: str, at: datetime, *, letter_ready: bool = False, prepared: bool = False) -> StudentFile:
    """A student of COLLEGE with one présentiel interview at `at`, their letter ready or not, prepared or not."""
    referent = Referent(user_id="referent-dupont", name="Claire Dupont", email="claire.dupont@ac-paris.fr")
    payloads = [
        StudentRegistered(college_uai=COLLEGE, last_name="Martin", first_name="Léa", class_name="3e B",
                          referent=referent),
        InterviewScheduled(interview_id="itw-1", lycee_uai=LYCEE, formation_code=FORMATION, scheduled_at=at,
                           mode="presentiel"),
        MotivationLetterSaved(lycee_uai=LYCEE, formation_code=FORMATION, answers={"pourquoi": "Parce que."},
                              ready=letter_ready),
        InterviewPreparationUpdated(interview_id="itw-1", itinerary_ready=True, letter_printed=prepared,
                                    materials_ready=True),
    ]
    actor = Actor(user_id="referent-dupont", role="referent", uai=COLLEGE)
    events = [(Event(event_id=uuid4(), occurred_at=at - timedelta(days=9), campaign=CAMPAIGN, student_ine=ine,
                     actor=actor, payload=p), n) for n, p in enumerate(payloads, start=1)]
    return fold(CAMPAIGN, ine, events)


def test_not_ready_keeps_the_next_seven_days_and_the_students_not_ready():
    now = datetime(YEAR, 3, 1, 9, 0, tzinfo=UTC)
    files = [
        file_with("000000001AA", now + timedelta(days=1)),
        file_with("000000002AA", now + timedelta(days=6, hours=23), letter_ready=True, prepared=True),
        file_with("000000003AA", now + timedelta(days=8)),
        file_with("000000004AA", now - timedelta(hours=1)),
        file_with("000000005AA", now + timedelta(days=2), letter_ready=True),
        file_with("000000006AA", now + timedelta(hours=5), prepared=True),
    ]
    assert [r["file"].ine for r in not_ready(files, now)] == ["000000006AA", "000000001AA", "000000005AA"]


def test_a_visitor_is_sent_to_the_students_sign_in_and_a_student_sees_their_space(world: World):
    client = world.clients["registration"]
    client.cookies.clear()
    answer = client.get(LETTER, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/eleve/connexion?suite=/eleve/lettres/{LYCEE}/{FORMATION}"
    ine, _ = scheduled(world)
    page = student(world, ine).get(LETTER)
    assert "Espace élève" in page and 'href="/eleve"' in page and "Mes élèves" not in page


def test_after_the_interview_the_convocation_gives_the_report_and_the_avis(world: World):
    ine, interview_id = scheduled(world)
    caught_up(world, world.ok("evaluation", f"/api/students/{ine}/interviews/held", held_body(), STAFF))
    page = student(world, ine).get(f"/eleve/entretiens/{interview_id}/convocation")
    assert "Après l'entretien" in page and "Visiter l'atelier." in page and "pas encore donné" in page
    assert "À apporter" not in page
    caught_up(world, world.ok("evaluation", f"/api/students/{ine}/lycee-avis", lycee_avis_body(), PROVISEUR))
    page = student(world, ine).get(f"/eleve/entretiens/{interview_id}/convocation")
    assert "L'avis du lycée" in page and "Favorable" in page
    # A cancelled interview has no convocation.
    other, other_interview = scheduled(world)
    caught_up(world, world.ok("registration", f"/api/students/{other}/interviews/cancel",
                              {"lycee_uai": LYCEE, "formation_code": FORMATION, "reason": "reporte"}, REFERENT))
    assert "annulé" in student(world, other).get(f"/eleve/entretiens/{other_interview}/convocation", status=404)


def test_a_tampered_checklist_form_is_refused_in_french_and_stores_nothing(world: World):
    ine, interview_id = scheduled(world)
    browser = student(world, ine)
    browser.get(f"/eleve/entretiens/{interview_id}/preparation")
    before = world.log_state()
    page = browser.post(f"/eleve/entretiens/{interview_id}/preparation",
                        {"itinerary_ready": "on", "event_id": "pas-un-identifiant"}, status=422)
    assert "Identifiant (UUID) invalide." in page
    assert world.log_state() == before
    referent = staff(world, REFERENT)
    referent.get(f"/eleves/{ine}/lettres")  # logged in the student's access log
    before = world.log_state()
    page = referent.post(f"/eleves/{ine}/entretiens/{interview_id}/preparation",
                         {"itinerary_ready": "on", "event_id": "pas-un-identifiant"}, status=422)
    assert "Identifiant (UUID) invalide." in page
    assert world.log_state() == before
