"""Issue 15's browser test (SPEC §7) in Debian's Chromium, headless, through Playwright.

The lycée publishes a series of slots from its « Créneaux » page; the référent books one for a student from the
collège's pages and moves it to another; the référent's inbox (a real SMTP server, aiosmtpd, with the notifier
running against it) receives both convocations; the lycée records the interview and corrects its report; and each
role's « À faire » list (the day's work at the top of its home page) changes as the work is done: the principal's
avis to give, the référent's interviews to prepare, the lycée's reports to write, the proviseur's avis to give.

The services run in this process (uvicorn in threads, ports 19400-19499) so the test drives their clock: the
interview is booked in the coming days, then the clock moves past it for the lycée to record it (SPEC §5:
`held_at` may not lie in the future). Every step is saved to tests/slots/screenshots/ (gitignored).
"""

from __future__ import annotations

from event_factories import CAMPAIGN  # the campaign to come (2027 until its rentrée)
import asyncio
import contextlib
import os
import re
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis as redis_sync

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pages"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notifier"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "axe"))

from axe import violations  # noqa: E402
from notifier_world import Clock, SmtpServer, subject_of, text_of as mail_text  # noqa: E402
from pages_world import COLLEGE, FORMATION, LYCEE, World as PagesWorld, _service  # noqa: E402
from shared.fr.formats import PARIS  # noqa: E402
from shared.runtime.migrations import upgrade  # noqa: E402

CHROMIUM = os.environ.get("PASSPRO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
PORTS = range(19400, 19500)  # this test's own range
WAIT_MS = 15_000
INE = "000000001SB"
REFERENT_MAIL = "claire.dupont@ac-paris.fr"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
# The interviews' day: in two or three days (within the référent's 7 days; the series form offers no Sunday), in Paris.
DAY = (NOW.astimezone(PARIS) + timedelta(days=2)).date()
DAY += timedelta(days=DAY.weekday() == 6)
WEEKDAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]


def _unavailable(reason: str) -> None:
    if os.environ.get("PASSPRO_TEST_REQUIRE_SERVERS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _port(taken: set[int]) -> int:
    for port in PORTS:
        if port in taken:
            continue
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                taken.add(port)
                return port
    raise RuntimeError("no free port in 19400-19499")


@contextlib.contextmanager
def served(world: PagesWorld, name: str, port: int, clock: Clock) -> Iterator[str]:
    """One service in this process on `port` (uvicorn in a thread), its clock the test's."""
    import uvicorn

    _, migrations, create_app = _service(name)
    upgrade(migrations, f"sqlite:///{world.data_dir / f'{name}.sqlite3'}", None)
    app = create_app(world.settings(name))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail(f"the {name} service did not start")
        time.sleep(0.05)
    app.state.runtime.clock = clock
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextlib.contextmanager
def notifier_running(world: PagesWorld, smtp_url: str, registration_url: str, clock: Clock) -> Iterator[None]:
    """The notifier (its FastStream group on the service streams) in a thread with its own event loop, sending to
    the test's SMTP server; it shares the services' data directory, hence their key store (sealed addresses)."""
    from services.notifier.process import opened
    from services.notifier.settings import NotifierSettings

    settings = NotifierSettings(redis_url=world.redis_url, academie=world.academie, campaign=CAMPAIGN,
                                data_dir=world.data_dir, smtp_url=smtp_url, registration_url=registration_url,
                                block_ms=50, timer_seconds=0.1)
    loop = asyncio.new_event_loop()
    stop: asyncio.Event | None = None
    failure: list[BaseException] = []

    async def run() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with opened(settings, clock=clock) as notifier:
            await notifier.run(stop)

    def main() -> None:
        try:
            loop.run_until_complete(run())
        except BaseException as error:  # shown by the test
            failure.append(error)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    try:
        yield
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)
        loop.close()
        assert not failure, failure


