"""The pages in a real browser (issue 6): Debian's Chromium, headless, driven by Playwright.

The three services run as separate processes in demo mode, with the demo
students loaded. Each role signs in with one click and one new student goes
from registration to a 2500-point bonus on the rectorat's dashboard; a refused
form shows its error by the field; another establishment gets a French « not
found » page. Every page visited is saved to tests/pages/screenshots/.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from passpro_processes import SERVICES, Passpro, base_env, running  # noqa: E402

from pages_world import CAMPAIGN, FORMATION, LYCEE, OTHER_LYCEE  # noqa: E402
from shared.fr.formats import paris_input  # noqa: E402

from browsing import chromium  # noqa: E402

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
INE = "123456789PW"
WAIT_MS = 10_000
BONUS = "2\u202f500 points"  # « 2 500 » with the narrow no-break space of French typography


@pytest.fixture(scope="module")
def passpro(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Passpro]:
    """The three services in demo mode, each `passpro serve` in its own process, with the demo students."""
    from services.demo import load_demo
    from services.scoring.settings import ScoringSettings

    academie = "t" + uuid.uuid4().hex[:10]
    workdir = tmp_path_factory.mktemp("pages")
    secret = secrets.token_hex(32)
    system = Passpro(env=base_env(redis_url, academie, secret, workdir) | {"PASSPRO_DEMO": "1"}, workdir=workdir)
    with running(system, CAMPAIGN):
        settings = ScoringSettings(redis_url=redis_url, academie=academie, jwt_secret=secret, campaign=CAMPAIGN)
        load_demo(settings, {name: service.url for name, service in system.services.items()})
        yield system


@pytest.fixture(scope="module")
def browser():
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # this run's screenshots only
    with chromium(SCREENSHOTS) as started:
        yield started


class Screen:
    """One browser window with its cookies, saving a numbered screenshot of each page it shows."""

    count = 0

    def __init__(self, browser, **options) -> None:
        self.context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", accept_downloads=True, **options)
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        # A blocked script or style (the pages' Content-Security-Policy) shows as a console error.
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))

    def shot(self, name: str) -> None:
        Screen.count += 1
        self.page.screenshot(path=str(SCREENSHOTS / f"{Screen.count:02d}-{name}.png"), full_page=True)

    def sign_in_as(self, who: str) -> None:
        """On the sign-in page: the demo user's one-click button."""
        self.page.get_by_role("button", name=who).click()

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Se déconnecter").click()
        self.page.wait_for_url("**/connexion?fait=deconnexion")

    def notice(self) -> str:
        return self.page.get_by_role("status").inner_text()

    def open_until(self, url: str, text: str, seconds: float = 10) -> None:
        """Open `url` until it shows `text`: another service's view follows the log a moment later."""
        deadline = time.monotonic() + seconds
        while True:
            self.page.goto(url)
            if text in self.page.inner_text("main") or time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def close(self) -> None:
        self.context.close()
        # Refusals answer 4xx pages on purpose; anything else (a script or style the CSP refused) is a defect.
        unexpected = [e for e in self.console_errors if not re.search(r"responded with a status of 4\d\d", e)]
        assert not unexpected, unexpected


