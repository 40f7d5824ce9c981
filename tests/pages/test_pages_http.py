"""The pages over HTTP, in process (SPEC §5 « Web pages », issue 6): sign-in and its cookie, CSRF, rights,
refusals shown by their fields with what was typed, confirmations and the change visible at once.

Every refused form is checked to have stored nothing (the académie's keys are unchanged).
"""

from __future__ import annotations

from event_factories import YEAR  # the year of the campaign to come (2027 until its rentrée)
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from pages_world import (
    CAMPAIGN,
    COLLEGE,
    FORMATION,
    LYCEE,
    OTHER_COLLEGE,
    OTHER_LYCEE,
    Visitor,
    World,
    api_post,
    college_avis,
    register_student,
    schedule,
    text_of,
)

INE = "123456789AB"
SERVICES = ("registration", "evaluation", "scoring")
HOME_ROLE = {"registration": ("principal", COLLEGE), "evaluation": ("proviseur", LYCEE), "scoring": ("rectorat", None)}


def student_form(**changes: str) -> dict[str, str]:
    form = {
        "event_id": str(uuid.uuid4()), "student_ine": INE, "last_name": "Martin", "first_name": "Léa",
        "class_name": "3e B", "referent.name": "Claire Dupont", "referent.email": "claire.dupont@ac-paris.fr",
        "referent.user_id": "",
    }
    return form | changes


def field_error(page: str, field_id: str) -> str:
    """The error shown under one field (its `<p class="field-error" id="…-erreur">`), as text."""
    found = re.search(rf'<p class="field-error" id="{re.escape(field_id)}-erreur">(.*?)</p>', page, re.S)
    return text_of(found.group(1)).removeprefix("Erreur : ") if found else ""


def input_value(page: str, field_id: str) -> str:
    found = re.search(rf'id="{re.escape(field_id)}"[^>]*value="([^"]*)"', page)
    return found.group(1) if found else ""


def paris_local(moment: datetime) -> str:
    from shared.fr.formats import paris_input

    return paris_input(moment)


# --- sign-in and the session --------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_a_signed_out_visitor_is_sent_to_the_sign_in_page_which_answers_200(world: World, service: str):
    with world.visitor(service) as visitor:
        home = visitor.client.get("/", follow_redirects=False)
        assert home.status_code == 303 and home.headers["location"] == "/connexion"
        page = visitor.get("/connexion")
        assert page.status_code == 200
        assert 'name="jeton"' in page.text and "Connexion" in text_of(page.text)
        assert page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("service", SERVICES)
def test_a_pasted_token_opens_a_session_in_an_http_only_same_site_cookie_named_for_the_service(world: World, service: str):
    role, uai = HOME_ROLE[service]
    with world.visitor(service) as visitor:
        visitor.get("/connexion")
        answer = visitor.post("/connexion", {"jeton": world.token(role, uai, ttl_seconds=3600)}, follow=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(f"passpro_{service}="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))
        assert 3500 <= max_age <= 3600  # the session ends with the token
        assert visitor.get("/").status_code == 200


def test_a_bad_token_is_refused_by_its_field_and_opens_no_session(world: World):
    with world.visitor("registration") as visitor:
        visitor.get("/connexion")
        answer = visitor.post("/connexion", {"jeton": "pas-un-jeton"}, follow=False)
        assert answer.status_code == 401
        assert "invalide ou expiré" in field_error(answer.text, "connexion-jeton")
        assert "pas-un-jeton" in answer.text  # what was pasted is still there
        assert not any(c.startswith("passpro_registration=") for c in answer.headers.get_list("set-cookie"))


def test_a_token_for_another_space_is_refused_with_the_reason(world: World):
    with world.visitor("registration") as visitor:
        visitor.get("/connexion")
        answer = visitor.post("/connexion", {"jeton": world.token("rectorat", None)})
        assert answer.status_code == 403
        assert "n'a pas accès à l'espace collège" in field_error(answer.text, "connexion-jeton")


