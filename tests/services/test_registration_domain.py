"""The collège's decisions (SPEC §3.1): given past events, when a command, then an event or a refusal. No I/O."""

from __future__ import annotations

from datetime import timedelta

import pytest

from histories import (
    CLOSED,
    COLLEGE,
    FORMATION,
    LYCEE,
    NEW_REFERENT,
    NOT_OPENED,
    NOW,
    OPEN,
    OTHER_COLLEGE,
    OTHER_FORMATION,
    OTHER_LYCEE,
    OTHER_LYCEE_FORMATION,
    REFERENT,
    cancelled,
    college_avis,
    given,
    held,
    nothing,
    registered,
    reinstated,
    scheduled,
    withdrawn,
)
from services.registration.domain import (
    CancelInterview,
    GiveCollegeAvis,
    ReassignReferent,
    Register,
    Reinstate,
    ScheduleInterview,
    Withdraw,
    decide,
)
from shared.domain.errors import InvalidInput, NotFound, RuleViolation
from shared.contracts.events import (
    CollegeAvisGiven,
    InterviewCancelled,
    InterviewScheduled,
    ReferentReassigned,
    StudentRegistered,
    StudentReinstated,
    StudentWithdrawn,
)

REGISTER = Register(COLLEGE, "Martin", "Léa", "3e B", REFERENT)


def schedule(lycee: str = LYCEE, formation: str = FORMATION, mode: str = "presentiel", equipment: bool = False,
             room: str | None = None):
    return ScheduleInterview(
        interview_id="itw-new",
        lycee_uai=lycee,
        formation_code=formation,
        scheduled_at=NOW + timedelta(days=7),
        mode=mode,
        remote_equipment_ready=equipment,
        room=room,
    )


def avis(level: str = "favorable") -> GiveCollegeAvis:
    return GiveCollegeAvis(COLLEGE, level, "Élève motivée, projet réfléchi.")


def refused(file, command, campaign=OPEN, caller=COLLEGE) -> RuleViolation:
    with pytest.raises(RuleViolation) as caught:
        decide(file, campaign, NOW, command, caller)
    assert caught.value.status == 409
    assert caught.value.message  # a French sentence for the user
    return caught.value


EVERY_COMMAND_BUT_REINSTATEMENT = [
    ReassignReferent(NEW_REFERENT),
    schedule(),
    CancelInterview(LYCEE, FORMATION, "desistement"),
    avis(),
    Withdraw("encore"),
]


# --- rule 1: the campaign must be open ------------------------------------------------------


def test_registering_is_refused_while_the_campaign_is_not_open():
    assert refused(nothing(), REGISTER, campaign=NOT_OPENED).code == "campaign_not_open"


def test_registering_is_refused_once_the_campaign_has_closed():
    assert refused(nothing(), REGISTER, campaign=CLOSED).code == "campaign_closed"


@pytest.mark.parametrize("command", EVERY_COMMAND_BUT_REINSTATEMENT, ids=lambda c: type(c).__name__)
def test_every_write_about_a_registered_student_is_refused_once_the_campaign_has_closed(command):
    assert refused(given(registered(), scheduled()), command, campaign=CLOSED).code == "campaign_closed"


def test_the_campaign_is_still_open_just_before_it_closes():
    just_open = CLOSED.model_copy(update={"closes_at": NOW + timedelta(seconds=1)})
    assert isinstance(decide(nothing(), just_open, NOW, REGISTER, COLLEGE), StudentRegistered)


# --- rule 2: registered once ----------------------------------------------------------------


def test_registering_a_new_student_records_who_they_are_and_their_referent():
    payload = decide(nothing(), OPEN, NOW, REGISTER, COLLEGE)
    assert payload == StudentRegistered(
        college_uai=COLLEGE, last_name="Martin", first_name="Léa", class_name="3e B", referent=REFERENT
    )


def test_a_student_is_registered_only_once_per_campaign():
    assert refused(given(registered()), REGISTER).code == "already_registered"


