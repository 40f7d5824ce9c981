"""The collège's student page (SPEC §7): the coming slots with a free place offered from registration's own view,
booking one, moving the interview to another slot (the old place freed), a full slot refused at its field with
nothing stored."""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_sync

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pages"))

from pages_world import World as PagesWorld, api_post, register_student, text_of  # noqa: E402

LYCEE, FORMATION, COLLEGE = "0752845K", "2473121131", "0752536Z"
START = (datetime.now(UTC) + timedelta(days=9)).replace(hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture
def pages(redis_url: str, academie: str, tmp_path: Path):
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        w = PagesWorld(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client)
        w.open_campaign()
        yield w


def _slot(pages: PagesWorld, evaluation, starts_at: datetime, capacity: int) -> dict:
    body = {"lycee_uai": LYCEE, "formation_code": FORMATION, "starts_at": starts_at.isoformat(), "duration_minutes": 30,
            "capacity": capacity, "mode": "presentiel", "place": "Salle B12"}
    return api_post(evaluation, pages.token("lycee_staff", LYCEE), "/api/slots", body)


def test_the_referent_books_a_slot_then_moves_the_interview_and_a_full_slot_is_refused(pages: PagesWorld):
    with pages.client("evaluation") as evaluation:
        first = _slot(pages, evaluation, START, 1)["event"]["payload"]["slot_id"]
        second = _slot(pages, evaluation, START + timedelta(days=1), 1)["event"]["payload"]["slot_id"]
    with pages.visitor("registration", "referent", COLLEGE) as visitor:
        written = [register_student(pages, visitor.client, ine) for ine in ("000000001BK", "000000002BK")]
        page = visitor.get(f"/eleves/000000001BK?position={written[-1]['positions']['service']}")
        assert f'value="{first}"' in page.text and "1 place libre" in text_of(page.text)
        booked = visitor.post("/eleves/000000001BK/entretiens/creneau", {"slot_id": first, "event_id": ""})
        assert "L'élève est inscrit sur le créneau du lycée" in text_of(booked.text), booked.text
        move_form = booked.text.split("Déplacer cet entretien")[1]
        assert "Vers un autre créneau" in move_form and f'value="{second}"' in move_form
        # The first slot is full now: not offered to the other student; booked anyway (a stale page), refused.
        other = visitor.get("/eleves/000000002BK")
        assert f'value="{first}"' not in other.text and f'value="{second}"' in other.text
        before = pages.snapshot()
        refused = visitor.post("/eleves/000000002BK/entretiens/creneau", {"slot_id": first, "event_id": ""})
        assert refused.status_code == 409 and "complet" in text_of(refused.text)
        assert pages.snapshot() == before
        # The first student moves to the second slot: the first one's place is free again.
        moved = visitor.post("/eleves/000000001BK/entretiens/deplacement", {
            "lycee_uai": LYCEE, "formation_code": FORMATION, "slot_id": second, "event_id": ""})
        assert "L'entretien est déplacé" in text_of(moved.text), moved.text
        again = visitor.post("/eleves/000000002BK/entretiens/creneau", {"slot_id": first, "event_id": ""})
        assert "L'élève est inscrit sur le créneau du lycée" in text_of(again.text)
