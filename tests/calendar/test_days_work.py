"""The day's work (SPEC §7) at the top of each role's home page, over HTTP with a browser-like client: each list
is read from the view tables, paged in SQL, filtered, and changes as the work is done and as the services' clock
moves (the tests drive it)."""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_sync

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pages"))

from pages_world import (  # noqa: E402
    COLLEGE, FORMATION, LYCEE, World as PagesWorld, api_post, college_avis, register_student, schedule, text_of,
)

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
DAY = timedelta(days=1)
REPORT = {"motivation": "satisfaisante", "chances_of_success": "fragile", "advice": "Visiter l'atelier."}


@pytest.fixture
def pages(redis_url: str, academie: str, tmp_path: Path):
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        w = PagesWorld(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client)
        w.open_campaign()
        yield w


def _section(page: str) -> str:
    """The « À faire » section's text (empty when the page has none)."""
    start = page.find('<section class="todo"')
    return text_of(page[start:page.find("</section>", start)]) if start >= 0 else ""


def _at(client, moment: datetime) -> None:
    client.app.state.runtime.clock = lambda: moment


def test_the_lycees_reports_to_write_then_the_proviseurs_avis_to_give(pages: PagesWorld):
    ines = [f"{n:09d}DW" for n in range(1, 4)]
    with pages.client("registration") as registration:
        for n, ine in enumerate(ines):
            register_student(pages, registration, ine)
            schedule(pages, registration, ine, (NOW + DAY + n * timedelta(hours=1)).isoformat())
        position = registration.get("/api/students", headers={"Authorization": f"Bearer {pages.token('principal', COLLEGE)}"})
        assert position.status_code == 200
    with pages.visitor("evaluation", "lycee_staff", LYCEE) as staff:
        todo = _section(staff.get("/").text)
        assert "comptes rendus à saisir" in todo and "Aucun compte rendu à saisir" in todo  # nothing past yet
        _at(staff.client, NOW + 2 * DAY)
        todo = _section(staff.get("/").text)
        assert all(ine in todo for ine in ines), todo
        # paged in SQL: a page of 2 when the size is 2
        # (the size is the list's; here the three fit in one page) — the filter by another formation empties it
        filtered = _section(staff.get("/", params={"afaire_formation": "2473121332"}).text)
        assert not any(ine in filtered for ine in ines), filtered
        token = pages.token("lycee_staff", LYCEE)
        held = {"lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": (NOW + DAY).isoformat(), "report": REPORT}
        answer = api_post(staff.client, token, f"/api/students/{ines[0]}/interviews/held", held)
        todo = _section(staff.get("/", params={"position": answer["positions"]["service"]}).text)
        assert ines[0] not in todo and ines[1] in todo, todo
    with pages.visitor("evaluation", "proviseur", LYCEE) as proviseur:
        _at(proviseur.client, NOW + 2 * DAY)
        todo = _section(proviseur.get("/").text)
        assert "avis à donner" in todo and ines[0] in todo and ines[1] not in todo, todo
        body = {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"}
        answer = api_post(proviseur.client, pages.token("proviseur", LYCEE), f"/api/students/{ines[0]}/lycee-avis", body)
        todo = _section(proviseur.get("/", params={"position": answer["positions"]["service"]}).text)
        assert ines[0] not in todo and "Aucun avis à donner" in todo, todo


def test_the_principals_avis_to_give_only_those_that_can_still_be_given(pages: PagesWorld):
    ines = [f"{n:09d}DP" for n in range(1, 5)]
    with pages.client("registration") as registration:
        for ine in ines:
            register_student(pages, registration, ine)
        schedule(pages, registration, ines[2], (NOW + 3 * DAY).isoformat())
        college_avis(pages, registration, ines[0])
    with pages.visitor("evaluation", "lycee_staff", LYCEE) as staff:  # an interview held: the avis is closed
        schedule_body = {"lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": (NOW - DAY).isoformat(), "report": REPORT}
        with pages.client("registration") as registration:
            schedule(pages, registration, ines[3], (NOW - 2 * DAY).isoformat())
        api_post(staff.client, pages.token("lycee_staff", LYCEE), f"/api/students/{ines[3]}/interviews/held", schedule_body)
    with pages.visitor("registration", "principal", COLLEGE) as principal:
        page = principal.get("/").text
        todo = _section(page)
        assert "avis du collège à donner" in todo
        assert ines[1] in todo and ines[2] in todo and ines[0] not in todo and ines[3] not in todo, todo
        assert todo.index(ines[2]) < todo.index(ines[1])  # the soonest first interview first
        answer = api_post(principal.client, pages.token("principal", COLLEGE), f"/api/students/{ines[2]}/college-avis",
                          {"college_uai": COLLEGE, "avis": "favorable", "comment": "Très impliquée."})
        todo = _section(principal.get("/", params={"position": answer["positions"]["service"]}).text)
        assert ines[2] not in todo and ines[1] in todo, todo


def test_the_referents_interviews_of_the_next_seven_days_not_ready(pages: PagesWorld):
    ines = [f"{n:09d}DR" for n in range(1, 4)]
    with pages.client("registration") as registration:
        for ine in ines:
            register_student(pages, registration, ine)
        soon = schedule(pages, registration, ines[0], (NOW + 2 * DAY).isoformat())
        schedule(pages, registration, ines[1], (NOW + 10 * DAY).isoformat())  # beyond the 7 days
        register_student(pages, registration, "000000009DR", referent={"user_id": "someone-else", "name": "Paul Roy",
                                                                       "email": "paul.roy@ac-paris.fr"})
        schedule(pages, registration, "000000009DR", (NOW + DAY).isoformat())
    interview_id = soon["event"]["payload"]["interview_id"]
    with pages.visitor("registration", "referent", COLLEGE) as referent:
        todo = _section(referent.get("/").text)
        assert "entretiens des 7 prochains jours à préparer" in todo
        assert ines[0] in todo and "000000009DR" in todo and ines[1] not in todo, todo
        mine = _section(referent.get("/", params={"eleves": "miens"}).text)  # the token names no student's référent
        assert "000000009DR" not in mine and ines[0] not in mine and "Aucun entretien" in mine, mine
        _at(referent.client, NOW + 4 * DAY)  # the clock moves: the 10-day one comes within 7 days
        todo = _section(referent.get("/").text)
        assert ines[1] in todo and ines[0] not in todo, todo  # ines[0]'s time has passed
        _at(referent.client, NOW)
        checklist = {"itinerary_ready": True, "letter_printed": True, "materials_ready": True}
        answer = api_post(referent.client, pages.token("referent", COLLEGE),
                          f"/api/students/{ines[0]}/interviews/{interview_id}/preparation", checklist)
        todo = _section(referent.get("/", params={"position": answer["positions"]["service"]}).text)
        assert ines[0] not in todo and "000000009DR" in todo, todo


def test_the_rectorats_dashboard_shows_what_is_late_by_establishment(pages: PagesWorld):
    ines = [f"{n:09d}DS" for n in range(1, 4)]
    with pages.client("registration") as registration:
        for ine in ines:
            register_student(pages, registration, ine)
            schedule(pages, registration, ine, (NOW - 2 * DAY).isoformat())
        college_avis(pages, registration, ines[0])
    with pages.client("evaluation") as evaluation:
        held = {"lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": (NOW - DAY).isoformat(), "report": REPORT}
        last = api_post(evaluation, pages.token("lycee_staff", LYCEE), f"/api/students/{ines[1]}/interviews/held", held)
    with pages.visitor("scoring", "rectorat", None) as rectorat:
        # the scoring view follows both services' streams: wait for the evaluation write
        rectorat.get("/api/reports/summary", params={"min_position": last["positions"]["service"]},
                     headers={"Authorization": f"Bearer {pages.token('rectorat', None)}"})
        todo = _section(rectorat.get("/").text)
        assert "établissements en retard" in todo
        assert "Collège Voltaire : 1 avis du collège à donner" in todo, todo  # ines[2]; ines[1]'s interview is held
        assert "1 avis du lycée à donner après entretien" in todo, todo
        colleges = _section(rectorat.get("/", params={"etablissements": "college"}).text)
        assert "avis du collège" in colleges and "avis du lycée" not in colleges, colleges
        body = {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"}
        with pages.client("evaluation") as evaluation:
            last = api_post(evaluation, pages.token("proviseur", LYCEE), f"/api/students/{ines[1]}/lycee-avis", body)
        rectorat.get("/api/reports/summary", params={"min_position": last["positions"]["service"]},
                     headers={"Authorization": f"Bearer {pages.token('rectorat', None)}"})
        todo = _section(rectorat.get("/").text)
        assert "avis du lycée à donner" not in todo and "Collège Voltaire : 1" in todo, todo


def test_a_list_is_paged_in_sql_ten_a_page(pages: PagesWorld):
    ines = [f"{n:09d}DQ" for n in range(1, 13)]
    with pages.client("registration") as registration:
        for ine in ines:
            last = register_student(pages, registration, ine)
    with pages.visitor("registration", "principal", COLLEGE) as principal:
        first = principal.get("/", params={"position": last["positions"]["service"]}).text
        shown = _section(first)
        assert sum(ine in shown for ine in ines) == 10 and "12" in shown and "Suivants" in shown, shown
        assert 'href="/?afaire=2"' in first
        second = _section(principal.get("/", params={"afaire": "2"}).text)
        assert sum(ine in second for ine in ines) == 2 and "Précédents" in second and "Suivants" not in second, second
        assert {ine for ine in ines if ine in shown} | {ine for ine in ines if ine in second} == set(ines)
