"""A student signs in with EduConnect in a real browser (Debian's Chromium, driven by Playwright): registration
served over HTTP by uvicorn, the test IdP beside it. The first time the student types their INE and access
code once; the next time, in a fresh browser, EduConnect alone lets them in (SPEC §8)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from conftest import COLLEGE, STUDENT, free_port
from educonnect_world import EduConnectWorld
from pages_world import text_of
from shared.runtime.http.auth import read_token
from shared.runtime.migrations import upgrade

from browsing import chromium  # noqa: E402

pytestmark = pytest.mark.e2e

INE = "123456789EB"
WAIT_MS = 15_000
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture
def served(world: EduConnectWorld) -> Iterator[str]:
    """Registration over HTTP on a free port, configured for EduConnect at that address; stopped after."""
    from services.registration.app import MIGRATIONS, create_app

    port = free_port()
    world.sp_base_url = f"http://127.0.0.1:{port}"
    with world.registration() as visitor:  # migrations, the IdP trusting this SP, and the student registered
        world.register(visitor, INE)
    upgrade(MIGRATIONS, f"sqlite:///{world.data_dir / 'registration.sqlite3'}", None)
    app = create_app(world.settings("registration", demo=False))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="registration", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("registration did not start")
        time.sleep(0.05)
    try:
        yield world.sp_base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def browser():
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # this run's screenshots only
    with chromium(SCREENSHOTS) as started:
        yield started


def _session(world: EduConnectWorld, context):
    token = next((c["value"] for c in context.cookies() if c["name"] == "passpro_registration"), None)
    return read_token(token, world.secret, world.reference) if token else None


def _through_educonnect(page, sp: str) -> None:
    page.goto(f"{sp}/eleve/connexion")  # the student's sign-in page, its « Avec ÉduConnect » card
    page.get_by_role("link", name="Me connecter avec ÉduConnect").click()
    page.get_by_label("Identifiant").fill(STUDENT.login)
    page.get_by_role("button", name="Se connecter").click()


def test_a_student_signs_in_with_educonnect_first_with_the_code_then_straight_in(world, served, browser) -> None:
    code = world.issue_code(INE)

    first = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    first.set_default_timeout(WAIT_MS)
    page = first.new_page()
    _through_educonnect(page, served)
    page.wait_for_url(f"{served}/eleve/educonnect")
    assert "Première connexion avec ÉduConnect" in text_of(page.content())
    assert _session(world, first) is None
    page.screenshot(path=str(SCREENSHOTS / "01-premiere-connexion.png"), full_page=True)
    page.get_by_label("Mon INE").fill(INE)
    page.get_by_label("Mon code d'accès").fill(code.lower())
    page.get_by_role("button", name="Retrouver mon dossier").click()
    page.wait_for_url(f"{served}/eleve**")
    page.screenshot(path=str(SCREENSHOTS / "02-espace-eleve.png"), full_page=True)
    assert "Espace élève" in text_of(page.content()) and INE in text_of(page.content())  # their own space
    who = _session(world, first)
    assert (who.role, who.ine, who.uai) == ("eleve", INE, COLLEGE)
    assert [link[2] for link in world.links()] == [INE]
    first.close()

    second = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")  # another day, a fresh browser
    second.set_default_timeout(WAIT_MS)
    page = second.new_page()
    _through_educonnect(page, served)
    page.wait_for_url(f"{served}/eleve**")
    assert "/eleve/educonnect" not in page.url and INE in text_of(page.content())
    who = _session(world, second)
    assert (who.role, who.ine, who.uai) == ("eleve", INE, COLLEGE)
    page.screenshot(path=str(SCREENSHOTS / "03-connexion-directe.png"), full_page=True)
    second.close()
