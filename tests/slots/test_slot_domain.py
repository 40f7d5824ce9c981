"""Rules 9 and 10 as pure functions (SPEC §7): given the student's history and the slot's, when a command, then
the event or the refusal. No log, no clock: the decision is the two histories' fold and the command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from event_factories import (
    CAMPAIGN, FORMATION, INE, LYCEE, REFERENT_ACTOR, cancelled, make_event, registered, scheduled, slot_opened,
)
from services.registration import domain
from shared.contracts.events import InterviewRescheduled, InterviewSlotClosed
from shared.domain.errors import InvalidInput, RuleViolation
from shared.domain.slots import SlotNotFound, fold_slot, require_no_overlap
from shared.domain.student_file import CampaignFile, fold

NOW = datetime(2027, 3, 1, 9, tzinfo=UTC)
OPEN = CampaignFile(campaign=CAMPAIGN, opened=True, bonus_points=2500)
COLLEGE = "0752536Z"


def student(*payloads):
    return fold(CAMPAIGN, INE, [(make_event(p), n) for n, p in enumerate([registered(), *payloads], start=1)])


def slot(capacity: int = 2, *more, slot_id: str = "s1"):
    opened = slot_opened(slot_id, capacity)
    return fold_slot(slot_id, [make_event(opened, ine=None), *more])


def booking(other_ine: str, interview_id: str, slot_id: str = "s1"):
    return make_event(scheduled(interview_id=interview_id).model_copy(update={"slot_id": slot_id}), ine=other_ine)


def book(slot_id: str = "s1", **body) -> domain.ScheduleInterview:
    values = {"lycee_uai": None, "formation_code": None, "scheduled_at": None, "mode": None} | body
    return domain.ScheduleInterview("new", remote_equipment_ready=False, slot_id=slot_id, **values)


def decide(file, command, slots):
    return domain.decide(file, OPEN, NOW, command, COLLEGE, slots)


def test_a_slot_counts_its_bookings_and_frees_a_cancelled_or_moved_one():
    s = slot(3, booking("0000000001A", "i1"), booking("0000000002B", "i2"), booking("0000000003C", "i3"))
    assert s.taken == 3 and s.free == 0
    moved = make_event(InterviewRescheduled(interview_id="i2", lycee_uai=LYCEE, formation_code=FORMATION,
                                            scheduled_at=NOW, slot_id="s2", mode="presentiel"), ine="0000000002B")
    s = fold_slot("s1", [make_event(slot_opened("s1", 3), ine=None), booking("0000000001A", "i1"), booking("0000000002B", "i2"),
                         booking("0000000003C", "i3"), make_event(cancelled("i1"), ine="0000000001A"), moved])
    assert s.bookings == {"i3": "0000000003C"} and s.free == 2


def test_booking_takes_the_slots_values_and_names_it():
    event = decide(student(), book(), {"s1": slot()})
    assert (event.slot_id, event.lycee_uai, event.formation_code, event.mode) == ("s1", LYCEE, FORMATION, "presentiel")
    assert event.scheduled_at == slot().starts_at


@pytest.mark.parametrize(("slot_file", "code"), [
    (slot(1, booking("0000000009X", "ix")), "slot_full"),
    (slot(2, make_event(InterviewSlotClosed(slot_id="s1", lycee_uai=LYCEE, formation_code=FORMATION), ine=None)),
     "slot_closed"),
])
def test_rule_9_a_full_or_closed_slot_is_refused(slot_file, code):
    with pytest.raises(RuleViolation) as refused:
        decide(student(), book(), {"s1": slot_file})
    assert refused.value.code == code


def test_a_body_naming_other_values_than_the_slots_is_invalid_and_an_unknown_slot_not_found():
    with pytest.raises(InvalidInput) as refused:
        decide(student(), book(mode="distanciel"), {"s1": slot()})
    assert refused.value.code == "slot_mismatch"
    with pytest.raises(SlotNotFound) as missing:
        decide(student(), book(), {})
    assert (missing.value.status, missing.value.code) == (404, "slot_not_found")


def test_rule_10_overlap_counts_the_slots_length_and_thirty_minutes_for_a_free_time():
    start = slot().starts_at
    file = student(scheduled(interview_id="free", at=start - timedelta(minutes=29)))
    with pytest.raises(RuleViolation) as refused:
        require_no_overlap(file, start, 30, {})
    assert refused.value.code == "interview_overlap"
    require_no_overlap(student(scheduled(interview_id="free", at=start - timedelta(minutes=30))), start, 30, {})
    # A cancelled interview frees its time; the one being moved does not count against itself.
    require_no_overlap(student(scheduled(interview_id="free", at=start), cancelled("free")), start, 30, {})
    require_no_overlap(student(scheduled(interview_id="free", at=start)), start, 30, {}, moving="free")


def test_a_move_to_another_slot_of_the_voeu_is_one_event_and_refuses_the_same_slot():
    file = student(scheduled(interview_id="i1").model_copy(update={"slot_id": "s1"}))
    move = domain.RescheduleInterview(LYCEE, FORMATION, "s2", None, None)
    s2 = slot(1, slot_id="s2")
    event = decide(file, move, {"s1": slot(2, booking(INE, "i1")), "s2": s2})
    assert isinstance(event, InterviewRescheduled) and (event.interview_id, event.slot_id) == ("i1", "s2")
    with pytest.raises(RuleViolation) as refused:
        decide(file, domain.RescheduleInterview(LYCEE, FORMATION, "s1", None, None), {"s1": slot(2, booking(INE, "i1"))})
    assert refused.value.code == "already_in_slot"


def test_a_move_carries_the_collèges_room_with_the_bookings_rules_and_the_file_keeps_it():
    file = student(scheduled(interview_id="i1", mode="distanciel").model_copy(update={"room": "Salle 204"}))
    later = NOW + timedelta(days=20)
    for room, mode, code in ((None, "distanciel", "room_missing"), ("Salle 3", "presentiel", "room_not_for_presentiel")):
        with pytest.raises(InvalidInput) as refused:
            decide(file, domain.RescheduleInterview(LYCEE, FORMATION, None, later, mode, room=room), {})
        assert (refused.value.code, [f["field"] for f in refused.value.details["fields"]]) == (code, ["room"])
    event = decide(file, domain.RescheduleInterview(LYCEE, FORMATION, None, later, "distanciel", room="CDI"), {})
    assert isinstance(event, InterviewRescheduled) and event.room == "CDI"
    [interview] = student(scheduled(interview_id="i1", mode="distanciel"), event).interviews.values()
    assert (interview.room, interview.scheduled_at) == ("CDI", later)
    back = decide(file, domain.RescheduleInterview(LYCEE, FORMATION, None, later, "presentiel"), {})
    [interview] = student(scheduled(interview_id="i1", mode="distanciel"), event, back).interviews.values()
    assert interview.room is None and interview.mode == "presentiel"
