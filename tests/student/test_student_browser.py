"""The student's space in a real browser (Debian's Chromium, headless, through Playwright), on a phone 390 px wide
and on a desktop: the référent gives an access code from the student's page, the student signs in with it (a wrong code first: the
French refusal), reads their space and their interview (the lycée's address and stops, the journey planner),
then, once the lycée has held the interview and given its avis, the advice, the avis and the 2 500 points.
axe-core (tests/axe) finds no WCAG 2.1 A/AA violation on any of these pages, and nothing is wider than the
phone. Screenshots are kept in tests/student/screenshots/."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "axe"))
from axe import violations  # noqa: E402

CHROMIUM = os.environ.get("PASSPRO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
COLLEGE, LYCEE, FORMATION = "0752547L", "0750502N", "2473121131"
WIDTHS = {
    "telephone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2},
    "ordinateur": {"viewport": {"width": 1280, "height": 900}},
}
PORTS = range(18200, 18300)  # this work's own range
ADVICE = "Continue à te renseigner sur les stages en magasin et prépare des questions sur le bac pro."


def _unavailable(reason: str) -> None:
    if os.environ.get("PASSPRO_TEST_REQUIRE_SERVERS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port in 18200-18299")


@pytest.fixture
def served(passpro) -> Iterator[str]:
    """The registration service on a local port of 18200-18299, in this process (uvicorn in a thread)."""
    import uvicorn

    from services.registration.app import create_app

    passpro.migrate("registration")
    port = _port()
    server = uvicorn.Server(uvicorn.Config(create_app(passpro.settings("registration")), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the registration service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browser(served):
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def check_page(page, name: str, width: str) -> None:
    """No axe violation, nothing wider than the window, and a screenshot kept."""
    assert violations(page) == []
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: {overflow} px wider than the {width} window"
    page.screenshot(path=str(SCREENSHOTS / f"{width}-{name}.png"), full_page=True)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_a_student_signs_in_with_a_code_and_follows_their_interview_to_the_bonus(passpro, served, browser, evaluation,
                                                                                  width):
    ine = "123456789AB" if width == "telephone" else "1234567890A"
    principal, referent = passpro.auth("principal", COLLEGE), passpro.auth("referent", COLLEGE)
    with httpx.Client(base_url=served, timeout=20) as api:
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

    # The référent, on the student's page of the collège's space, gives the code (shown once, printable).
    staff = browser.new_context(locale="fr-FR", **WIDTHS[width])
    staff.add_cookies([{"name": "passpro_registration", "value": passpro.token("referent", COLLEGE), "url": served}])
    desk = staff.new_page()
    desk.goto(f"{served}/eleves/{ine}")
    desk.get_by_role("button", name="Donner un nouveau code d'accès à l'élève").click()
    code = desk.locator(".access-code").inner_text()
    assert "Pour Léa Martin" in desk.inner_text("main")
    check_page(desk, "0-code-donne-par-le-referent", width)
    staff.close()

    context = browser.new_context(locale="fr-FR", **WIDTHS[width])
    page = context.new_page()
    page.goto(served + "/eleve")  # signed out: to the student's sign-in
    assert "/eleve/connexion" in page.url
    check_page(page, "1-connexion", width)

    page.get_by_label("Mon INE").fill(ine.lower())
    page.get_by_label("Mon code d'accès", exact=True).fill("AAAA-BBBB-CCCC")
    page.get_by_role("button", name="Entrer dans mon espace").click()
    assert "INE ou code d'accès incorrect" in page.inner_text("main")
    check_page(page, "2-code-faux", width)

    page.get_by_label("Mon INE").fill(ine)
    page.get_by_label("Mon code d'accès", exact=True).fill(code)
    page.get_by_role("button", name="Entrer dans mon espace").click()
    page.wait_for_url(served + "/eleve")
    main = page.inner_text("main")
    assert "Bonjour Léa" in main and "Claire Dupont" in main and "Élève motivée, projet réfléchi." in main
    check_page(page, "3-espace", width)

    page.get_by_role("link", name="Tout voir sur cet entretien").click()
    main = page.inner_text("main")
    lycee = passpro.reference.get(LYCEE)
    assert lycee.address in main and lycee.access[0].stop in main
    assert page.get_by_role("link", name="Mon itinéraire jusqu'au lycée (carte OpenStreetMap)").get_attribute(
        "href").startswith("https://www.openstreetmap.org/directions?to=")
    check_page(page, "4-entretien", width)

    held = evaluation.post(f"/api/students/{ine}/interviews/held", headers=passpro.auth("lycee_staff", LYCEE), json={
        "lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": (at + timedelta(minutes=30)).isoformat(),
        "report": {"motivation": "tres_satisfaisante", "chances_of_success": "satisfaisante", "advice": ADVICE}})
    assert held.status_code == 201, held.text
    avis = evaluation.post(f"/api/students/{ine}/lycee-avis", headers=passpro.auth("proviseur", LYCEE), json={
        "lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"})
    assert avis.status_code == 201, avis.text
    page.goto(f"{served}/eleve/entretiens/{interview_id}?position={avis.json()['positions']['service']}")
    main = page.inner_text("main")
    assert ADVICE in main and "Très satisfaisante" in main and "Favorable" in main
    assert "2\u202f500\u00a0points" in main
    check_page(page, "5-compte-rendu", width)

    page.goto(served + "/eleve")
    assert "Mon bonus Affelnet" in page.inner_text("main")
    check_page(page, "6-bonus", width)
    context.close()
