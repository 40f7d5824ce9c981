"""Hostile input on the slots' endpoints (SPEC §5, §7), generated: the fuzz test of tests/services covers every
write of the rights matrix, but not publishing and closing a slot, and its bookings name slots that do not exist.
Here: POST /api/slots with each field valid or hostile, POST /api/slots/{slot_id}/close on real and hostile ids,
and bookings on a real slot with hostile companions. Whatever is sent: never a 5xx, only SPEC §5's statuses,
every refusal a French {error, message} body, nothing stored unless 201 — and then one entry in each stream the
write names (evaluation's and the slot's; a booking: registration's, the student's and the slot's)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CAMPAIGN, Passpro
from matrix import FORMATION, LYCEE, refusal_problems
from test_fuzz import EVENT_ID, FORMATIONS, HOSTILE, LYCEES, SLOT_IDS, SPEC_STATUSES, TEXTS, _dates
from test_slots_http import INES, World

EXAMPLES = 60
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MISSING = object()


def _field(valid: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(valid, valid, HOSTILE, st.just(MISSING))


SLOT_BODIES = st.fixed_dictionaries({
    "lycee_uai": _field(LYCEES),
    "formation_code": _field(FORMATIONS),
    "starts_at": _field(_dates("future")),
    "duration_minutes": _field(st.sampled_from([30, 45, 10, 120, 9, 121, 0, -30, 30.0, 30.5, "30"])),
    "capacity": _field(st.sampled_from([1, 3, 50, 0, 51, -1, 2.0, "3"])),
    "mode": _field(st.sampled_from(["presentiel", "distanciel", "visio", "PRESENTIEL"])),
    "place": _field(TEXTS),
    "event_id": _field(EVENT_ID),
}).map(lambda body: {k: v for k, v in body.items() if v is not MISSING})
VALID_SLOT = st.fixed_dictionaries({
    "lycee_uai": st.just(LYCEE), "formation_code": st.just(FORMATION),
    "starts_at": st.integers(1, 400).map(lambda h: (datetime.now(UTC) + timedelta(days=8, hours=h)).isoformat()),
    "duration_minutes": st.sampled_from([10, 30, 45, 120]), "capacity": st.integers(1, 50),
    "mode": st.sampled_from(["presentiel", "distanciel"]), "place": TEXTS,
})
# A valid body with one field made hostile or left out: each validation reached on its own.
ONE_WRONG = st.tuples(VALID_SLOT, st.sampled_from([
    "lycee_uai", "formation_code", "starts_at", "duration_minutes", "capacity", "mode", "place"]), _field(HOSTILE)).map(
    lambda t: {k: v for k, v in ({**t[0], t[1]: t[2]}).items() if v is not MISSING})


@pytest.fixture
def world(passpro: Passpro, registration: TestClient, evaluation: TestClient):
    return World(passpro, registration, evaluation)


def _streams(world: World) -> dict[str, int]:
    return {k: v[1] for k, v in world.passpro.snapshot().items() if isinstance(v, tuple) and v[0] == "stream"}


def _check(world: World, answer, before: dict, grown: set[str] | None, statuses: Counter) -> None:
    statuses[answer.status_code] += 1
    assert answer.status_code in SPEC_STATUSES, (answer.status_code, answer.text[:500])
    after = _streams(world)
    if answer.status_code == 201:
        changed = {k for k in after if after[k] != before.get(k, 0)}
        if grown is None:  # a new slot: evaluation's stream and the slot's own
            slot = world.passpro.keys.slot(CAMPAIGN, answer.json()["event"]["payload"]["slot_id"])
            grown = {world.passpro.service_stream("evaluation"), slot}
        assert changed == grown, (changed, grown)
        assert all(after[k] == before.get(k, 0) + 1 for k in grown), (before, after)
    elif answer.status_code != 200:  # 200: the same request again, its original event; nothing new
        assert not refusal_problems(answer.status_code, answer.json()), answer.text[:500]
        assert after == before, answer.text[:300]
    else:
        assert after == before


def test_generated_slots_never_5xx_and_store_only_what_is_accepted(world: World):
    statuses: Counter = Counter()

    @FUZZ
    @given(body=VALID_SLOT | ONE_WRONG | SLOT_BODIES | st.sampled_from([[], None, "créneau", 3]))
    def send(body) -> None:
        before = _streams(world)
        answer = world.evaluation.post("/api/slots", content=json.dumps(body), headers=world.staff | {
            "Content-Type": "application/json"})
        _check(world, answer, before, None, statuses)

    send()
    print(f"POST /api/slots: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert statuses[201] and statuses[422]  # both sides were reached


def test_closing_and_booking_a_real_slot_with_hostile_input(world: World):
    slots = [world.open_slot(capacity=3, starts_at=datetime.now(UTC) + timedelta(days=12, hours=n)) for n in range(3)]
    for ine in INES[:4]:
        world.register(ine)
    statuses: Counter = Counter()
    slot_key = lambda slot_id: world.passpro.keys.slot(CAMPAIGN, slot_id)  # noqa: E731

    @FUZZ
    @given(slot_id=st.sampled_from(slots) | SLOT_IDS, staff=st.booleans(), event_id=_field(EVENT_ID))
    def close(slot_id: str, staff: bool, event_id) -> None:
        before = _streams(world)
        body = {} if event_id is MISSING else {"event_id": event_id}
        headers = world.staff if staff else world.referent
        answer = world.evaluation.post(f"/api/slots/{slot_id}/close", content=json.dumps(body),
                                       headers=headers | {"Content-Type": "application/json"})
        grown = {world.passpro.service_stream("evaluation"), slot_key(slot_id)} if answer.status_code == 201 else set()
        _check(world, answer, before, grown, statuses)

    @FUZZ
    @given(ine=st.sampled_from(INES[:4]), slot_id=st.sampled_from(slots) | SLOT_IDS, extra=st.dictionaries(
        st.sampled_from(["lycee_uai", "formation_code", "scheduled_at", "mode", "remote_equipment_ready", "event_id"]),
        st.one_of(LYCEES, FORMATIONS, _dates("future"), HOSTILE), max_size=3))
    def book(ine: str, slot_id: str, extra: dict) -> None:
        before = _streams(world)
        answer = world.registration.post(f"/api/students/{ine}/interviews", content=json.dumps({"slot_id": slot_id, **extra}),
                                         headers=world.referent | {"Content-Type": "application/json"})
        grown = ({world.passpro.service_stream("registration"), world.passpro.student_stream(ine), slot_key(slot_id)}
                 if answer.status_code == 201 else set())
        _check(world, answer, before, grown, statuses)

    book()
    close()
    print(f"slots' close and bookings: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert statuses[201] and statuses[409] and statuses[422]
    taken = [len([e for e in world.slot_stream(s) if e.event_type == "InterviewScheduled"]) for s in slots]
    assert all(n <= 3 for n in taken), taken  # rule 9 held whatever was sent