def test_a_student_registered_by_another_college_cannot_be_registered_again():
    other_register = Register(OTHER_COLLEGE, "Martin", "Léa", "3e B", REFERENT)
    assert refused(given(registered()), other_register, caller=OTHER_COLLEGE).code == "already_registered"


# --- rule 3: one referent at a time ---------------------------------------------------------


def test_reassigning_the_referent_names_the_new_one():
    payload = decide(given(registered()), OPEN, NOW, ReassignReferent(NEW_REFERENT), COLLEGE)
    assert payload == ReferentReassigned(referent=NEW_REFERENT)


# --- rule 4: interviews -----------------------------------------------------------------------


def test_scheduling_an_interview_records_the_voeu_and_the_id_made_by_the_service():
    payload = decide(given(registered()), OPEN, NOW, schedule(), COLLEGE)
    assert isinstance(payload, InterviewScheduled)
    assert (payload.interview_id, payload.lycee_uai, payload.formation_code) == ("itw-new", LYCEE, FORMATION)
    assert payload.mode == "presentiel"


def test_an_interview_cannot_be_scheduled_for_a_student_who_is_not_registered():
    with pytest.raises(NotFound):
        decide(nothing(), OPEN, NOW, schedule(), COLLEGE)


def test_an_interview_cannot_be_scheduled_for_a_withdrawn_student():
    assert refused(given(registered(), withdrawn()), schedule()).code == "student_withdrawn"


def test_only_one_active_interview_per_voeu():
    assert refused(given(registered(), scheduled()), schedule()).code == "interview_already_scheduled"


def test_another_voeu_may_have_its_own_interview_at_the_same_time():
    file = given(registered(), scheduled())
    assert isinstance(decide(file, OPEN, NOW, schedule(formation=OTHER_FORMATION), COLLEGE), InterviewScheduled)
    other_lycee = schedule(lycee=OTHER_LYCEE, formation=OTHER_LYCEE_FORMATION)
    assert isinstance(decide(file, OPEN, NOW, other_lycee, COLLEGE), InterviewScheduled)


def test_a_cancelled_interview_may_be_scheduled_again_for_the_same_voeu():
    file = given(registered(), scheduled(), cancelled())
    assert isinstance(decide(file, OPEN, NOW, schedule(), COLLEGE), InterviewScheduled)


def test_a_voeu_whose_interview_was_held_gets_no_second_interview():
    file = given(registered(), college_avis(), scheduled(), held())
    assert refused(file, schedule()).code == "interview_already_held"


def test_a_distanciel_interview_needs_the_equipment_checked_by_the_college():
    file = given(registered())
    assert refused(file, schedule(mode="distanciel", equipment=False)).code == "remote_equipment_missing"
    payload = decide(file, OPEN, NOW, schedule(mode="distanciel", equipment=True, room="Salle 204"), COLLEGE)
    assert isinstance(payload, InterviewScheduled) and payload.remote_equipment_ready is True
    assert payload.room == "Salle 204"


def test_a_distanciel_free_time_needs_the_room_and_a_presentiel_one_takes_none():
    file = given(registered())
    for command, code in ((schedule(mode="distanciel", equipment=True), "room_missing"),
                          (schedule(mode="presentiel", room="Salle 204"), "room_not_for_presentiel")):
        with pytest.raises(InvalidInput) as caught:
            decide(file, OPEN, NOW, command, COLLEGE)
        assert (caught.value.status, caught.value.code) == (422, code) and "salle" in caught.value.message
    assert decide(file, OPEN, NOW, schedule(), COLLEGE).room is None


def test_cancelling_names_the_active_interview_of_the_voeu():
    file = given(registered(), scheduled("itw-7"))
    payload = decide(file, OPEN, NOW, CancelInterview(LYCEE, FORMATION, "reporte"), COLLEGE)
    assert payload == InterviewCancelled(interview_id="itw-7", lycee_uai=LYCEE, formation_code=FORMATION, reason="reporte")


