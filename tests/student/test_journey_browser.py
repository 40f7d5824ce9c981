"""THE student's journey (issue 13's browser test, SPEC §6) in Debian's Chromium through Playwright, on a phone
390 px wide and on a desktop, as one story: the référent gives an access code from the student's page of the
collège's space; the student signs in with it (a wrong code first: the French refusal), reads a formation's page,
sees their interview with the lycée's address and access, fills and saves the letter twice, marks it ready, prints
it (the print CSS: no menu; `page.pdf` is ONE A4 page), ticks the checklist and opens the convocation; the lycée
sees the ready letter on the interview's page; once the interview is held and the lycée's avis given, the student
sees the advice, the avis and the 2 500 points. axe-core finds no WCAG 2.1 A/AA violation on any student page and
nothing is wider than the window; every step's screenshot (and the PDF) is kept in tests/student/screenshots/.

The limits (every answer at its maximum length still one page, the convocation's PDF, the collège's letters pages)
are tests/letters/test_letters_browser.py's; the helpers are tests/student/browsing.py's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from browsing import WIDTHS, check_page, chromium, pdf_pages, serve

from shared.contracts.letter import default_letter_template

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
COLLEGE, LYCEE, FORMATION = "0752536Z", "0752845K", "2473121131"
FORMATION_LABEL = "2nde professionnelle Métiers de la relation client"
PORTS = range(19300, 19400)  # this work's own range
ADVICE = "Continue à te renseigner sur les stages en magasin et prépare des questions sur le bac pro."
TEMPLATE = default_letter_template()
ANSWERS = {
    "pourquoi": "J'aime conseiller les gens et je voudrais travailler dans un magasin.",
    "renseignements": "Je suis allée au CDI, au salon de l'orientation et j'ai lu la fiche ONISEP.",
}


@pytest.fixture
def served(passpro) -> Iterator[dict[str, str]]:
    """Registration (the student's and the collège's pages) and evaluation (the lycée's) on ports of 19300-19399."""
    with serve(passpro, "registration", PORTS) as registration, serve(passpro, "evaluation", PORTS) as evaluation:
        yield {"registration": registration, "evaluation": evaluation}


@pytest.fixture
def browser(served):
    with chromium(SCREENSHOTS) as browser:
        yield browser


def answer(question) -> str:
    return ANSWERS.get(question.id) or f"Ma réponse, réfléchie, à la question : {question.prompt.rstrip(' ?')}."


@pytest.mark.parametrize("width", list(WIDTHS))
def test_a_student_follows_their_journey_from_the_access_code_to_the_bonus(passpro, served, browser, width):
    site, lycee_site = served["registration"], served["evaluation"]
    ine = "123456789AB" if width == "telephone" else "1234567890A"
    principal, referent = passpro.auth("principal", COLLEGE), passpro.auth("referent", COLLEGE)
    with httpx.Client(base_url=site, timeout=20) as api:
        assert api.post("/api/students", headers=principal, json={
            "student_ine": ine, "college_uai": COLLEGE, "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
            "referent": {"user_id": "referent-dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"},
        }).status_code == 201
        assert api.post(f"/api/students/{ine}/college-avis", headers=principal, json={
            "college_uai": COLLEGE, "avis": "favorable", "comment": "Élève motivée, projet réfléchi."}).status_code == 201
        at = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
        scheduled = api.post(f"/api/students/{ine}/interviews", headers=referent, json={
            "lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": at.isoformat(), "mode": "presentiel"})
        assert scheduled.status_code == 201, scheduled.text
        interview_id = scheduled.json()["event"]["payload"]["interview_id"]
        api.get("/api/students", headers=referent, params={"min_position": scheduled.json()["positions"]["service"]})

    def shot(page, name: str) -> None:
        check_page(page, SCREENSHOTS, f"parcours-{name}", width)

    # 1. The référent, on the student's page of the collège's space, gives the code (shown once, printable).
    staff = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", **WIDTHS[width])
    staff.add_cookies([{"name": "passpro_registration", "value": passpro.token("referent", COLLEGE), "url": site}])
    desk = staff.new_page()
    desk.goto(f"{site}/eleves/{ine}")
    desk.get_by_role("button", name="Donner un nouveau code d'accès à l'élève").click()
    code = desk.locator(".access-code").inner_text()
    assert "Pour Léa Martin" in desk.inner_text("main")
    shot(desk, "01-code-donne-par-le-referent")
    staff.close()

    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", **WIDTHS[width])
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: m.type == "error" and "Content Security Policy" in m.text and blocked.append(m.text))
    try:
        # 2. Signing in: signed out, /eleve leads to the sign-in; a wrong code is refused in French; the right one opens.
        page.goto(site + "/eleve")
        assert "/eleve/connexion" in page.url
        shot(page, "02-connexion")
        page.get_by_label("Mon INE").fill(ine.lower())
        page.get_by_label("Mon code d'accès", exact=True).fill("AAAA-BBBB-CCCC")
        page.get_by_role("button", name="Entrer dans mon espace").click()
        assert "INE ou code d'accès incorrect" in page.inner_text("main")
        shot(page, "03-code-faux")
        page.get_by_label("Mon INE").fill(ine)
        page.get_by_label("Mon code d'accès", exact=True).fill(code)
        page.get_by_role("button", name="Entrer dans mon espace").click()
        page.wait_for_url(site + "/eleve")
        main = page.inner_text("main")
        assert "Bonjour Léa" in main and "Claire Dupont" in main and "Élève motivée, projet réfléchi." in main
        shot(page, "04-espace")

        # 3. A formation's page: the job, what comes after, ONISEP, the lycées with their access.
        page.goto(f"{site}/formations")
        shot(page, "05-formations")
        page.get_by_role("link", name=FORMATION_LABEL).click()
        page.wait_for_url(f"**/formations/{FORMATION}")
        assert page.locator("h1").inner_text() == FORMATION_LABEL
        for heading in ("Le métier", "Et après ?"):
            assert page.get_by_role("heading", name=heading, level=2).is_visible()
        assert page.locator('a[href^="https://www.onisep.fr/"]').count() >= 1
        shot(page, "06-formation")

        # 4. The interview: the lycée's address and stops, the journey planner with the lycée as destination only.
        page.goto(site + "/eleve")
        page.get_by_role("link", name="Tout voir sur cet entretien").click()
        main = page.inner_text("main")
        lycee = passpro.reference.get(LYCEE)
        assert lycee.address in main and lycee.access[0].stop in main
        journey = page.get_by_role("link", name="Mon itinéraire jusqu'au lycée (carte OpenStreetMap)").get_attribute("href")
        assert journey.startswith("https://www.openstreetmap.org/directions?to=")
        assert list(parse_qs(urlsplit(journey).query)) == ["to"]
        shot(page, "07-entretien")

        # 5. The letter: saved twice (one answer, then all), then marked ready.
        page.get_by_role("link", name="Remplir ma lettre de motivation").click()
        page.wait_for_url(f"**/eleve/lettres/{LYCEE}/{FORMATION}")
        shot(page, "08-lettre-vide")
        first = TEMPLATE.questions[0]
        page.get_by_label(first.prompt).fill(answer(first))
        page.get_by_role("button", name="Enregistrer ma lettre").click()
        page.wait_for_url("**fait=lettre&**")
        assert "Ta lettre est enregistrée" in page.locator("[role=status]").inner_text()
        shot(page, "09-lettre-enregistree-1")
        assert page.get_by_label(first.prompt).input_value() == answer(first)  # read back from the file
        for question in TEMPLATE.questions[1:]:
            page.get_by_label(question.prompt).fill(answer(question))
        page.get_by_role("button", name="Enregistrer ma lettre").click()
        page.wait_for_url("**fait=lettre&**")
        assert all(page.get_by_label(q.prompt).input_value() == answer(q) for q in TEMPLATE.questions)
        shot(page, "10-lettre-enregistree-2")
        page.get_by_label("Ma lettre est prête : mon référent et le lycée peuvent la lire").check()
        page.get_by_role("button", name="Enregistrer ma lettre").click()
        page.wait_for_url("**fait=lettre-prete**")
        assert "marquée prête" in page.locator("[role=status]").inner_text()
        ready_position = parse_qs(urlsplit(page.url).query)["position"][0]
        shot(page, "11-lettre-prete")

        # 6. Printing it: the print CSS hides the menu and the buttons; the PDF is one A4 page with every answer.
        page.get_by_role("link", name="Voir la lettre à imprimer").first.click()
        page.wait_for_url("**/imprimer")
        shot(page, "12-lettre-imprimable")
        page.emulate_media(media="print")
        assert not page.locator(".site-header").first.is_visible() and not page.locator(".no-print").first.is_visible()
        assert all(answer(q) in page.inner_text("main") for q in TEMPLATE.questions)
        pdf = page.pdf(format="A4", print_background=True)
        page.emulate_media(media="screen")
        (SCREENSHOTS / f"{width}-parcours-lettre.pdf").write_bytes(pdf)
        assert pdf_pages(pdf) == 1, f"the letter prints on {pdf_pages(pdf)} pages"

        # 7. The checklist, then the convocation.
        page.goto(f"{site}/eleve/entretiens/{interview_id}/preparation")
        shot(page, "13-preparation")
        for label in ("J'ai préparé mon itinéraire jusqu'au lycée", "J'ai imprimé ma lettre de motivation",
                      "J'ai un stylo et des feuilles pour prendre des notes"):
            page.get_by_label(label).check()
        page.get_by_role("button", name="Enregistrer").click()
        page.wait_for_url("**fait=preparation**")
        assert "Tout est prêt" in page.locator("main").inner_text()
        shot(page, "14-preparation-cochee")
        page.goto(f"{site}/eleve/entretiens/{interview_id}/convocation")
        assert "Convocation à un entretien d'information" in page.locator("h1").inner_text()
        assert lycee.address in page.inner_text("main")
        shot(page, "15-convocation")

        # 8. The lycée sees the ready letter on the interview's page.
        lycee_context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", **WIDTHS[width])
        lycee_context.add_cookies([{"name": "passpro_evaluation", "value": passpro.token("lycee_staff", LYCEE),
                                    "url": lycee_site}])
        lycee_page = lycee_context.new_page()
        lycee_page.goto(f"{lycee_site}/eleves/{ine}/{FORMATION}?position={ready_position}")
        seen = lycee_page.inner_text("main")
        assert "Lettre de motivation de l'élève" in seen
        assert all(answer(q) in seen for q in TEMPLATE.questions)
        lycee_page.screenshot(path=str(SCREENSHOTS / f"{width}-parcours-16-lycee-lettre.png"), full_page=True)
        lycee_context.close()

        # 9. The interview held, the lycée's avis given: the student reads the advice, the avis and the bonus.
        with httpx.Client(base_url=lycee_site, timeout=20) as lycee_api:
            held = lycee_api.post(f"/api/students/{ine}/interviews/held", headers=passpro.auth("lycee_staff", LYCEE),
                                  json={"lycee_uai": LYCEE, "formation_code": FORMATION,
                                        "held_at": (at + timedelta(minutes=30)).isoformat(),
                                        "report": {"motivation": "tres_satisfaisante",
                                                   "chances_of_success": "satisfaisante", "advice": ADVICE}})
            assert held.status_code == 201, held.text
            avis = lycee_api.post(f"/api/students/{ine}/lycee-avis", headers=passpro.auth("proviseur", LYCEE), json={
                "lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"})
            assert avis.status_code == 201, avis.text
        page.goto(f"{site}/eleve/entretiens/{interview_id}?position={avis.json()['positions']['service']}")
        main = page.inner_text("main")
        assert ADVICE in main and "Très satisfaisante" in main and "Favorable" in main
        assert "2\u202f500\u00a0points" in main
        shot(page, "17-compte-rendu")
        page.goto(site + "/eleve")
        assert "Mon bonus Affelnet" in page.inner_text("main")
        shot(page, "18-bonus")
        assert blocked == []  # the pages' policy (no inline script or style) blocked nothing
    finally:
        context.close()
