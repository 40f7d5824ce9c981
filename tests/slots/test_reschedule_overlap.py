"""Rule 10 on a move (SPEC §7), over HTTP: a reschedule, to a free time or to a slot, that would overlap another
of the student's active interviews is 409 `interview_overlap` with nothing stored (neither the student's stream
nor the target slot's); the interview being moved does not count against itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from conftest import Passpro
from matrix import FORMATION, LYCEE, OTHER_LYCEE, OTHER_LYCEE_FORMATION
from test_slots_http import INES, START, World


@pytest.fixture
def world(passpro: Passpro, registration: TestClient, evaluation: TestClient):
    return World(passpro, registration, evaluation)


def _move(world: World, ine: str, lycee: str, formation: str, **target):
    return world.registration.post(f"/api/students/{ine}/interviews/reschedule",
                                   json={"lycee_uai": lycee, "formation_code": formation, **target},
                                   headers=world.referent)


def test_a_move_onto_another_interview_is_409_interview_overlap_and_stores_nothing(world: World):
    slot = world.open_slot(starts_at=START, capacity=2)
    later_slot = world.open_slot(starts_at=START + timedelta(hours=2, minutes=10), capacity=2)
    world.register(INES[0])
    assert world.book(INES[0], slot).status_code == 201
    other = {"lycee_uai": OTHER_LYCEE, "formation_code": OTHER_LYCEE_FORMATION,
             "scheduled_at": (START + timedelta(hours=2)).isoformat(), "mode": "presentiel"}
    booked = world.registration.post(f"/api/students/{INES[0]}/interviews", json=other, headers=world.referent)
    assert booked.status_code == 201, booked.text
    # The free-time interview onto the slot's half-hour: refused, nothing stored.
    onto_slot = {"scheduled_at": (START + timedelta(minutes=15)).isoformat(), "mode": "presentiel"}
    world.refused(lambda: _move(world, INES[0], OTHER_LYCEE, OTHER_LYCEE_FORMATION, **onto_slot), 409,
                  "interview_overlap")
    # The slot's interview onto a slot that overlaps the free-time one: refused, the target slot's place untaken.
    world.refused(lambda: _move(world, INES[0], LYCEE, FORMATION, slot_id=later_slot), 409, "interview_overlap")
    assert world.slot_stream(later_slot)[-1].event_type == "InterviewSlotOpened"
    # Right after the slot: no overlap. And a move within its own time does not count against itself.
    right_after = {"scheduled_at": (START + timedelta(minutes=30)).isoformat(), "mode": "presentiel"}
    assert _move(world, INES[0], OTHER_LYCEE, OTHER_LYCEE_FORMATION, **right_after).status_code == 201
    itself = {"scheduled_at": (START + timedelta(minutes=40)).isoformat(), "mode": "presentiel"}
    assert _move(world, INES[0], OTHER_LYCEE, OTHER_LYCEE_FORMATION, **itself).status_code == 201