@pytest.fixture(scope="module", autouse=True)
def _fresh_screenshots() -> None:
    """The folder emptied once per run of the module, each test adding its steps."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Screen:
    """One browser window with its cookies, saving a numbered screenshot of each step."""

    count = 0

    def __init__(self, browser) -> None:
        self.context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()

    def shot(self, name: str) -> None:
        Screen.count += 1
        self.page.screenshot(path=str(SCREENSHOTS / f"{Screen.count:02d}-{name}.png"), full_page=True)

    def sign_in(self, base: str, who: str) -> None:
        """Signed out, the home sends to the sign-in page: the demo user's one-click button."""
        self.page.goto(base + "/")
        self.page.get_by_role("button", name=who).click()
        self.page.wait_for_url(base + "/**")

    def notice(self) -> str:
        return " ".join(self.page.get_by_role("status").all_inner_texts())

    def todo(self) -> str:
        """The « À faire » section's text."""
        return self.page.locator("section.todo").inner_text()

    def todo_until(self, url: str, condition, seconds: float = 15) -> str:
        """Open `url` until its « À faire » list meets `condition`: a view follows the log a moment later."""
        deadline = time.monotonic() + seconds
        while True:
            self.page.goto(url)
            text = self.todo()
            if condition(text) or time.monotonic() > deadline:
                return text
            time.sleep(0.2)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def world(redis_url: str, academie: str, tmp_path: Path) -> Iterator[PagesWorld]:
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        w = PagesWorld(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client)
        w.open_campaign()
        yield w