def test_a_new_student_goes_from_registration_to_the_bonus_on_the_dashboard(passpro: Passpro, browser):
    registration, evaluation, scoring = (passpro.services[name].url for name in SERVICES)
    screen = Screen(browser, viewport={"width": 1280, "height": 900})
    page = screen.page

    # The principal of the collège: signed out, sent to the sign-in page; one click in demo mode.
    page.goto(registration + "/")
    assert page.url.endswith("/connexion")
    screen.shot("college-connexion")
    screen.sign_in_as("Principal(e) du collège — Collège Voltaire")
    assert page.get_by_role("heading", level=1).inner_text() == "Mes élèves"
    screen.shot("college-mes-eleves")

    # Registration: a wrong INE is shown by its field, and nothing typed is lost.
    page.get_by_role("main").get_by_role("link", name="Inscrire un élève").click()
    page.get_by_label("INE (identifiant national élève)").fill("12345")
    page.get_by_label("Classe").fill("3e B")
    page.get_by_label("Nom", exact=True).fill("Durand")
    page.get_by_label("Prénom", exact=True).fill("Sarah")
    page.get_by_label("Nom et prénom du référent").fill("Claire Dupont")
    page.get_by_label("Courriel académique du référent").fill("claire.dupont@ac-paris.fr")
    page.get_by_role("button", name="Inscrire l'élève").click()
    assert "INE invalide" in page.locator("#inscription-student-ine-erreur").inner_text()
    assert page.get_by_label("INE (identifiant national élève)").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Nom", exact=True).input_value() == "Durand"
    assert page.get_by_label("Courriel académique du référent").input_value() == "claire.dupont@ac-paris.fr"
    screen.shot("college-inscription-refusee")
    page.get_by_label("INE (identifiant national élève)").fill(INE)
    page.get_by_role("button", name="Inscrire l'élève").click()
    assert "L'élève est inscrit au dispositif Passpro." in screen.notice()

    # The collège avis, before the interviews (the page says so).
    assert "À saisir avant les entretiens." in page.inner_text("main")
    page.locator("#avis-avis").get_by_label("Favorable", exact=True).check()
    page.get_by_label("Commentaire sur la motivation et l'implication de l'élève").fill(
        "Élève motivée, s'est rendue aux portes ouvertes du lycée."
    )
    page.get_by_role("button", name="Enregistrer l'avis").click()
    assert "L'avis du collège est enregistré" in screen.notice()
    screen.shot("college-eleve-avis-donne")
    screen.sign_out()

    # The referent registers the student for an interview (an hour ago, so it can be held now).
    page.goto(registration + f"/eleves/{INE}")
    screen.sign_in_as("Référent(e) — Collège Voltaire")
    page.wait_for_url(f"**/eleves/{INE}")
    page.get_by_label("Lycée et formation").select_option(f"{LYCEE}:{FORMATION}")
    page.get_by_label("Date et heure de l'entretien").fill(paris_input(datetime.now(UTC) - timedelta(hours=1)))
    page.get_by_role("button", name="Inscrire à l'entretien").click()
    assert "L'élève est inscrit à l'entretien." in screen.notice()
    assert "Lycée professionnel Théophile Gautier" in page.locator("#titre-entretiens + *").inner_text()
    screen.shot("college-eleve-entretien-prevu")

    # The lycée's team sees the interview with the collège avis and records it with its report.
    page.goto(evaluation + "/")
    screen.shot("lycee-connexion")
    screen.sign_in_as("Équipe du lycée — Lycée professionnel Théophile Gautier")
    screen.open_until(evaluation + "/", "DURAND Sarah")
    row = page.get_by_role("row").filter(has_text="DURAND Sarah")
    assert "Favorable" in row.inner_text() and "portes ouvertes" in row.inner_text()
    screen.shot("lycee-entretiens")
    row.get_by_role("link", name="DURAND Sarah").click()
    page.get_by_label("Implication et motivation de l'élève pour le choix envisagé").select_option("tres_satisfaisante")
    page.get_by_label("Chances de réussite dans la formation demandée").select_option("satisfaisante")
    page.get_by_label("Conseils à l'élève sur son projet").fill("Rencontrer les élèves de seconde ; visiter l'atelier.")
    page.get_by_role("button", name="Enregistrer l'entretien et son compte rendu").click()
    assert "L'entretien est enregistré comme tenu" in screen.notice()
    assert page.get_by_role("button", name="Enregistrer l'avis").count() == 0  # the avis is the proviseur's
    screen.shot("lycee-entretien-tenu")
    screen.sign_out()

    # The proviseur gives a favorable avis.
    page.goto(evaluation + f"/eleves/{INE}/{FORMATION}")
    screen.sign_in_as("Proviseur(e) — Lycée professionnel Théophile Gautier")
    page.wait_for_url(f"**/eleves/{INE}/{FORMATION}")
    page.locator("#avis-avis").get_by_label("Favorable", exact=True).check()
    page.get_by_role("button", name="Enregistrer l'avis").click()
    assert "L'avis du lycée est enregistré." in screen.notice()
    assert "Favorable — avis en vigueur" in page.inner_text("main")
    screen.shot("lycee-avis-favorable")
    page.get_by_role("link", name="Compte rendu imprimable").click()
    assert "Rencontrer les élèves de seconde" in page.inner_text("main")
    screen.shot("lycee-compte-rendu")
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    screen.shot("lycee-compte-rendu-impression")
    page.emulate_media(media="screen")

    # The rectorat sees the 2500 points on the dashboard, the student's audit, and downloads the Affelnet file.
    page.goto(scoring + "/")
    screen.sign_in_as("Rectorat — Rectorat de Paris")
    screen.open_until(scoring + "/", "Sarah DURAND")
    row = page.get_by_role("row").filter(has_text="Sarah DURAND")
    assert BONUS in row.inner_text()
    assert page.locator("figure.chart svg").count() >= 4
    screen.shot("rectorat-tableau-de-bord")
    page.locator("#filtre-lycee-uai").select_option(OTHER_LYCEE)
    # the dashboard's own filter (the day's work above it has one too, for its list)
    page.get_by_role("search", name="Filtrer le tableau de bord").get_by_role("button", name="Filtrer").click()
    assert page.get_by_role("row").filter(has_text="Sarah DURAND").count() == 0
    screen.shot("rectorat-tableau-filtre")
    page.goto(scoring + "/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger le fichier Affelnet (CSV)").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert exported[0] == "INE;UAI_ACCUEIL;CODE_MEF;BONUS" and f"{INE};{LYCEE};{FORMATION};2500" in exported
    page.get_by_role("row").filter(has_text="Sarah DURAND").get_by_role("link").click()
    assert f"{BONUS} au total" in page.inner_text("main")
    assert "Avis du lycée" in page.locator(".timeline").inner_text()
    screen.shot("rectorat-dossier-eleve")
    screen.close()

    # Another collège and another lycée: the student does not exist for them (a French 404 page).
    for url, who, name in [
        (registration + f"/eleves/{INE}", "Principal(e) du collège — Collège Pierre Alviset", "college-autre-introuvable"),
        (evaluation + f"/eleves/{INE}/{FORMATION}", "Proviseur(e) — Lycée professionnel des métiers de l'ameublement", "lycee-autre-introuvable"),
    ]:
        other = Screen(browser, viewport={"width": 1280, "height": 800})
        other.page.goto(url)
        other.sign_in_as(who)
        other.page.wait_for_url(url)
        assert other.page.get_by_role("heading", level=1).inner_text() == "Page introuvable"
        assert "Élève introuvable." in other.page.inner_text("main")
        other.shot(name)
        other.close()


def test_the_pages_fit_a_phone_screen(passpro: Passpro, browser):
    registration, evaluation, scoring = (passpro.services[name].url for name in SERVICES)
    # A fixed 390-pixel layout (no mobile zoom-out), so anything wider than the screen shows as overflow.
    phone = Screen(browser, viewport={"width": 390, "height": 844}, device_scale_factor=2)
    for url, who, name in [
        (registration, "Principal(e) du collège — Collège Voltaire", "telephone-mes-eleves"),
        (evaluation, "Proviseur(e) — Lycée professionnel Théophile Gautier", "telephone-entretiens"),
        (scoring, "Rectorat — Rectorat de Paris", "telephone-tableau-de-bord"),
    ]:
        phone.page.goto(url + "/")
        phone.sign_in_as(who)
        phone.page.wait_for_url(url + "/")
        assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
        phone.shot(name)
    phone.close()
