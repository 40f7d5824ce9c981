"""SPEC §7 over HTTP, in process: slots (publish, close, list with free places), booking a slot, rule 9
(capacity, closed slot), rule 10 (no overlap), rescheduling in one event, report corrections. Every refusal
stores nothing (the académie's keys are compared before and after)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from conftest import CAMPAIGN, Passpro
from matrix import FORMATION, LYCEE, OTHER_LYCEE, OTHER_LYCEE_FORMATION, held_body, register_body
from shared.contracts.events import event_from_fields
from shared.contracts.personal import ErasedKeyring

START = (datetime.now(UTC) + timedelta(days=10)).replace(hour=13, minute=0, second=0, microsecond=0)
INES = [f"{n:09d}SL" for n in range(1, 9)]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def slot_body(starts_at: datetime = START, capacity: int = 2, minutes: int = 30, **changes) -> dict:
    return {
        "lycee_uai": LYCEE, "formation_code": FORMATION, "starts_at": starts_at.isoformat(),
        "duration_minutes": minutes, "capacity": capacity, "mode": "presentiel", "place": "Salle B12", **changes,
    }


@pytest.fixture
def world(passpro: Passpro, registration: TestClient, evaluation: TestClient):
    return World(passpro, registration, evaluation)


class World:
    def __init__(self, passpro: Passpro, registration: TestClient, evaluation: TestClient) -> None:
        self.passpro, self.registration, self.evaluation = passpro, registration, evaluation
        self.staff = passpro.auth("lycee_staff", LYCEE)
        self.referent = passpro.auth("referent", "0752536Z")
        self.principal = passpro.auth("principal", "0752536Z")

    def open_slot(self, **kwargs) -> str:
        response = self.evaluation.post("/api/slots", json=slot_body(**kwargs), headers=self.staff)
        assert response.status_code == 201, response.text
        return response.json()["event"]["payload"]["slot_id"]

    def register(self, ine: str) -> None:
        response = self.registration.post("/api/students", json=register_body(ine), headers=self.principal)
        assert response.status_code == 201, response.text

    def book(self, ine: str, slot_id: str, **extra):
        return self.registration.post(
            f"/api/students/{ine}/interviews", json={"slot_id": slot_id, **extra}, headers=self.referent
        )

    def slot_stream(self, slot_id: str) -> list:
        entries = self.passpro.redis.xrange(self.passpro.keys.slot(CAMPAIGN, slot_id))
        return [event_from_fields({_text(k): _text(v) for k, v in f.items()}, ErasedKeyring()) for _, f in entries]

    def refused(self, send, status: int, code: str) -> dict:
        before = self.passpro.snapshot()
        response = send()
        assert response.status_code == status, response.text
        assert response.json()["error"] == code, response.json()
        assert self.passpro.snapshot() == before
        return response.json()

    def slots(self, **params) -> list[dict]:
        response = self.evaluation.get("/api/slots", params=params, headers=self.referent)
        assert response.status_code == 200, response.text
        return response.json()["items"]


def test_a_published_slot_goes_to_evaluations_stream_and_its_own(world: World):
    slot_id = world.open_slot()
    [opened] = world.slot_stream(slot_id)
    assert opened.event_type == "InterviewSlotOpened" and opened.student_ine is None
    assert opened.payload.capacity == 2 and opened.payload.starts_at == START
    evaluation = world.passpro.redis.xrange(world.passpro.service_stream("evaluation"))
    assert [_text(f[b"event_id"] if b"event_id" in f else f["event_id"]) for _, f in evaluation][-1] == str(
        opened.event_id
    )


def test_the_list_shows_free_places_as_bookings_take_and_free_them(world: World):
    slot_id = world.open_slot(capacity=2)
    for ine in INES[:2]:
        world.register(ine)
    booked = world.book(INES[0], slot_id)
    assert booked.status_code == 201, booked.text
    position = booked.json()["positions"]["service"]
    [row] = [s for s in world.slots(min_position=position) if s["slot_id"] == slot_id]
    assert (row["capacity"], row["taken"], row["free"], row["closed"]) == (2, 1, 1, False)


def test_a_slot_takes_no_more_bookings_than_its_places_then_409_slot_full(world: World):
    slot_id = world.open_slot(capacity=2)
    for ine in INES[:3]:
        world.register(ine)
    assert world.book(INES[0], slot_id).status_code == 201
    scheduled = world.book(INES[1], slot_id)
    assert scheduled.status_code == 201
    payload = scheduled.json()["event"]["payload"]
    assert (payload["slot_id"], payload["lycee_uai"], payload["formation_code"]) == (slot_id, LYCEE, FORMATION)
    assert datetime.fromisoformat(payload["scheduled_at"]) == START and payload["mode"] == "presentiel"
    assert scheduled.json()["event"]["schema_version"] == 2
    world.refused(lambda: world.book(INES[2], slot_id), 409, "slot_full")
    assert [e.event_type for e in world.slot_stream(slot_id)].count("InterviewScheduled") == 2


def test_a_cancellation_frees_the_place_in_the_same_append(world: World):
    slot_id = world.open_slot(capacity=1)
    for ine in INES[:2]:
        world.register(ine)
    assert world.book(INES[0], slot_id).status_code == 201
    cancel = {"lycee_uai": LYCEE, "formation_code": FORMATION, "reason": "reporte"}
    cancelled = world.evaluation.post(f"/api/students/{INES[0]}/interviews/cancel", json=cancel, headers=world.staff)
    assert cancelled.status_code == 201, cancelled.text
    assert world.slot_stream(slot_id)[-1].event_id == __import__("uuid").UUID(cancelled.json()["event"]["event_id"])
    assert world.book(INES[1], slot_id).status_code == 201


def test_a_closed_slot_is_409_slot_closed_and_closing_is_the_lycees(world: World):
    slot_id = world.open_slot()
    world.register(INES[0])
    other = world.passpro.auth("lycee_staff", OTHER_LYCEE)
    world.refused(lambda: world.evaluation.post(f"/api/slots/{slot_id}/close", headers=other), 404, "slot_not_found")
    world.refused(lambda: world.evaluation.post(f"/api/slots/{slot_id}/close", headers=world.referent), 403,
                  "role_forbidden")
    closed = world.evaluation.post(f"/api/slots/{slot_id}/close", headers=world.staff)
    assert closed.status_code == 201, closed.text
    world.refused(lambda: world.book(INES[0], slot_id), 409, "slot_closed")
    world.refused(lambda: world.evaluation.post(f"/api/slots/{slot_id}/close", headers=world.staff), 409, "slot_closed")


def test_a_slot_is_published_by_its_own_lycees_staff_with_valid_values(world: World):
    world.refused(lambda: world.evaluation.post("/api/slots", json=slot_body(), headers=world.referent), 403,
                  "role_forbidden")
    other = world.passpro.auth("proviseur", OTHER_LYCEE)
    world.refused(lambda: world.evaluation.post("/api/slots", json=slot_body(), headers=other), 403,
                  "other_establishment")
    for bad in ({"capacity": 0}, {"capacity": 51}, {"minutes": 9}, {"minutes": 121}):
        world.refused(lambda: world.evaluation.post("/api/slots", json=slot_body(**bad), headers=world.staff), 422,
                      "invalid_input")
    wrong = slot_body(formation_code=OTHER_LYCEE_FORMATION)
    assert world.evaluation.post("/api/slots", json=wrong, headers=world.staff).status_code == 422


def test_a_booking_naming_other_values_than_the_slots_is_422_and_an_unknown_slot_404(world: World):
    slot_id = world.open_slot()
    world.register(INES[0])
    body = world.refused(lambda: world.book(INES[0], slot_id, mode="distanciel"), 422, "slot_mismatch")
    assert body["fields"][0]["field"] == "mode"
    world.refused(lambda: world.book(INES[0], slot_id, lycee_uai=OTHER_LYCEE), 422, "slot_mismatch")
    world.refused(lambda: world.book(INES[0], "nope"), 404, "slot_not_found")
    # A field left out is absent, never null: a null is refused as the wrong type.
    world.refused(lambda: world.book(INES[0], slot_id, mode=None), 422, "invalid_input")
    same = world.book(INES[0], slot_id, lycee_uai=LYCEE, formation_code=FORMATION)
    assert same.status_code == 201, same.text


def test_rule_10_a_students_interviews_never_overlap(world: World):
    early = world.open_slot(starts_at=START, minutes=60)
    world.register(INES[0])
    assert world.book(INES[0], early).status_code == 201
    free_time = {
        "lycee_uai": OTHER_LYCEE, "formation_code": OTHER_LYCEE_FORMATION,
        "scheduled_at": (START + timedelta(minutes=45)).isoformat(), "mode": "presentiel",
    }
    send = lambda: world.registration.post(f"/api/students/{INES[0]}/interviews", json=free_time,  # noqa: E731
                                           headers=world.referent)
    world.refused(send, 409, "interview_overlap")
    free_time["scheduled_at"] = (START + timedelta(minutes=60)).isoformat()  # right after: no overlap
    assert send().status_code == 201


def test_rescheduling_moves_the_interview_in_one_event_and_frees_the_old_place(world: World):
    first, second = world.open_slot(capacity=1), world.open_slot(starts_at=START + timedelta(days=1), capacity=1)
    for ine in INES[:2]:
        world.register(ine)
    assert world.book(INES[0], first).status_code == 201
    move = {"lycee_uai": LYCEE, "formation_code": FORMATION, "slot_id": second}
    url = f"/api/students/{INES[0]}/interviews/reschedule"
    before = world.passpro.xlen(world.passpro.student_stream(INES[0]))
    moved = world.registration.post(url, json=move, headers=world.referent)
    assert moved.status_code == 201, moved.text
    event = moved.json()["event"]
    assert event["event_type"] == "InterviewRescheduled" and event["payload"]["slot_id"] == second
    assert world.passpro.xlen(world.passpro.student_stream(INES[0])) == before + 1  # one event, not two
    # The same entry in both slots' streams: the old place is free, the new one taken.
    assert world.slot_stream(first)[-1].event_id == world.slot_stream(second)[-1].event_id
    world.refused(lambda: world.book(INES[1], second), 409, "slot_full")
    assert world.book(INES[1], first).status_code == 201
    world.refused(lambda: world.registration.post(url, json=move, headers=world.referent), 409, "already_in_slot")
    # To a free time: the slot's place is freed.
    to_free_time = {"lycee_uai": LYCEE, "formation_code": FORMATION, "scheduled_at": (START + timedelta(days=3)).isoformat(),
                    "mode": "presentiel"}
    assert world.registration.post(url, json=to_free_time, headers=world.referent).status_code == 201
    world.register(INES[2])
    assert world.book(INES[2], second).status_code == 201


def test_a_reschedule_names_a_slot_or_a_time_and_mode_and_needs_a_scheduled_interview(world: World):
    slot_id = world.open_slot()
    world.register(INES[0])
    url = f"/api/students/{INES[0]}/interviews/reschedule"
    move = {"lycee_uai": LYCEE, "formation_code": FORMATION, "slot_id": slot_id}
    world.refused(lambda: world.registration.post(url, json=move, headers=world.referent), 409, "no_active_interview")
    both = {**move, "mode": "presentiel"}
    world.refused(lambda: world.registration.post(url, json=both, headers=world.referent), 422, "invalid_input")
    neither = {"lycee_uai": LYCEE, "formation_code": FORMATION}
    world.refused(lambda: world.registration.post(url, json=neither, headers=world.referent), 422, "invalid_input")
    staff = lambda: world.registration.post(url, json=move, headers=world.staff)  # noqa: E731
    world.refused(staff, 403, "role_forbidden")


def test_the_lycee_corrects_a_report_until_its_avis_and_the_latest_counts(world: World):
    world.register(INES[0])
    free_time = {"lycee_uai": LYCEE, "formation_code": FORMATION,
                 "scheduled_at": (datetime.now(UTC) - timedelta(hours=3)).isoformat(), "mode": "presentiel"}
    assert world.registration.post(f"/api/students/{INES[0]}/interviews", json=free_time,
                                   headers=world.referent).status_code == 201
    url = f"/api/students/{INES[0]}/interviews/report"
    report = {"lycee_uai": LYCEE, "formation_code": FORMATION,
              "report": {"motivation": "tres_satisfaisante", "chances_of_success": "satisfaisante", "advice": "Bien."}}
    world.refused(lambda: world.evaluation.post(url, json=report, headers=world.staff), 409, "no_held_interview")
    assert world.evaluation.post(f"/api/students/{INES[0]}/interviews/held", json=held_body(),
                                 headers=world.staff).status_code == 201
    corrected = world.evaluation.post(url, json=report, headers=world.staff)
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["event"]["event_type"] == "InterviewReportCorrected"
    listed = world.evaluation.get("/api/interviews", params={"min_position": corrected.json()["positions"]["service"]},
                                  headers=world.staff).json()["items"]
    assert [i["report"]["motivation"] for i in listed if i["ine"] == INES[0]] == ["tres_satisfaisante"]
    world.refused(lambda: world.evaluation.post(url, json=report, headers=world.referent), 403, "role_forbidden")
    avis = {"lycee_uai": LYCEE, "formation_code": FORMATION, "avis": "favorable"}
    assert world.evaluation.post(f"/api/students/{INES[0]}/lycee-avis", json=avis,
                                 headers=world.passpro.auth("proviseur", LYCEE)).status_code == 201
    world.refused(lambda: world.evaluation.post(url, json=report, headers=world.staff), 409, "lycee_avis_given")


def test_a_move_to_a_slot_takes_the_collèges_room_only_for_a_distanciel_one(world: World):
    """As for a booking (SPEC §6): a présentiel slot refuses a room (422, nothing stored); a distanciel slot takes
    one or none (the slot's own place is the lycée's side)."""
    presentiel = world.open_slot(capacity=2)
    distanciel = world.open_slot(starts_at=START + timedelta(days=1), mode="distanciel", place="Lien envoyé la veille")
    other = world.open_slot(starts_at=START + timedelta(days=2), capacity=2)
    world.register(INES[0])
    assert world.book(INES[0], presentiel, remote_equipment_ready=True).status_code == 201
    url = f"/api/students/{INES[0]}/interviews/reschedule"
    move = {"lycee_uai": LYCEE, "formation_code": FORMATION}
    refused = world.refused(lambda: world.registration.post(
        url, json={**move, "slot_id": other, "room": "Salle 3"}, headers=world.referent), 422, "room_not_for_presentiel")
    assert [f["field"] for f in refused["fields"]] == ["room"]
    moved = world.registration.post(url, json={**move, "slot_id": distanciel, "room": "Salle 3"}, headers=world.referent)
    assert moved.status_code == 201, moved.text
    assert moved.json()["event"]["payload"]["room"] == "Salle 3"
    without = world.registration.post(url, json={**move, "slot_id": other}, headers=world.referent)
    assert without.status_code == 201 and without.json()["event"]["payload"]["room"] is None, without.text