def test_a_series_booked_moved_convoked_held_corrected_and_each_roles_day_of_work(world: PagesWorld, browser):
    clock = Clock(NOW)
    taken: set[int] = set()
    smtp = SmtpServer()
    smtp.port = _port(taken)
    from aiosmtpd.controller import Controller

    smtp.controller = Controller(smtp.inbox, hostname="127.0.0.1", port=smtp.port)
    with (
        smtp,
        served(world, "registration", _port(taken), clock) as registration,
        served(world, "evaluation", _port(taken), clock) as evaluation,
        served(world, "scoring", _port(taken), clock) as scoring,
        notifier_running(world, smtp.url, registration, clock),
    ):
        # The scene: the student registered through the API (the registration's pages have their own browser test).
        with httpx.Client(base_url=registration, timeout=20) as api:
            answer = api.post("/api/students", headers={"Authorization": f"Bearer {world.token('principal', COLLEGE)}"},
                              json={"student_ine": INE, "college_uai": COLLEGE, "last_name": "Durand",
                                    "first_name": "Sarah", "class_name": "3e B",
                                    "referent": {"user_id": "referent.0752536Z", "name": "Claire Dupont",
                                                 "email": REFERENT_MAIL}})
            assert answer.status_code == 201, answer.text

        # 1. The principal: the student's collège avis is to give; given from the student's page, it leaves the list.
        principal = Screen(browser)
        principal.sign_in(registration, "Principal(e) du collège — Collège Voltaire")
        todo = principal.todo_until(registration + "/", lambda t: INE in t)
        assert "avis du collège à donner" in todo and INE in todo, todo
        principal.shot("principal-a-faire-avis")
        principal.page.goto(registration + f"/eleves/{INE}")
        principal.page.locator("#avis-avis").get_by_label("Favorable", exact=True).check()
        principal.page.get_by_label("Commentaire sur la motivation et l'implication de l'élève").fill(
            "Élève motivée, venue aux portes ouvertes.")
        principal.page.get_by_role("button", name="Enregistrer l'avis").click()
        assert "L'avis du collège est enregistré" in principal.notice()
        todo = principal.todo_until(registration + "/", lambda t: INE not in t)
        assert INE not in todo, todo
        principal.shot("principal-a-faire-vide")
        principal.close()

        # 2. The lycée publishes a series: on DAY, 14:00 to 15:30, every 30 minutes, one place each.
        staff = Screen(browser)
        staff.sign_in(evaluation, "Équipe du lycée — Lycée professionnel Théophile Gautier")
        todo = staff.todo()
        assert "comptes rendus à saisir" in todo and "Aucun compte rendu à saisir" in todo, todo
        staff.shot("lycee-a-faire-vide")
        page = staff.page
        page.goto(evaluation + "/creneaux")
        assert "aucun créneau" in page.inner_text("main")
        series = page.locator("form[action='/creneaux/serie']")
        series.get_by_label("Formation").select_option(FORMATION)
        series.get_by_label("Du", exact=True).fill(DAY.isoformat())
        series.get_by_label("Au", exact=True).fill(DAY.isoformat())
        series.get_by_label(WEEKDAYS[DAY.weekday()], exact=False).check()
        series.get_by_label("De (heure)").fill("14:00")
        series.get_by_label("À (heure)").fill("15:30")
        series.get_by_label("Durée de chaque créneau (minutes)").fill("30")
        series.get_by_label("Places par créneau").fill("1")
        series.get_by_label("Lieu").fill("Atelier, bâtiment B")
        staff.shot("lycee-serie-saisie")
        series.get_by_role("button", name="Publier la série").click()
        assert "La série de créneaux est publiée" in staff.notice()
        assert page.get_by_role("status").count() == 1  # said once (base.html's notice), not twice
        main = page.inner_text("main")
        assert "3 créneaux" in main and main.count("1 libre sur 1") == 3, main
        staff.shot("lycee-serie-publiee")

        # 3. The référent: nothing to prepare yet; books the first slot from the student's page.
        referent = Screen(browser)
        referent.sign_in(registration, "Référent(e) — Collège Voltaire")
        todo = referent.todo()
        assert "entretiens des 7 prochains jours à préparer" in todo and INE not in todo, todo
        referent.shot("referent-a-faire-vide")
        rpage = referent.page
        rpage.goto(registration + f"/eleves/{INE}")
        slot_select = rpage.locator("form[action$='/entretiens/creneau']").get_by_label("Créneau", exact=True)
        deadline = time.monotonic() + 15
        while slot_select.locator("option[value]:not([value=''])").count() < 3 and time.monotonic() < deadline:
            time.sleep(0.2)  # registration's view follows evaluation's slots a moment later
            rpage.reload()
        options = slot_select.locator("option[value]:not([value=''])")
        assert options.count() == 3, slot_select.inner_text()
        first, second = options.nth(0).get_attribute("value"), options.nth(1).get_attribute("value")
        assert "14" in options.nth(0).inner_text(), options.nth(0).inner_text()
        slot_select.select_option(first)
        referent.shot("referent-creneau-choisi")
        rpage.get_by_role("button", name="Inscrire sur ce créneau").click()
        assert "L'élève est inscrit sur le créneau du lycée" in referent.notice()
        referent.shot("referent-inscrit-sur-creneau")
        todo = referent.todo_until(registration + "/", lambda t: INE in t)
        assert INE in todo, todo
        referent.shot("referent-a-faire-entretien")

        # The convocation reaches the référent's inbox.
        [booked] = smtp.inbox.wait_for(1)
        assert booked["To"] == REFERENT_MAIL and subject_of(booked).startswith("Convocation à l'entretien"), booked
        assert "14 h 00" in mail_text(booked) and "Théophile Gautier" in mail_text(booked), mail_text(booked)

        # 4. The référent moves the interview to the next slot: the first one's place is free again.
        rpage.goto(registration + f"/eleves/{INE}")
        rpage.get_by_text("Déplacer cet entretien").click()
        rpage.get_by_label("Vers un autre créneau").select_option(second)
        referent.shot("referent-deplacement")
        rpage.get_by_role("button", name="Déplacer l'entretien").click()
        assert "L'entretien est déplacé" in referent.notice()
        referent.shot("referent-entretien-deplace")
        moved = smtp.inbox.wait_for(2)[1]
        assert moved["To"] == REFERENT_MAIL and "déplacé" in subject_of(moved), subject_of(moved)
        assert "14 h 30" in subject_of(moved) + mail_text(moved), mail_text(moved)
        # The e-mail's link opens the new convocation in the référent's session: the moved time.
        link = re.search(r"http://127\.0\.0\.1:\d+/eleves/\S+/convocation", mail_text(moved))
        assert link and link.group(0).startswith(registration), mail_text(moved)
        rpage.goto(link.group(0))
        convocation = rpage.inner_text("main").replace("\u202f", " ").replace("\u00a0", " ")
        assert "14 h 30" in convocation and "14 h 00" not in convocation, convocation
        referent.shot("referent-convocation-du-courriel")
        page.goto(evaluation + "/creneaux")
        deadline = time.monotonic() + 15
        while "0 libre sur 1" not in page.inner_text("main") and time.monotonic() < deadline:
            time.sleep(0.2)
            page.reload()
        main = page.inner_text("main")
        assert main.count("1 libre sur 1") == 2 and main.count("0 libre sur 1") == 1, main
        staff.shot("lycee-creneaux-apres-deplacement")

        # The référent ticks the interview's preparation list: the student is ready, gone from the list.
        rpage.goto(registration + f"/eleves/{INE}/lettres")
        checklist = rpage.locator("form[action$='/preparation']")
        for box in checklist.locator("input[type=checkbox]").all():
            box.check()
        referent.shot("referent-preparation")
        checklist.get_by_role("button", name="Enregistrer la préparation").click()
        todo = referent.todo_until(registration + "/", lambda t: INE not in t)
        assert INE not in todo and "Aucun entretien" in todo, todo
        referent.shot("referent-a-faire-fait")
        referent.close()

        # 5. The clock moves past the interview: the lycée's report is to write; recorded, then corrected.
        clock.now = datetime.combine(DAY, datetime.min.time(), tzinfo=PARIS).astimezone(UTC) + timedelta(hours=20)
        todo = staff.todo_until(evaluation + "/", lambda t: INE in t)
        assert INE in todo, todo
        staff.shot("lycee-a-faire-compte-rendu")
        page.locator("section.todo").get_by_role("link").first.click()
        held_at = page.get_by_label("Date et heure de l'entretien", exact=False).first.input_value()
        assert held_at.endswith("14:30"), held_at  # the scheduled time (the moved one), not now
        page.get_by_label("Implication et motivation de l'élève pour le choix envisagé").first.select_option("satisfaisante")
        page.get_by_label("Chances de réussite dans la formation demandée").first.select_option("satisfaisante")
        page.get_by_label("Conseils à l'élève sur son projet").first.fill("Visiter l'atelier.")
        page.get_by_role("button", name="Enregistrer l'entretien et son compte rendu").click()
        assert "L'entretien est enregistré comme tenu" in staff.notice()
        staff.shot("lycee-entretien-tenu")
        correction = page.locator("form[action$='/correction']")
        correction.get_by_label("Implication et motivation de l'élève pour le choix envisagé").select_option("tres_satisfaisante")
        correction.get_by_label("Conseils à l'élève sur son projet").fill("Visiter l'atelier, puis rencontrer les élèves.")
        correction.get_by_role("button", name="Enregistrer la correction").click()
        assert "Le compte rendu corrigé est enregistré" in staff.notice()
        assert "puis rencontrer les élèves" in page.inner_text("main")
        staff.shot("lycee-compte-rendu-corrige")
        todo = staff.todo_until(evaluation + "/", lambda t: INE not in t)
        assert INE not in todo and "Aucun compte rendu à saisir" in todo, todo
        staff.shot("lycee-a-faire-fait")
        staff.close()

        # The rectorat's dashboard: the lycée is late with one avis after an interview.
        rectorat = Screen(browser)
        rectorat.sign_in(scoring, "Rectorat — Rectorat de Paris")
        todo = rectorat.todo_until(scoring + "/", lambda t: "avis du lycée à donner" in t)
        assert "établissements en retard" in todo and "1 avis du lycée à donner après entretien" in todo, todo
        rectorat.shot("rectorat-a-faire-retard")

        # 6. The proviseur: the avis to give, given, gone from the list.
        proviseur = Screen(browser)
        proviseur.sign_in(evaluation, "Proviseur(e) — Lycée professionnel Théophile Gautier")
        todo = proviseur.todo_until(evaluation + "/", lambda t: INE in t)
        assert "avis à donner" in todo and INE in todo, todo
        proviseur.shot("proviseur-a-faire-avis")
        proviseur.page.locator("section.todo").get_by_role("link").first.click()
        proviseur.page.locator("#avis-avis").get_by_label("Favorable", exact=True).check()
        proviseur.page.get_by_role("button", name="Enregistrer l'avis").click()
        assert "L'avis du lycée est enregistré." in proviseur.notice()
        assert proviseur.page.locator("form[action$='/correction']").count() == 0  # no correction after the avis
        proviseur.shot("proviseur-avis-donne")
        todo = proviseur.todo_until(evaluation + "/", lambda t: INE not in t)
        assert INE not in todo and "Aucun avis à donner" in todo, todo
        proviseur.shot("proviseur-a-faire-vide")
        proviseur.close()
        todo = rectorat.todo_until(scoring + "/", lambda t: "avis du lycée à donner" not in t)
        assert "avis du lycée à donner" not in todo, todo
        rectorat.shot("rectorat-a-faire-apres")
        rectorat.close()

        assert len(smtp.inbox.messages) == 2, [subject_of(m) for m in smtp.inbox.messages]  # no duplicate


