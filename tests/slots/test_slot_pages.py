"""The lycée's « Créneaux » page (SPEC §7) over HTTP: publishing one slot and a series, closing one, the list
with free places; a bad series stores nothing."""

from __future__ import annotations

import contextlib
import sys
from datetime import date, time, timedelta
from pathlib import Path

import pytest
import redis as redis_sync

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pages"))

from pages_world import World as PagesWorld, text_of  # noqa: E402
from services.evaluation.slot_pages import SeriesError, series_starts  # noqa: E402
from shared.fr.formats import PARIS  # noqa: E402

LYCEE, FORMATION = "0752845K", "2473121131"
NEXT_MONDAY = date.today() + timedelta(days=7 - date.today().weekday() + 7)


@pytest.fixture
def pages(redis_url: str, academie: str, tmp_path: Path):
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        w = PagesWorld(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client)
        w.open_campaign()
        yield w


def test_a_series_is_every_chosen_weekday_from_one_hour_to_another():
    starts = series_starts(NEXT_MONDAY, NEXT_MONDAY + timedelta(days=13), {2}, time(14), time(17), 30)
    assert len(starts) == 12  # two Wednesdays, six half-hours each
    assert {s.weekday() for s in starts} == {2} and starts[0].tzinfo == PARIS
    assert (starts[0].hour, starts[5].hour, starts[5].minute) == (14, 16, 30)
    with pytest.raises(SeriesError):
        series_starts(NEXT_MONDAY, NEXT_MONDAY, {0}, time(14), time(14, 20), 30)  # nothing fits
    with pytest.raises(SeriesError):
        series_starts(NEXT_MONDAY, NEXT_MONDAY + timedelta(days=365), {0, 1, 2, 3, 4}, time(8), time(18), 10)


def test_the_lycee_publishes_a_slot_and_a_series_then_closes_a_slot(pages: PagesWorld):
    with pages.visitor("evaluation", "lycee_staff", LYCEE) as visitor:
        assert "aucun créneau" in text_of(visitor.get("/creneaux").text)
        one = {"formation_code": FORMATION, "starts_at": f"{NEXT_MONDAY.isoformat()}T09:00", "duration_minutes": "45",
               "capacity": "3", "mode": "presentiel", "place": "Salle B12", "event_id": ""}
        answer = visitor.post("/creneaux", one)
        assert answer.status_code == 200 and "Le créneau est publié" in answer.text, answer.text
        assert "3 libres sur 3" in text_of(answer.text)
        series = {"formation_code": FORMATION, "first_day": NEXT_MONDAY.isoformat(),
                  "last_day": (NEXT_MONDAY + timedelta(days=6)).isoformat(), "weekday_2": "on", "start": "14:00",
                  "end": "15:30", "duration_minutes": "30", "capacity": "2", "mode": "presentiel", "place": "Atelier",
                  "event_id": "6f1c4b8e-2d0a-4c1e-9a57-0d2b8f3e4a11"}
        answer = visitor.post("/creneaux/serie", series)
        assert "La série de créneaux est publiée" in answer.text, answer.text
        assert "4 créneaux" in text_of(answer.text)
        visitor.post("/creneaux/serie", series)  # the same form again: the same ids, nothing twice
        listed = visitor.get("/creneaux")
        assert "4 créneaux" in text_of(listed.text)
        slot_id = listed.text.split('action="/creneaux/')[1].split("/fermeture")[0]
        closed = visitor.post(f"/creneaux/{slot_id}/fermeture", {"event_id": ""})
        assert "Le créneau est fermé" in closed.text and "Fermé" in closed.text


def test_a_bad_series_or_slot_is_shown_with_its_field_and_stores_nothing(pages: PagesWorld):
    with pages.visitor("evaluation", "lycee_staff", LYCEE) as visitor:
        visitor.get("/creneaux")
        before = pages.snapshot()
        series = {"formation_code": FORMATION, "first_day": NEXT_MONDAY.isoformat(), "last_day": NEXT_MONDAY.isoformat(),
                  "start": "14:00", "end": "15:00", "duration_minutes": "30", "capacity": "2", "mode": "presentiel",
                  "place": "Atelier", "event_id": ""}
        answer = visitor.post("/creneaux/serie", series)  # no weekday
        assert answer.status_code == 422 and "Choisissez au moins un jour" in answer.text
        one = {"formation_code": FORMATION, "starts_at": f"{NEXT_MONDAY.isoformat()}T09:00", "duration_minutes": "5",
               "capacity": "3", "mode": "presentiel", "place": "Salle", "event_id": ""}
        answer = visitor.post("/creneaux", one)
        assert answer.status_code == 422 and "Durée" in text_of(answer.text)
        assert pages.snapshot() == before


# --- the interview's page: « held at » defaults to the scheduled time; earlier asks for a confirmation -------


def _scheduled(pages: PagesWorld, ine: str, hours_ago: int) -> str:
    from datetime import UTC, datetime

    from pages_world import college_avis, register_student, schedule

    with pages.client("registration") as registration:
        register_student(pages, registration, ine)
        college_avis(pages, registration, ine)
        answer = schedule(pages, registration, ine, (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat())
    return answer["positions"]["service"]


def _report(held_at: str, **changes: str) -> dict:
    return {"event_id": "", "held_at": held_at, "mode": "presentiel", "report.motivation": "fragile",
            "report.chances_of_success": "satisfaisante", "report.advice": "Visiter l'atelier.", **changes}


def test_held_at_defaults_to_the_scheduled_time_and_an_earlier_time_asks_for_a_confirmation(pages: PagesWorld):
    ine = "000000001HA"
    position = _scheduled(pages, ine, hours_ago=2)
    with pages.visitor("evaluation", "lycee_staff", LYCEE) as visitor:
        page = visitor.get(f"/eleves/{ine}/{FORMATION}?position={position}")
        scheduled_local = page.text.split('name="held_at" type="datetime-local" value="')[1].split('"')[0]
        two_hours_ago = (datetime_fromlocal(scheduled_local).replace(tzinfo=PARIS) - _now()).total_seconds()
        assert -2 * 3600 - 120 < two_hours_ago < -2 * 3600 + 120  # the scheduled time, not now
        early = (datetime_fromlocal(scheduled_local) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
        before = pages.snapshot()
        asked = visitor.post(f"/eleves/{ine}/{FORMATION}/compte-rendu", _report(early))
        assert asked.status_code == 422 and "Confirmez-vous" in asked.text
        assert pages.snapshot() == before
        confirmed = visitor.post(f"/eleves/{ine}/{FORMATION}/compte-rendu", _report(early, confirm_early="on"))
        assert "L'entretien est enregistré comme tenu" in text_of(confirmed.text)
        # Then the report is corrected, until the lycée avis.
        corrected = visitor.post(f"/eleves/{ine}/{FORMATION}/correction", {
            "event_id": "", "report.motivation": "tres_satisfaisante", "report.chances_of_success": "satisfaisante",
            "report.advice": "Visiter l'atelier, puis rencontrer les élèves."})
        assert "Le compte rendu corrigé est enregistré" in text_of(corrected.text)
        assert "puis rencontrer les élèves" in text_of(corrected.text)


def datetime_fromlocal(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value)


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)
