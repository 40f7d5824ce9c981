"""The letter and the convocation in a real browser (Debian's Chromium, headless, through Playwright): on a phone
390 px wide and on a desktop, the student fills the letter, saves it, marks it ready and ticks the checklist; the
letter with every answer at its maximum length prints as ONE A4 page (`page.pdf`), and so does the convocation;
axe-core (tests/axe) finds no WCAG 2.1 A/AA violation on any of these pages, nor on the collège's pages of the
letters. Screenshots and the PDFs are kept in tests/letters/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from browsing import WIDTHS, chromium, overflow, pdf_pages, serve, violations

from shared.contracts.letter import default_letter_template

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
COLLEGE, LYCEE, FORMATION = "0752536Z", "0752845K", "2473121131"
PORTS = range(18400, 18500)  # this work's own range
TEMPLATE = default_letter_template()
SENTENCE = ("J'ai découvert ce métier au salon de l'orientation et au CDI, puis pendant mon stage de 3e dans une "
            "boutique du quartier, où j'ai aidé à conseiller les clients et à ranger les rayons. ")


def longest(max_length: int) -> str:
    """A realistic answer exactly `max_length` characters long, with a line break, as a student would type it."""
    text = (SENTENCE * (max_length // len(SENTENCE) + 1))[: max_length - 1].rstrip()
    return (text[: max_length // 2] + "\n" + text[max_length // 2:])[:max_length]


@pytest.fixture
def served(passpro) -> Iterator[str]:
    """The registration service on a local port of 18400-18499, in this process (uvicorn in a thread)."""
    with serve(passpro, "registration", PORTS) as url:
        yield url


@pytest.fixture
def browser(served):
    with chromium(SCREENSHOTS) as browser:
        yield browser


def student_with_interview(passpro, served: str, ine: str) -> str:
    """A student of COLLEGE with a présentiel interview at LYCEE in three days: the interview's id, once the
    service's view shows it."""
    principal = passpro.auth("principal", COLLEGE)
    with httpx.Client(base_url=served, headers=principal, timeout=20) as api:
        registered = api.post("/api/students", json={
            "student_ine": ine, "college_uai": COLLEGE, "last_name": "Martin", "first_name": "Léa", "class_name": "3e B",
            "referent": {"user_id": "referent-dupont", "name": "Claire Dupont", "email": "claire.dupont@ac-paris.fr"}})
        assert registered.status_code == 201, registered.text
        at = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
        scheduled = api.post(f"/api/students/{ine}/interviews", json={
            "lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": at.isoformat(), "mode": "presentiel"})
        assert scheduled.status_code == 201, scheduled.text
        seen = api.get("/api/students", params={"min_position": scheduled.json()["positions"]["service"]})
        assert seen.status_code == 200, seen.text
        return scheduled.json()["event"]["payload"]["interview_id"]