def test_the_slots_pages_and_the_days_work_fit_a_phone_screen(world: PagesWorld, browser):
    """At 390 px (no zoom-out), the « Créneaux » page with its table, the student's page with the slots offered,
    and the homes with their « À faire » lists: nothing wider than the screen, and no WCAG 2.1 A/AA violation
    that axe-core finds."""
    clock = Clock(NOW)
    taken: set[int] = set()
    with (
        served(world, "registration", _port(taken), clock) as registration,
        served(world, "evaluation", _port(taken), clock) as evaluation,
    ):
        with httpx.Client(timeout=20) as api:
            body = {"lycee_uai": LYCEE, "formation_code": FORMATION, "duration_minutes": 30, "capacity": 2,
                    "mode": "presentiel", "place": "Atelier de la relation client, bâtiment B, 2e étage"}
            for hours in (14, 15):
                at = datetime.combine(DAY, datetime.min.time(), tzinfo=PARIS).replace(hour=hours)
                answer = api.post(evaluation + "/api/slots", json=body | {"starts_at": at.isoformat()},
                                  headers={"Authorization": f"Bearer {world.token('lycee_staff', LYCEE)}"})
                assert answer.status_code == 201, answer.text
            answer = api.post(registration + "/api/students",
                              headers={"Authorization": f"Bearer {world.token('principal', COLLEGE)}"},
                              json={"student_ine": INE, "college_uai": COLLEGE, "last_name": "Durand",
                                    "first_name": "Sarah", "class_name": "3e B",
                                    "referent": {"user_id": "referent.0752536Z", "name": "Claire Dupont",
                                                 "email": REFERENT_MAIL}})
            assert answer.status_code == 201, answer.text
        context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", viewport={"width": 390, "height": 844},
                                      device_scale_factor=2)
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        try:
            for base, who, label, paths in [
                (evaluation, "Équipe du lycée — Lycée professionnel Théophile Gautier", "lycee", ["/", "/creneaux"]),
                (registration, "Référent(e) — Collège Voltaire", "referent", ["/", f"/eleves/{INE}"]),
                (registration, "Principal(e) du collège — Collège Voltaire", "principal", ["/"]),
            ]:
                page.goto(base + "/")
                if page.get_by_role("button", name="Se déconnecter").count():
                    page.get_by_role("button", name="Se déconnecter").click()
                    page.goto(base + "/")
                page.get_by_role("button", name=who).click()
                page.wait_for_url(base + "/**")
                for path in paths:
                    page.goto(base + path)
                    if path.startswith("/eleves/"):  # registration's view follows evaluation's slots a moment later
                        deadline = time.monotonic() + 15
                        while "Inscrire sur ce créneau" not in page.inner_text("main") and time.monotonic() < deadline:
                            time.sleep(0.2)
                            page.reload()
                        assert "Inscrire sur ce créneau" in page.inner_text("main")
                    assert page.locator("section.todo").count() == (1 if path == "/" else 0), path
                    name = f"telephone-{label}{path.replace('/', '-').rstrip('-')}"
                    Screen.count += 1
                    page.screenshot(path=str(SCREENSHOTS / f"{Screen.count:02d}-{name}.png"), full_page=True)
                    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, (base + path, overflow)
                    assert not violations(page), (base + path, violations(page))  # WCAG 2.1 A/AA (axe-core)
        finally:
            context.close()
