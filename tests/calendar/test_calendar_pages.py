"""The rectorat's « Calendrier » page and the calendar's band on every role's pages (SPEC §7), over HTTP with
a browser-like client: the form runs the API's handler (a refusal shown by its field, nothing stored), and each
space's pages show the phase and the next date, moving as the services' clock does."""

from __future__ import annotations

from event_factories import YEAR  # the year of the campaign to come (2027 until its rentrée)
import contextlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_sync

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pages"))

from pages_world import COLLEGE, LYCEE, World as PagesWorld, text_of  # noqa: E402
from shared.fr.formats import paris_input  # noqa: E402

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
DAY = timedelta(days=1)


@pytest.fixture
def pages(redis_url: str, academie: str, tmp_path: Path):
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        w = PagesWorld(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client)
        w.open_campaign()
        yield w


def _form(**dates: datetime | None) -> dict[str, str]:
    names = ("registrations_until", "interviews_from", "interviews_until", "lycee_avis_until", "closes_at")
    return {name: paris_input(dates.get(name)) for name in names} | {"event_id": ""}


def test_the_rectorat_sets_the_calendar_from_its_page_and_every_space_shows_the_band(pages: PagesWorld):
    with pages.visitor("scoring", "rectorat", None) as rectorat:
        page = text_of(rectorat.get("/calendrier").text)
        assert f"Calendrier de la campagne {YEAR}" in page and "non fixée" in page
        assert f"Campagne {YEAR} :" not in page  # no band before a calendar is set
        answer = rectorat.post("/calendrier", _form(registrations_until=NOW + 10 * DAY, interviews_from=NOW + 20 * DAY,
                                                     interviews_until=NOW + 40 * DAY))
        shown = text_of(answer.text)
        assert answer.status_code == 200 and "Le calendrier de la campagne est enregistré" in shown, shown
        assert f"Campagne {YEAR} : inscriptions — prochaine date : fin des inscriptions" in shown
    for service, role, uai in (("registration", "principal", COLLEGE), ("registration", "referent", COLLEGE),
                               ("evaluation", "lycee_staff", LYCEE), ("evaluation", "proviseur", LYCEE),
                               ("scoring", "rectorat", None)):
        with pages.visitor(service, role, uai) as visitor:
            shown = text_of(visitor.get("/").text)
            assert f"Campagne {YEAR} : inscriptions — prochaine date : fin des inscriptions" in shown, (service, role, shown)
            visitor.client.app.state.runtime.clock = lambda: NOW + 25 * DAY
            shown = text_of(visitor.get("/").text)
            assert f"Campagne {YEAR} : entretiens — prochaine date : fin des entretiens" in shown, (service, role, shown)


def test_dates_out_of_order_are_shown_by_their_field_and_nothing_is_stored(pages: PagesWorld):
    with pages.visitor("scoring", "rectorat", None) as rectorat:
        rectorat.get("/calendrier")
        before = pages.snapshot()
        answer = rectorat.post("/calendrier", _form(interviews_from=NOW + 20 * DAY, interviews_until=NOW + 10 * DAY))
        assert answer.status_code == 422
        assert "La fin des entretiens ne peut pas précéder le début des entretiens" in text_of(answer.text)
        assert 'href="#calendrier-interviews-until"' in answer.text
        assert pages.snapshot() == before


def test_the_calendar_page_is_the_rectorats_only(pages: PagesWorld):
    with pages.visitor("scoring") as visitor:
        visitor.sign_in(pages.token("principal", COLLEGE))
        before = pages.snapshot()
        page = visitor.get("/calendrier")
        assert "Fixer les dates" not in page.text
        form = visitor.post("/calendrier", _form(interviews_from=NOW + DAY), follow=False)
        assert form.status_code in (303, 403) and "/calendrier" not in form.headers.get("location", "")
        assert pages.snapshot() == before


def test_a_form_outside_its_phase_says_so_naming_the_date_and_stores_nothing(pages: PagesWorld):
    until = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    with pages.visitor("scoring", "rectorat", None) as rectorat:
        rectorat.client.app.state.runtime.clock = lambda: until - 10 * DAY
        rectorat.get("/calendrier")
        assert rectorat.post("/calendrier", _form(registrations_until=until)).status_code == 200
    with pages.visitor("registration", "principal", COLLEGE) as principal:
        principal.client.app.state.runtime.clock = lambda: until + DAY
        assert "inscriptions closes, entretiens à venir" in text_of(principal.get("/").text)
        principal.get("/eleves/nouveau")
        before = pages.snapshot()
        form = {"event_id": "", "student_ine": "000000001CP", "last_name": "Martin", "first_name": "Léa",
                "class_name": "3e B", "referent.name": "Claire Dupont", "referent.email": "claire.dupont@ac-paris.fr",
                "referent.user_id": ""}
        answer = principal.post("/eleves", form)
        assert answer.status_code == 409
        assert "Les inscriptions de la campagne sont closes depuis le 1er décembre 2026 à 18 h 00" in text_of(answer.text)
        assert pages.snapshot() == before