def test_cancelling_needs_an_active_interview_for_the_voeu():
    for file in (given(registered()), given(registered(), scheduled(), cancelled())):
        assert refused(file, CancelInterview(LYCEE, FORMATION, "reporte")).code == "no_active_interview"


# --- rule 5: the collège avis comes before the interviews --------------------------------------


def test_the_college_avis_may_be_given_before_any_interview():
    payload = decide(given(registered()), OPEN, NOW, avis("assez_favorable"), COLLEGE)
    assert payload == CollegeAvisGiven(college_uai=COLLEGE, avis="assez_favorable", comment="Élève motivée, projet réfléchi.")


def test_the_college_avis_may_be_corrected_while_no_interview_was_held():
    file = given(registered(), college_avis("reserve"), scheduled())
    assert decide(file, OPEN, NOW, avis("favorable"), COLLEGE).avis == "favorable"


def test_the_college_avis_may_still_be_given_after_a_cancelled_interview():
    file = given(registered(), scheduled(), cancelled())
    assert isinstance(decide(file, OPEN, NOW, avis(), COLLEGE), CollegeAvisGiven)


def test_the_college_avis_is_refused_once_an_interview_was_held():
    file = given(registered(), college_avis("reserve"), scheduled(), held())
    assert refused(file, avis("favorable")).code == "college_avis_after_interview"


def test_a_missing_college_avis_cannot_be_given_after_the_interview_was_held():
    file = given(registered(), scheduled(), held(college_avis_present=False))
    assert refused(file, avis()).code == "college_avis_after_interview"


# --- rule 8: a withdrawn student accepts nothing but reinstatement --------------------------------


@pytest.mark.parametrize("command", EVERY_COMMAND_BUT_REINSTATEMENT, ids=lambda c: type(c).__name__)
def test_a_withdrawn_student_accepts_no_event_but_reinstatement(command):
    file = given(registered(), scheduled(), withdrawn())
    assert refused(file, command).code == "student_withdrawn"


def test_a_withdrawn_student_may_be_reinstated_and_then_accepts_writes_again():
    file = given(registered(), withdrawn())
    assert decide(file, OPEN, NOW, Reinstate("Retour"), COLLEGE) == StudentReinstated(reason="Retour")
    back = given(registered(), withdrawn(), reinstated())
    assert isinstance(decide(back, OPEN, NOW, schedule(), COLLEGE), InterviewScheduled)


def test_withdrawing_an_active_student_records_the_reason():
    assert decide(given(registered()), OPEN, NOW, Withdraw("Abandon"), COLLEGE) == StudentWithdrawn(reason="Abandon")


def test_only_a_withdrawn_student_can_be_reinstated():
    assert refused(given(registered()), Reinstate("Retour")).code == "not_withdrawn"


def test_reinstatement_also_needs_the_campaign_open():
    assert refused(given(registered(), withdrawn()), Reinstate("Retour"), campaign=CLOSED).code == "campaign_closed"


# --- visibility: another collège's student reads as unknown ---------------------------------------


@pytest.mark.parametrize(
    "command", [*EVERY_COMMAND_BUT_REINSTATEMENT, Reinstate("Retour")], ids=lambda c: type(c).__name__
)
def test_another_colleges_student_reads_as_not_found(command):
    with pytest.raises(NotFound) as caught:
        decide(given(registered(), withdrawn()), OPEN, NOW, command, OTHER_COLLEGE)
    assert caught.value.status == 404 and caught.value.code == "student_not_found"


def test_visibility_is_checked_before_the_rules():
    """SPEC §5: 404 before 409, so that a refusal does not reveal the student's state."""
    with pytest.raises(NotFound):
        decide(given(registered(), withdrawn()), CLOSED, NOW, schedule(), OTHER_COLLEGE)
    with pytest.raises(NotFound):
        decide(nothing(), NOT_OPENED, NOW, avis(), COLLEGE)
