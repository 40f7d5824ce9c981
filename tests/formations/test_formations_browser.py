"""The formations' pages in a real browser (Debian's Chromium, headless, through Playwright), on a phone 390 px
wide and on a desktop: a student reads the list, opens a formation, finds the lycées with their stops and a journey
link that names only the lycée; nothing overflows the phone's width and the pages' policy blocks nothing.
Screenshots are kept in tests/formations/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from browsing import WIDTHS, chromium, overflow, serve
from shared.contracts.reference import JOURNEY_PLANNER

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
COLLEGE = "0752536Z"
INE = "123456789AB"
FORMATION = "2473121131"  # 2nde professionnelle Métiers de la relation client: three lycées
PORTS = range(18300, 18400)


@pytest.fixture
def served(passpro) -> Iterator[str]:
    """The registration service on a free local port, in this process (uvicorn in a thread)."""
    with serve(passpro, "registration", PORTS) as url:
        yield url


@pytest.fixture
def browser(served):
    """Chromium, started after the service: Playwright's sync API keeps an event loop running in this thread."""
    with chromium(SCREENSHOTS) as started:
        yield started


@pytest.mark.parametrize("device", list(WIDTHS))
def test_a_student_reads_a_formation_and_finds_the_way_to_its_lycees(passpro, served, browser, device):
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", **WIDTHS[device])
    context.add_cookies([{"name": "passpro_registration", "value": passpro.token("eleve", COLLEGE, ine=INE),
                          "url": served}])
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
    try:
        page.goto(f"{served}/formations")
        assert page.locator("h1").inner_text() == "Découvrir les formations"
        assert page.locator('nav a[href="/eleve"]').is_visible()  # back to the student's space
        assert overflow(page) <= 0
        page.screenshot(path=SCREENSHOTS / f"{device}-1-formations.png", full_page=True)

        page.get_by_role("link", name="2nde professionnelle Métiers de la relation client").click()
        page.wait_for_url(f"**/formations/{FORMATION}")
        assert page.locator("h1").inner_text() == "2nde professionnelle Métiers de la relation client"
        for heading in ("Le métier", "Et après ?", "Les 3 lycées qui la proposent"):
            assert page.get_by_role("heading", name=heading, level=2).is_visible()
        gautier = page.get_by_role("article", name="Lycée professionnel Théophile Gautier")
        assert "Métro Ledru-Rollin (ligne 8)" in gautier.inner_text()
        journey = gautier.get_by_role("link", name="Itinéraire jusqu'au Lycée professionnel Théophile Gautier (carte OpenStreetMap)")
        parts = urlsplit(journey.get_attribute("href"))
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == JOURNEY_PLANNER
        assert list(parse_qs(parts.query)) == ["to"]  # the lycée as destination, no origin
        assert overflow(page) <= 0
        page.screenshot(path=SCREENSHOTS / f"{device}-2-formation.png", full_page=True)

        # The policy blocked nothing (a missing favicon.ico, a plain 404, is not the pages' doing).
        assert [e for e in console_errors if "status of 404" not in e] == []
        page.goto(f"{served}/formations/9999999999")
        assert "Cette formation n'existe pas dans Passpro." in page.inner_text("main")
        page.screenshot(path=SCREENSHOTS / f"{device}-3-inconnue.png")
    finally:
        context.close()