@pytest.mark.parametrize("device", list(WIDTHS))
def test_the_student_writes_a_full_letter_that_prints_on_one_a4_page(passpro, served, browser, device):
    ine = "123456789AB" if device == "telephone" else "123456789AC"
    interview_id = student_with_interview(passpro, served, ine)
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", **WIDTHS[device])
    context.add_cookies([{"name": "passpro_registration", "value": passpro.token("eleve", COLLEGE, ine=ine),
                          "url": served}])
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: m.type == "error" and "Content Security Policy" in m.text and blocked.append(m.text))
    missing: list[str] = []
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and missing.append(r.url))
    letter = f"{served}/eleve/lettres/{LYCEE}/{FORMATION}"
    try:
        page.goto(letter)
        assert page.locator("h1").inner_text() == "Ma lettre de motivation"
        assert overflow(page) <= 0
        found = violations(page)
        page.screenshot(path=SCREENSHOTS / f"{device}-1-lettre.png", full_page=True)

        # A first save with one answer, then every answer at its maximum length, marked ready.
        first = TEMPLATE.questions[0]
        page.get_by_label(first.prompt).fill("Parce que j'aime conseiller les gens.")
        page.get_by_role("button", name="Enregistrer ma lettre").click()
        page.wait_for_url("**fait=lettre&**")
        assert "Ta lettre est enregistrée" in page.locator("[role=status]").inner_text()
        found += violations(page)
        for question in TEMPLATE.questions:
            page.get_by_label(question.prompt).fill(longest(question.max_length))
        page.get_by_label("Ma lettre est prête : mon référent et le lycée peuvent la lire").check()
        page.get_by_role("button", name="Enregistrer ma lettre").click()
        page.wait_for_load_state()
        assert "fait=lettre-prete" in page.url, page.locator("main").inner_text()[:800]
        assert "marquée prête" in page.locator("[role=status]").inner_text()
        page.screenshot(path=SCREENSHOTS / f"{device}-2-lettre-prete.png", full_page=True)

        page.get_by_role("link", name="Voir la lettre à imprimer").first.click()
        page.wait_for_url("**/imprimer")
        assert overflow(page) <= 0
        found += violations(page)
        page.screenshot(path=SCREENSHOTS / f"{device}-3-lettre-imprimable.png", full_page=True)
        pdf = page.pdf(format="A4", print_background=True)
        (SCREENSHOTS / f"{device}-lettre.pdf").write_bytes(pdf)
        assert pdf_pages(pdf) == 1, f"the letter prints on {pdf_pages(pdf)} pages"

        # The checklist, then the convocation: one page too.
        page.goto(f"{served}/eleve/entretiens/{interview_id}/preparation")
        found += violations(page)
        for label in ("J'ai préparé mon itinéraire jusqu'au lycée", "J'ai imprimé ma lettre de motivation",
                      "J'ai un stylo et des feuilles pour prendre des notes"):
            page.get_by_label(label).check()
        page.get_by_role("button", name="Enregistrer").click()
        page.wait_for_url("**fait=preparation**")
        assert "Tout est prêt" in page.locator("main").inner_text()
        found += violations(page)
        page.screenshot(path=SCREENSHOTS / f"{device}-4-preparation.png", full_page=True)
        page.goto(f"{served}/eleve/entretiens/{interview_id}/convocation")
        assert "Convocation à un entretien d'information" in page.locator("h1").inner_text()
        assert overflow(page) <= 0
        found += violations(page)
        page.screenshot(path=SCREENSHOTS / f"{device}-5-convocation.png", full_page=True)
        convocation = page.pdf(format="A4", print_background=True)
        (SCREENSHOTS / f"{device}-convocation.pdf").write_bytes(convocation)
        assert pdf_pages(convocation) == 1
        # The collège's side: the référent reads the letter and the checklist, the list of who is not ready.
        referent = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", **WIDTHS[device])
        referent.add_cookies([{"name": "passpro_registration", "value": passpro.token("referent", COLLEGE),
                               "url": served}])
        staff = referent.new_page()
        for path in (f"/eleves/{ine}/lettres", "/preparation", f"/eleves/{ine}/entretiens/{interview_id}/convocation"):
            staff.goto(f"{served}{path}")
            assert overflow(staff) <= 0, path
            found += violations(staff)
        assert "Prête" in staff.goto(f"{served}/eleves/{ine}/lettres").text()
        staff.screenshot(path=SCREENSHOTS / f"{device}-6-college-lettres.png", full_page=True)
        referent.close()
        # The student's space around these pages (tests/student's, the formations'): checked the same way.
        for path in ("/eleve", f"/eleve/entretiens/{interview_id}", "/formations", f"/formations/{FORMATION}"):
            page.goto(f"{served}{path}")
            found += violations(page)
        assert found == [], "\n".join(found)
        assert blocked == []  # the pages' policy (no inline script or style) blocked nothing
        assert missing == []  # every stylesheet and script was there
    finally:
        context.close()


def test_axe_finds_what_is_wrong_on_a_page_made_to_fail(browser):
    """The check can fail: an image without alternative text, a field without a label, low contrast."""
    page = browser.new_page()
    try:
        page.set_content('<html lang="fr"><head><title>Essai</title></head><body><main><h1>Essai</h1>'
                         '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><input type="text">'
                         '<p style="color:#ccc;background:#fff">Texte pâle</p></main></body></html>')
        found = " ".join(violations(page))
        assert all(rule in found for rule in ("image-alt", "label", "color-contrast")), found
    finally:
        page.close()