def test_an_expired_session_sends_back_to_the_sign_in_page(world: World):
    expired = world.token("principal", COLLEGE, now=time.time() - 7200, ttl_seconds=3600)
    with world.visitor("registration") as visitor:
        visitor.client.cookies.set("passpro_registration", expired)
        answer = visitor.client.get("/", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/connexion"


def test_signing_in_returns_to_the_page_asked_for_and_never_to_another_site(world: World):
    with world.visitor("registration") as visitor:
        asked = visitor.client.get("/eleves/nouveau", follow_redirects=False)
        assert asked.headers["location"] == "/connexion?suite=/eleves/nouveau"
        visitor.get(asked.headers["location"])
        answer = visitor.post("/connexion", {"jeton": world.token("principal", COLLEGE), "suite": "/eleves/nouveau"}, follow=False)
        assert answer.headers["location"] == "/eleves/nouveau"
        visitor.get("/connexion")  # signed in: the forms' CSRF tokens are now bound to the new session
        answer = visitor.post("/connexion", {"jeton": world.token("principal", COLLEGE), "suite": "//ailleurs.example"}, follow=False)
        assert answer.headers["location"] == "/"


def test_signing_out_ends_the_session(world: World):
    with world.visitor("registration", "principal", COLLEGE) as visitor:
        visitor.get("/")
        answer = visitor.post("/deconnexion", {})
        assert answer.url.path == "/connexion" and "Vous êtes déconnecté(e)." in text_of(answer.text)
        assert visitor.client.get("/", follow_redirects=False).status_code == 303


def test_demo_users_sign_in_in_one_click_in_demo_mode_only(world: World):
    with world.visitor("registration", demo=True) as visitor:
        page = visitor.get("/connexion")
        assert "Principal(e) du collège — Collège Voltaire" in text_of(page.text)
        assert 'value="rectorat.demo"' not in page.text and f'value="proviseur.{OTHER_LYCEE}"' not in page.text
        home = visitor.post("/connexion/demo", {"user_id": f"principal.{COLLEGE}"})
        assert home.status_code == 200 and home.url.path == "/"
        assert "Mes élèves" in text_of(home.text) and f"principal.{COLLEGE}" in home.text
    with world.visitor("registration", demo=False) as visitor:
        page = visitor.get("/connexion")
        assert "Démonstration" not in text_of(page.text)
        refused = visitor.post("/connexion/demo", {"user_id": f"principal.{COLLEGE}"}, follow=False)
        assert refused.status_code == 404
        assert not any(c.startswith("passpro_registration=") for c in refused.headers.get_list("set-cookie"))


# --- CSRF -------------------------------------------------------------------------------------------------


def test_a_form_posted_without_its_csrf_token_is_refused_and_stores_nothing(world: World):
    with world.visitor("registration", "principal", COLLEGE) as visitor:
        before = world.snapshot()
        answer = visitor.post("/eleves", student_form(), csrf=False)
        assert answer.status_code == 403
        assert "Ce formulaire a expiré" in text_of(answer.text)
        assert world.snapshot() == before


def test_a_csrf_token_of_another_session_is_refused(world: World):
    with world.visitor("registration", "principal", COLLEGE) as mine, world.visitor("registration", "principal", COLLEGE) as theirs:
        mine.get("/eleves/nouveau")
        theirs.get("/eleves/nouveau")
        theirs.csrf = mine.csrf
        before = world.snapshot()
        assert theirs.post("/eleves", student_form()).status_code == 403
        assert world.snapshot() == before


def test_signing_out_needs_the_csrf_token_too(world: World):
    with world.visitor("registration", "principal", COLLEGE) as visitor:
        assert visitor.post("/deconnexion", {}, csrf=False).status_code == 403
        assert visitor.client.get("/", follow_redirects=False).status_code == 200


# --- the collège's pages -------------------------------------------------------------------------------


def registered(world: World) -> str:
    """A student registered through the API; returns the position a page must wait for to show it."""
    with world.client("registration") as registration:
        return register_student(world, registration, INE)["positions"]["service"]


def test_a_refused_registration_shows_the_error_by_its_field_and_keeps_what_was_typed(world: World):
    with world.visitor("registration", "principal", COLLEGE) as visitor:
        visitor.get("/eleves/nouveau")
        before = world.snapshot()
        answer = visitor.post("/eleves", student_form(student_ine="12345", first_name="Léa-Rose", class_name=""))
        assert answer.status_code == 422
        assert field_error(answer.text, "inscription-student-ine").startswith("INE invalide")
        assert field_error(answer.text, "inscription-class-name") == "Champ obligatoire."
        assert field_error(answer.text, "inscription-last-name") == ""
        assert input_value(answer.text, "inscription-student-ine") == "12345"
        assert input_value(answer.text, "inscription-first-name") == "Léa-Rose"
        assert input_value(answer.text, "inscription-referent-email") == "claire.dupont@ac-paris.fr"
        assert 'aria-invalid="true"' in answer.text and "error-summary" in answer.text
        assert world.snapshot() == before


def test_a_registration_is_confirmed_and_the_student_shown_at_once(world: World):
    with world.visitor("registration", "principal", COLLEGE) as visitor:
        visitor.get("/eleves/nouveau")
        answer = visitor.post("/eleves", student_form(student_ine=" 123456789ab "))
        assert answer.status_code == 200 and answer.url.path == f"/eleves/{INE}"
        page = text_of(answer.text)
        assert "L'élève est inscrit au dispositif Passpro." in page
        assert "Léa MARTIN" in page and "Claire Dupont" in page
        assert "Saisir l'avis du collège (avant les entretiens)" in page
        listing = text_of(visitor.get("/").text)
        assert "MARTIN Léa" in listing and "À saisir" in listing


def test_a_student_registered_twice_is_refused_by_the_ine_field(world: World):
    with world.visitor("registration", "principal", COLLEGE) as visitor:
        visitor.get("/eleves/nouveau")
        visitor.post("/eleves", student_form())
        visitor.get("/eleves/nouveau")
        again = visitor.post("/eleves", student_form(last_name="Autre"))
        assert again.status_code == 409
        assert "déjà inscrit" in field_error(again.text, "inscription-student-ine")
        assert input_value(again.text, "inscription-last-name") == "Autre"


def test_the_same_form_posted_twice_stores_one_event(world: World):
    with world.visitor("registration", "principal", COLLEGE) as visitor:
        visitor.get("/eleves/nouveau")
        form = student_form()
        first = visitor.post("/eleves", form)
        second = visitor.post("/eleves", form)  # a double click: same event id, same body
        assert first.status_code == second.status_code == 200
        assert world.redis.xlen(f"passpro:{{{world.academie}}}:{CAMPAIGN}:student:{INE}") == 1


def test_the_college_avis_is_given_with_its_reminder_and_shown_at_once(world: World):
    position = registered(world)
    with world.visitor("registration", "principal", COLLEGE) as visitor:
        page = visitor.get(f"/eleves/{INE}?position={position}")
        assert "À saisir avant les entretiens." in text_of(page.text)
        answer = visitor.post(f"/eleves/{INE}/avis", {"event_id": str(uuid.uuid4()), "avis": "assez_favorable", "comment": "Projet mûri."})
        text = text_of(answer.text)
        assert "L'avis du collège est enregistré" in text
        assert "Assez favorable" in text and "Projet mûri." in text


def test_a_distanciel_interview_without_the_equipment_is_refused_by_the_checkbox(world: World):
    position = registered(world)
    with world.visitor("registration", "referent", COLLEGE) as visitor:
        visitor.get(f"/eleves/{INE}?position={position}")
        before = world.snapshot()
        answer = visitor.post(
            f"/eleves/{INE}/entretiens",
            {"event_id": str(uuid.uuid4()), "voeu": f"{LYCEE}:{FORMATION}", "scheduled_at": f"{YEAR}-05-12T14:30", "mode": "distanciel"},
        )
        assert answer.status_code == 409
        assert "équipement" in field_error(answer.text, "entretien-remote-equipment-ready")
        assert f'value="{LYCEE}:{FORMATION}" selected' in answer.text
        assert input_value(answer.text, "entretien-scheduled-at") == f"{YEAR}-05-12T14:30"
        assert world.snapshot() == before
        done = visitor.post(
            f"/eleves/{INE}/entretiens",
            {"event_id": str(uuid.uuid4()), "voeu": f"{LYCEE}:{FORMATION}", "scheduled_at": f"{YEAR}-05-12T14:30",
             "mode": "distanciel", "remote_equipment_ready": "on", "room": "Salle 204"},
        )
        text = text_of(done.text)
        assert "L'élève est inscrit à l'entretien." in text
        assert f"12 mai {YEAR} à 14 h 30" in text and "Distanciel" in text  # shown in Paris time


def test_an_interview_is_cancelled_from_the_students_page(world: World):
    with world.client("registration") as registration:
        register_student(world, registration, INE)
        position = schedule(world, registration, INE, f"{YEAR}-05-12T12:30:00+00:00")["positions"]["service"]
    with world.visitor("registration", "referent", COLLEGE) as visitor:
        visitor.get(f"/eleves/{INE}?position={position}")
        answer = visitor.post(
            f"/eleves/{INE}/entretiens/annulation",
            {"event_id": str(uuid.uuid4()), "lycee_uai": LYCEE, "formation_code": FORMATION, "reason": "reporte"},
        )
        assert "L'entretien est annulé." in text_of(answer.text) and "Annulé" in text_of(answer.text)


def test_a_referent_sees_no_avis_form_and_is_refused_if_they_post_one(world: World):
    position = registered(world)
    with world.visitor("registration", "referent", COLLEGE) as visitor:
        page = visitor.get(f"/eleves/{INE}?position={position}")
        assert f'action="/eleves/{INE}/avis"' not in page.text and f'action="/eleves/{INE}/entretiens"' in page.text
        before = world.snapshot()
        answer = visitor.post(f"/eleves/{INE}/avis", {"avis": "favorable", "comment": "Bien."})
        assert answer.status_code == 403
        assert "Votre rôle ne permet pas cette action." in text_of(answer.text)
        assert world.snapshot() == before


def test_another_colleges_student_reads_as_a_french_not_found_page(world: World):
    position = registered(world)
    with world.visitor("registration", "principal", OTHER_COLLEGE) as visitor:
        page = visitor.get(f"/eleves/{INE}?position={position}")
        assert page.status_code == 404 and "Élève introuvable." in text_of(page.text)
        before = world.snapshot()
        answer = visitor.post(f"/eleves/{INE}/avis", {"avis": "favorable", "comment": "Bien."})
        assert answer.status_code == 404
        assert world.snapshot() == before
        assert "MARTIN" not in text_of(visitor.get(f"/?position={position}").text)


def test_withdrawal_and_reinstatement_from_the_students_page(world: World):
    position = registered(world)
    with world.visitor("registration", "principal", COLLEGE) as visitor:
        visitor.get(f"/eleves/{INE}?position={position}")
        withdrawn = visitor.post(f"/eleves/{INE}/retrait", {"event_id": str(uuid.uuid4()), "reason": "Choix de la voie générale"})
        assert "L'élève est retiré du dispositif." in text_of(withdrawn.text)
        assert f'action="/eleves/{INE}/entretiens"' not in withdrawn.text
        back = visitor.post(f"/eleves/{INE}/reintegration", {"event_id": str(uuid.uuid4()), "reason": "Projet confirmé"})
        assert "L'élève est réintégré au dispositif." in text_of(back.text)


# --- the lycée's pages ------------------------------------------------------------------------------------


def scheduled_student(world: World, *, with_avis: bool = True) -> str:
    """A student with a past interview at LYCEE; returns the position the evaluation view must reach."""
    with world.client("registration") as registration:
        register_student(world, registration, INE)
        if with_avis:
            college_avis(world, registration, INE)
        answer = schedule(world, registration, INE, (datetime.now(UTC) - timedelta(hours=2)).isoformat())
    return answer["positions"]["service"]


def report_form(**changes: str) -> dict[str, str]:
    form = {
        "event_id": str(uuid.uuid4()), "held_at": paris_local(datetime.now(UTC) - timedelta(hours=1)), "mode": "presentiel",
        "report.motivation": "tres_satisfaisante", "report.chances_of_success": "satisfaisante",
        "report.advice": "Visiter l'atelier et rencontrer les élèves de seconde.",
    }
    return form | changes


def test_the_lycee_list_shows_the_missing_college_avis(world: World):
    position = scheduled_student(world, with_avis=False)
    with world.visitor("evaluation", "lycee_staff", LYCEE) as visitor:
        page = text_of(visitor.get(f"/?position={position}").text)
        assert "MARTIN Léa" in page and "avis du collège manquant" in page


def test_a_report_dated_in_the_future_is_refused_by_its_date_and_keeps_the_advice(world: World):
    position = scheduled_student(world)
    with world.visitor("evaluation", "lycee_staff", LYCEE) as visitor:
        page = visitor.get(f"/eleves/{INE}/{FORMATION}?position={position}")
        assert "Très motivée" not in page.text and "Élève très impliquée dans son projet." in text_of(page.text)
        before = world.snapshot()
        future = paris_local(datetime.now(UTC) + timedelta(days=2))
        answer = visitor.post(f"/eleves/{INE}/{FORMATION}/compte-rendu", report_form(held_at=future))
        assert answer.status_code == 422
        assert "ne peut pas être dans le futur" in field_error(answer.text, "compte-rendu-held-at")
        assert "Visiter l&#39;atelier et rencontrer les élèves de seconde." in answer.text
        assert world.snapshot() == before


def test_the_report_is_recorded_and_printable_and_only_the_proviseur_gives_the_avis(world: World):
    position = scheduled_student(world)
    with world.visitor("evaluation", "lycee_staff", LYCEE) as staff:
        staff.get(f"/eleves/{INE}/{FORMATION}?position={position}")
        held = staff.post(f"/eleves/{INE}/{FORMATION}/compte-rendu", report_form())
        text = text_of(held.text)
        assert "L'entretien est enregistré comme tenu, avec son compte rendu." in text
        assert "Très satisfaisante" in text and f'action="/eleves/{INE}/{FORMATION}/avis"' not in held.text
        before = world.snapshot()
        assert staff.post(f"/eleves/{INE}/{FORMATION}/avis", {"avis": "favorable"}).status_code == 403
        assert world.snapshot() == before
        printable = staff.get(f"/eleves/{INE}/{FORMATION}/compte-rendu")
        assert printable.status_code == 200 and "Compte rendu d'entretien Passpro" in text_of(printable.text)
    with world.visitor("evaluation", "proviseur", LYCEE) as proviseur:
        proviseur.get(f"/eleves/{INE}/{FORMATION}")
        favorable = proviseur.post(f"/eleves/{INE}/{FORMATION}/avis", {"event_id": str(uuid.uuid4()), "avis": "favorable"})
        assert "L'avis du lycée est enregistré." in text_of(favorable.text)
        corrected = proviseur.post(f"/eleves/{INE}/{FORMATION}/avis", {"event_id": str(uuid.uuid4()), "avis": "reserve"})
        history = text_of(corrected.text).split("Avis donnés")[1]
        assert history.index("Réservé — avis en vigueur") < history.index("Favorable — remplacé")


def test_another_lycee_sees_no_such_interview(world: World):
    position = scheduled_student(world)
    with world.visitor("evaluation", "proviseur", OTHER_LYCEE) as visitor:
        page = visitor.get(f"/eleves/{INE}/{FORMATION}?position={position}")
        assert page.status_code == 404 and "Élève introuvable." in text_of(page.text)
        assert "MARTIN" not in text_of(visitor.get("/").text)


# --- the rectorat's pages ------------------------------------------------------------------------------


def test_the_dashboard_shows_the_bonus_filters_it_and_downloads_the_affelnet_file(world: World):
    position = scheduled_student(world)
    with world.client("evaluation") as evaluation:
        held = datetime.now(UTC) - timedelta(hours=1)
        api_post(evaluation, world.token("lycee_staff", LYCEE), f"/api/students/{INE}/interviews/held", {
            "lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": held.isoformat(),
            "report": {"motivation": "satisfaisante", "chances_of_success": "satisfaisante", "advice": "Bien."},
        })
        position = api_post(evaluation, world.token("proviseur", LYCEE), f"/api/students/{INE}/lycee-avis",
                            {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"})["positions"]["service"]
    with world.visitor("scoring", "rectorat", None) as visitor:
        visitor.client.get(f"/api/bonuses/{INE}?min_position={position}", headers={"Authorization": f"Bearer {world.token('rectorat', None)}"})
        page = text_of(visitor.get("/").text)
        assert "Léa MARTIN" in page and "2 500 points" in page
        assert "Bonus par lycée et formation" in page
        filtered = text_of(visitor.get(f"/?lycee_uai={OTHER_LYCEE}").text)
        assert "Léa MARTIN" not in filtered and "Aucun vœu pour ces filtres." in filtered
        refused = visitor.get("/?college_uai=0000000A")
        assert refused.status_code == 422 and field_error(refused.text, "filtre-college-uai") == "Collège inconnu du référentiel."
        csv = visitor.get("/export/affelnet.csv")
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines() == ["INE;UAI_ACCUEIL;CODE_MEF;BONUS", f"{INE};{LYCEE};{FORMATION};2500"]
        student = text_of(visitor.get(f"/eleves/{INE}").text)
        assert "2 500 points au total" in student
        assert student.index("Inscription au dispositif") < student.index("Avis du lycée le")


def test_the_dashboard_parses_no_stored_file_but_those_of_its_page(world: World, monkeypatch):
    """Issue 12, finding 5: the figures and the progress chart are counted in SQL from what the projection
    keeps; the only files read are the shown page's (for the names), by INE."""
    from sqlalchemy import event

    from services.scoring import pages
    from shared.domain.student_file import StudentFile

    ines = [f"{n:09d}DB" for n in range(5)]
    with world.client("registration") as registration, world.client("evaluation") as evaluation:
        for ine in ines:
            register_student(world, registration, ine)
            college_avis(world, registration, ine)
            schedule(world, registration, ine, (datetime.now(UTC) - timedelta(hours=2)).isoformat())
            api_post(evaluation, world.token("lycee_staff", LYCEE), f"/api/students/{ine}/interviews/held", {
                "lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "report": {"motivation": "satisfaisante", "chances_of_success": "satisfaisante", "advice": "Bien."},
            })
            position = api_post(evaluation, world.token("proviseur", LYCEE), f"/api/students/{ine}/lycee-avis",
                                {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"})["positions"]["service"]
    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    parsed, statements = [], []
    original = StudentFile.model_validate_json.__func__
    monkeypatch.setattr(StudentFile, "model_validate_json", classmethod(lambda cls, *a, **k: parsed.append(1) or original(cls, *a, **k)))
    with world.visitor("scoring", "rectorat", None) as visitor:
        rectorat = {"Authorization": f"Bearer {world.token('rectorat', None)}"}
        assert visitor.client.get(f"/api/bonuses/{ines[-1]}?min_position={position}", headers=rectorat).status_code == 200
        engine = visitor.client.app.state.runtime.engine
        record = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
        event.listen(engine, "before_cursor_execute", record)
        parsed.clear()
        page = text_of(visitor.get("/").text)
        event.remove(engine, "before_cursor_execute", record)
    assert "Avancement de la campagne" in page and "Léa MARTIN" in page
    assert len(parsed) == 2  # the page's two names, not the five files
    reading_files = [s for s in statements if "student_files" in s]
    assert reading_files and all("student_files.ine IN" in s for s in reading_files), reading_files


def test_an_unknown_student_is_a_french_not_found_page_for_the_rectorat(world: World):
    with world.visitor("scoring", "rectorat", None) as visitor:
        page = visitor.get(f"/eleves/{INE}")
        assert page.status_code == 404 and "Élève introuvable." in text_of(page.text)


# --- every page -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_an_unknown_address_is_a_french_page_while_the_api_keeps_its_json(world: World, service: str):
    role, uai = HOME_ROLE[service]
    with world.visitor(service, role, uai) as visitor:
        page = visitor.get("/nulle-part")
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "Page introuvable" in text_of(page.text)
        api = visitor.client.get("/api/nulle-part", headers={"Authorization": f"Bearer {world.token(role, uai)}"})
        assert api.status_code == 404 and api.json()["error"] == "not_found"


@pytest.mark.parametrize("service", SERVICES)
def test_pages_are_never_cached_nor_framed_and_load_nothing_from_elsewhere(world: World, service: str):
    role, uai = HOME_ROLE[service]
    with world.visitor(service, role, uai) as visitor:
        page = visitor.get("/")
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert not re.search(r'(src|href)="(https?:)?//', page.text)
        assert visitor.get("/static/passpro.css").status_code == 200


class _Fields(HTMLParser):
    """The form fields, the labels' targets and the h1 headings of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[str] = []
        self.labelled: set[str] = set()
        self.h1 = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("input", "select", "textarea") and found.get("type") not in ("hidden", "submit"):
            self.fields.append(found.get("id") or f"<{tag} name={found.get('name')} without id>")
        elif tag == "label" and found.get("for"):
            self.labelled.add(found["for"])
        elif tag == "h1":
            self.h1 += 1


def test_every_field_of_every_page_has_its_label_and_every_page_one_heading(world: World):
    position = scheduled_student(world)
    pages = [
        ("registration", "principal", COLLEGE, ["/connexion", "/", "/eleves/nouveau", f"/eleves/{INE}?position={position}"]),
        ("evaluation", "proviseur", LYCEE, ["/", f"/eleves/{INE}/{FORMATION}?position={position}"]),
        ("scoring", "rectorat", None, ["/", f"/eleves/{INE}"]),
    ]
    checked = 0
    for service, role, uai, paths in pages:
        with world.visitor(service, role, uai) as visitor:
            for path in paths:
                page = visitor.get(path)
                assert page.status_code == 200, (service, path)
                parsed = _Fields()
                parsed.feed(page.text)
                unlabelled = [f for f in parsed.fields if f not in parsed.labelled]
                assert not unlabelled, (service, path, unlabelled)
                assert parsed.h1 == 1, (service, path)
                checked += len(parsed.fields)
    assert checked > 30  # the forms were there to check
