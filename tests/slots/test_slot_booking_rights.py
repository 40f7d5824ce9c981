"""The rights of a booking on a slot and of a move to a slot over the API (SPEC §1, §7): the rights matrix
(tests/services/matrix.py) books and moves at free times only; here every caller of the matrix books the
student on a lycée's slot and moves the interview to another slot. The collège's principal and référent may;
another collège does not see the student (404); the lycées and the rectorat may not (403). Every refusal stores
nothing — neither in the student's stream nor in the slots'."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from conftest import Passpro
from matrix import CALLERS, FORMATION, LYCEE, WRITE_RIGHTS
from test_slots_http import INES, START, World


@pytest.fixture
def world(passpro: Passpro, registration: TestClient, evaluation: TestClient):
    return World(passpro, registration, evaluation)


def test_every_caller_books_on_a_slot_and_moves_to_a_slot_as_the_matrix_says(world: World):
    first = world.open_slot(capacity=2)
    second = world.open_slot(starts_at=START + timedelta(days=1), capacity=2)
    world.register(INES[0])
    book_url = f"/api/students/{INES[0]}/interviews"
    move_url = f"/api/students/{INES[0]}/interviews/reschedule"
    move = {"lycee_uai": LYCEE, "formation_code": FORMATION, "slot_id": second}
    allowed = []
    for caller, expected in zip(CALLERS, WRITE_RIGHTS["schedule"], strict=True):
        headers = world.passpro.auth(caller.role, caller.uai)
        if expected.status == 201:
            allowed.append(headers)
            continue
        world.refused(lambda: world.registration.post(book_url, json={"slot_id": first}, headers=headers),  # noqa: B023
                      expected.status, expected.error)
    booked = world.registration.post(book_url, json={"slot_id": first}, headers=allowed[0])
    assert booked.status_code == 201, booked.text
    for caller, expected in zip(CALLERS, WRITE_RIGHTS["reschedule"], strict=True):
        if expected.status == 201:
            continue
        headers = world.passpro.auth(caller.role, caller.uai)
        world.refused(lambda: world.registration.post(move_url, json=move, headers=headers),  # noqa: B023
                      expected.status, expected.error)
    moved = world.registration.post(move_url, json=move, headers=allowed[-1])
    assert moved.status_code == 201, moved.text
    listed = world.slots(min_position=moved.json()["positions"]["service"])
    assert [s["free"] for s in listed if s["slot_id"] in (first, second)] == [2, 1]  # one place, the second's
