"""The lycée's decisions (SPEC §3.1 rules 5–8): given past events, when a command, then an event or a refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from histories import (
    CLOSED,
    FORMATION,
    LYCEE,
    NOT_OPENED,
    NOW,
    OPEN,
    OTHER_FORMATION,
    OTHER_LYCEE,
    OTHER_LYCEE_FORMATION,
    REPORT,
    cancelled,
    college_avis,
    given,
    held,
    lycee_avis,
    nothing,
    registered,
    reinstated,
    scheduled,
    withdrawn,
)
from services.evaluation.domain import CancelInterview, GiveLyceeAvis, RecordHeld, decide
from shared.domain.bonus import total_bonus_points, voeu_bonuses
from shared.domain.errors import InvalidInput, NotFound, RuleViolation
from shared.contracts.events import InterviewCancelled, InterviewHeld, LyceeAvisGiven


def record_held(held_at=None, formation: str = FORMATION, mode: str | None = None) -> RecordHeld:
    return RecordHeld(LYCEE, formation, held_at or NOW - timedelta(hours=1), mode, REPORT)


def refused(file, command, campaign=OPEN, caller=LYCEE) -> RuleViolation:
    with pytest.raises(RuleViolation) as caught:
        decide(file, campaign, NOW, command, caller)
    assert caught.value.status == 409
    return caught.value


EVERY_COMMAND = [record_held(), CancelInterview(LYCEE, FORMATION, "absent"), GiveLyceeAvis(LYCEE, FORMATION, "favorable")]


# --- rule 5/6: the interview held ----------------------------------------------------------------


def test_an_interview_held_after_the_college_avis_is_recorded_with_the_avis_present():
    file = given(registered(), college_avis(), scheduled("itw-9"))
    payload = decide(file, OPEN, NOW, record_held(), LYCEE)
    assert isinstance(payload, InterviewHeld)
    assert payload.interview_id == "itw-9"
    assert payload.college_avis_present is True
    assert payload.report == REPORT


def test_an_interview_held_without_the_college_avis_is_recorded_and_flagged_missing():
    payload = decide(given(registered(), scheduled()), OPEN, NOW, record_held(), LYCEE)
    assert isinstance(payload, InterviewHeld)
    assert payload.college_avis_present is False


def test_the_held_interview_keeps_the_scheduled_mode_unless_told_otherwise():
    file = given(registered(), scheduled(mode="distanciel"))
    assert decide(file, OPEN, NOW, record_held(), LYCEE).mode == "distanciel"
    assert decide(file, OPEN, NOW, record_held(mode="presentiel"), LYCEE).mode == "presentiel"


def test_an_interview_held_needs_an_active_interview_for_that_voeu():
    for file in (
        given(registered(), scheduled(), cancelled()),
        given(registered(), college_avis(), scheduled(), held()),
    ):
        assert refused(file, record_held()).code == "no_active_interview"
    other_voeu = given(registered(), scheduled(formation=OTHER_FORMATION))
    assert refused(other_voeu, record_held()).code == "no_active_interview"


def test_an_interview_cannot_be_held_in_the_future():
    file = given(registered(), college_avis(), scheduled())
    with pytest.raises(InvalidInput) as caught:
        decide(file, OPEN, NOW, record_held(held_at=NOW + timedelta(minutes=5)), LYCEE)
    assert caught.value.status == 422
    assert [f["field"] for f in caught.value.details["fields"]] == ["held_at"]


def test_held_at_may_differ_from_the_scheduled_time():
    file = given(registered(), scheduled())
    assert decide(file, OPEN, NOW, record_held(held_at=NOW - timedelta(days=3)), LYCEE).held_at == NOW - timedelta(days=3)


def test_the_lycee_may_cancel_the_active_interview():
    payload = decide(given(registered(), scheduled("itw-3")), OPEN, NOW, CancelInterview(LYCEE, FORMATION, "absent"), LYCEE)
    assert payload == InterviewCancelled(interview_id="itw-3", lycee_uai=LYCEE, formation_code=FORMATION, reason="absent")


def test_the_lycee_cannot_cancel_an_interview_already_held():
    file = given(registered(), scheduled(), held())
    assert refused(file, CancelInterview(LYCEE, FORMATION, "absent")).code == "no_active_interview"


# --- rule 7: the lycée avis ------------------------------------------------------------------------


def test_the_lycee_avis_needs_a_held_interview_for_that_voeu():
    assert refused(given(registered(), scheduled()), GiveLyceeAvis(LYCEE, FORMATION, "favorable")).code == "no_held_interview"
    cancelled_only = given(registered(), scheduled(), cancelled())
    assert refused(cancelled_only, GiveLyceeAvis(LYCEE, FORMATION, "favorable")).code == "no_held_interview"


def test_the_lycee_avis_names_the_held_interview():
    file = given(registered(), college_avis(), scheduled("itw-5"), held("itw-5"))
    payload = decide(file, OPEN, NOW, GiveLyceeAvis(LYCEE, FORMATION, "favorable"), LYCEE)
    assert payload == LyceeAvisGiven(interview_id="itw-5", lycee_uai=LYCEE, formation_code=FORMATION, avis="favorable")


def test_the_lycee_avis_may_be_corrected_and_the_latest_counts():
    file = given(registered(), college_avis(), scheduled(), held(), lycee_avis("favorable"))
    correction = decide(file, OPEN, NOW, GiveLyceeAvis(LYCEE, FORMATION, "reserve"), LYCEE)
    assert correction.avis == "reserve"

    corrected = given(registered(), college_avis(), scheduled(), held(), lycee_avis("favorable"), lycee_avis("reserve"))
    assert [b.lycee_avis for b in voeu_bonuses(corrected, 2500)] == ["reserve"]
    assert total_bonus_points(voeu_bonuses(corrected, 2500)) == 0
    assert [a.avis for a in corrected.lycee_avis[f"{LYCEE}:{FORMATION}"]] == ["favorable", "reserve"]  # history kept

    back = given(registered(), college_avis(), scheduled(), held(), lycee_avis("reserve"), lycee_avis("favorable"))
    assert total_bonus_points(voeu_bonuses(back, 2500)) == 2500


# --- rule 8 and rule 1 -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: type(c).__name__)
def test_a_withdrawn_student_accepts_nothing_from_the_lycee(command):
    file = given(registered(), college_avis(), scheduled(), withdrawn())
    assert refused(file, command).code == "student_withdrawn"


def test_a_reinstated_student_can_be_interviewed_again():
    file = given(registered(), college_avis(), scheduled(), withdrawn(), reinstated())
    assert isinstance(decide(file, OPEN, NOW, record_held(), LYCEE), InterviewHeld)


@pytest.mark.parametrize(("campaign", "code"), [(NOT_OPENED, "campaign_not_open"), (CLOSED, "campaign_closed")])
def test_the_lycee_writes_nothing_outside_an_open_campaign(campaign, code):
    file = given(registered(), college_avis(), scheduled())
    assert refused(file, record_held(), campaign=campaign).code == code


# --- visibility ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: type(c).__name__)
def test_a_student_with_no_interview_at_the_callers_lycee_reads_as_not_found(command):
    file = given(registered(), college_avis(), scheduled(lycee=OTHER_LYCEE, formation=OTHER_LYCEE_FORMATION))
    with pytest.raises(NotFound) as caught:
        decide(file, OPEN, NOW, command, LYCEE)
    assert caught.value.status == 404


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: type(c).__name__)
def test_an_unknown_student_reads_as_not_found(command):
    with pytest.raises(NotFound):
        decide(nothing(), OPEN, NOW, command, LYCEE)


def test_a_student_whose_interview_was_cancelled_stays_visible_to_that_lycee():
    file = given(registered(), scheduled(), cancelled())
    assert refused(file, record_held()).code == "no_active_interview"


def test_visibility_is_checked_before_the_campaign_and_the_rules():
    file = given(registered(), scheduled(lycee=OTHER_LYCEE, formation=OTHER_LYCEE_FORMATION), withdrawn())
    with pytest.raises(NotFound):
        decide(file, CLOSED, NOW, record_held(), LYCEE)
