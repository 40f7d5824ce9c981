"""The rights of SPEC §7's forms (the pages' side of the rights matrix, SPEC §1): another lycée cannot close a
lycée's slot nor publish for a formation it does not teach, nor correct another lycée's report; another collège
cannot book nor move its students' interviews. Each refusal is a page (never a server error) and stores nothing."""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_sync

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pages"))

from pages_world import (  # noqa: E402
    COLLEGE, FORMATION, LYCEE, OTHER_COLLEGE, OTHER_LYCEE, World as PagesWorld, api_post, register_student, schedule,
    text_of,
)

START = (datetime.now(UTC) + timedelta(days=9)).replace(hour=12, minute=0, second=0, microsecond=0)
REPORT = {"event_id": "", "report.motivation": "tres_satisfaisante", "report.chances_of_success": "satisfaisante",
          "report.advice": "Visiter l'atelier."}


@pytest.fixture
def pages(redis_url: str, academie: str, tmp_path: Path):
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        w = PagesWorld(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client)
        w.open_campaign()
        yield w


def _slot(pages: PagesWorld) -> str:
    body = {"lycee_uai": LYCEE, "formation_code": FORMATION, "starts_at": START.isoformat(), "duration_minutes": 30,
            "capacity": 2, "mode": "presentiel", "place": "Salle B12"}
    with pages.client("evaluation") as evaluation:
        return api_post(evaluation, pages.token("lycee_staff", LYCEE), "/api/slots", body)["event"]["payload"]["slot_id"]


def _refused(pages: PagesWorld, send, statuses: set[int]) -> str:
    before = pages.snapshot()
    answer = send()
    assert answer.status_code in statuses, (answer.status_code, text_of(answer.text)[:500])
    assert pages.snapshot() == before
    return text_of(answer.text)


def test_another_lycee_neither_closes_the_slot_nor_publishes_for_a_formation_it_does_not_teach(pages: PagesWorld):
    slot_id = _slot(pages)
    for role in ("lycee_staff", "proviseur"):
        with pages.visitor("evaluation", role, OTHER_LYCEE) as other:
            other.get("/creneaux")
            _refused(pages, lambda: other.post(f"/creneaux/{slot_id}/fermeture", {"event_id": ""}), {404})
            one = {"formation_code": FORMATION, "starts_at": START.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": "30",
                   "capacity": "2", "mode": "presentiel", "place": "Salle", "event_id": ""}
            _refused(pages, lambda: other.post("/creneaux", one), {403, 404, 409, 422})
    with pages.visitor("evaluation", "lycee_staff", LYCEE) as own:  # its own lycée's staff: closed
        own.get("/creneaux")
        assert "Le créneau est fermé" in own.post(f"/creneaux/{slot_id}/fermeture", {"event_id": ""}).text


def test_another_college_neither_books_nor_moves_the_students_interview(pages: PagesWorld):
    slot_id = _slot(pages)
    ine = "000000001PR"
    with pages.client("registration") as registration:
        register_student(pages, registration, ine)
    for role in ("referent", "principal"):
        with pages.visitor("registration", role, OTHER_COLLEGE) as other:
            other.get("/")
            page = _refused(pages, lambda: other.post(f"/eleves/{ine}/entretiens/creneau",
                                                      {"slot_id": slot_id, "event_id": ""}), {404})
            assert "Élève introuvable" in page, page[:300]
    with pages.visitor("registration", "referent", COLLEGE) as own:
        own.get(f"/eleves/{ine}")
        booked = own.post(f"/eleves/{ine}/entretiens/creneau", {"slot_id": slot_id, "event_id": ""})
        assert "L'élève est inscrit sur le créneau du lycée" in text_of(booked.text)
    move = {"lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": (START + timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M"), "mode": "presentiel", "event_id": ""}
    with pages.visitor("registration", "referent", OTHER_COLLEGE) as other:
        other.get("/")
        _refused(pages, lambda: other.post(f"/eleves/{ine}/entretiens/deplacement", move), {404})


def test_only_the_interviews_lycee_corrects_its_report(pages: PagesWorld):
    ine = "000000002PR"
    with pages.client("registration") as registration:
        register_student(pages, registration, ine)
        schedule(pages, registration, ine, (datetime.now(UTC) - timedelta(hours=3)).isoformat())
    held = {"lycee_uai": LYCEE, "formation_code": FORMATION, "held_at": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
            "report": {"motivation": "fragile", "chances_of_success": "fragile", "advice": "Revoir le projet."}}
    with pages.client("evaluation") as evaluation:
        api_post(evaluation, pages.token("lycee_staff", LYCEE), f"/api/students/{ine}/interviews/held", held)
    for role in ("lycee_staff", "proviseur"):
        with pages.visitor("evaluation", role, OTHER_LYCEE) as other:
            other.get("/")
            _refused(pages, lambda: other.post(f"/eleves/{ine}/{FORMATION}/correction", REPORT), {403, 404})
    with pages.visitor("evaluation", "proviseur", LYCEE) as own:  # the interview's lycée: the proviseur too
        own.get("/")
        corrected = own.post(f"/eleves/{ine}/{FORMATION}/correction", REPORT)
        assert "Le compte rendu corrigé est enregistré" in text_of(corrected.text), text_of(corrected.text)[:500]
