"""Staff sign in in a real browser (Debian's Chromium, headless, driven by Playwright) through the real
académie provider: a principal, a proviseur, a référent and a rectorat officer each reach their own space
with the role and establishment their directory claims give; a head of two collèges chooses one; sign-out
ends the provider's session too. The three services run as `passpro serve`
processes in production mode (no token page, no demo users). Screenshots go to tests/sign_in/screenshots/.
"""

from __future__ import annotations

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
import secrets
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from academie_provider import AcademieProvider, free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from passpro_processes import SERVICES, Passpro, base_env, running  # noqa: E402

from browsing import chromium  # noqa: E402

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def passpro(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, academie_provider: AcademieProvider
) -> Iterator[Passpro]:
    """The three services, each `passpro serve` in production mode, signing staff in through the provider."""
    academie = "t" + uuid.uuid4().hex[:10]
    workdir = tmp_path_factory.mktemp("sign-in-browser")
    ports = {name: free_port() for name in SERVICES}
    academie_provider.bases = [*academie_provider.bases, *(f"http://127.0.0.1:{port}" for port in ports.values())]
    academie_provider.restart()  # with these services' redirect and post-logout URIs registered
    env = base_env(redis_url, academie, secrets.token_hex(32), workdir) | {
        "PASSPRO_ENVIRONMENT": "production",
        "PASSPRO_OIDC_ISSUER": academie_provider.issuer,
        "PASSPRO_OIDC_CLIENT_ID": academie_provider.client_id,
        "PASSPRO_OIDC_CLIENT_SECRET": academie_provider.client_secret,
        "PASSPRO_OIDC_AUDIENCE": academie_provider.audience,
    }
    with running(Passpro(env=env, workdir=workdir), CAMPAIGN, ports) as system:
        yield system


@pytest.fixture(scope="module")
def browser():
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # this run's screenshots only
    with chromium(SCREENSHOTS) as started:
        yield started


def sign_in(browser, service_url: str, sub: str, shot: str):
    """A new browser window (no session anywhere): the service's sign-in page, the academic account's button,
    the provider's login form as `sub`, back on the service."""
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(f"{service_url}/connexion")
    assert page.get_by_label("Jeton de connexion").count() == 0  # production: no token page
    page.get_by_role("link", name="Se connecter avec mon compte académique").click()
    page.locator("input[name=login]").fill(sub)
    page.locator("input[name=password]").fill("mot-de-passe")
    page.get_by_role("button", name="Sign-in").click()
    page.wait_for_url(f"{service_url}/**")
    page.screenshot(path=str(SCREENSHOTS / f"{shot}.png"), full_page=True)
    return context, page


@pytest.mark.parametrize(("service", "sub", "role", "place"), [
    ("registration", "anne.principale", "Principal(e)", "Collège Voltaire"),
    ("evaluation", "paul.proviseur", "Proviseur(e)", "Lycée professionnel Théophile Gautier"),
    ("registration", "claire.referente", "Référent(e)", "Collège Voltaire"),
    ("scoring", "rita.rectorat", "Rectorat", "Tableau de bord"),
])
def test_each_staff_member_signs_in_through_the_academic_provider(passpro, browser, service, sub, role, place):
    url = passpro.services[service].url
    context, page = sign_in(browser, url, sub, f"{service}-{sub}")
    try:
        text = page.locator("body").inner_text()
        assert role in text and place in text, text[:800]
        assert not page.url.startswith(f"{url}/connexion")
    finally:
        context.close()


def test_signing_out_ends_the_session_here_and_at_the_provider(passpro, browser):
    url = passpro.services["registration"].url
    context, page = sign_in(browser, url, "anne.principale", "deconnexion-avant")
    try:
        page.get_by_role("button", name="Se déconnecter").click()
        page.get_by_role("button", name="Yes, sign me out").click()  # the provider's own confirmation
        page.wait_for_url(f"{url}/connexion?fait=deconnexion")
        assert "Vous êtes déconnecté(e)" in page.locator("body").inner_text()
        # The provider's session is over too: signing in again asks for the login form.
        page.get_by_role("link", name="Se connecter avec mon compte académique").click()
        page.locator("input[name=login]").wait_for()
        page.screenshot(path=str(SCREENSHOTS / "deconnexion-apres.png"), full_page=True)
    finally:
        context.close()


def test_a_head_of_two_colleges_chooses_the_one_she_acts_for(passpro, browser):
    url = passpro.services["registration"].url
    context, page = sign_in(browser, url, "dora.deuxcolleges", "choix-etablissement")
    try:
        assert "Pour quel établissement agissez-vous ?" in page.locator("body").inner_text()
        page.get_by_role("button", name="Collège Pierre Alviset — Principal(e)").click()
        page.wait_for_url(f"{url}/")
        text = page.locator("body").inner_text()
        assert "Collège Pierre Alviset" in text and "Principal(e)" in text
        page.screenshot(path=str(SCREENSHOTS / "choix-etablissement-fait.png"), full_page=True)
    finally:
        context.close()
