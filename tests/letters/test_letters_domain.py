"""The rules of the letter and the checklist, pure (services/registration/domain.py): given a student's file,
when the command, then the event or the refusal — no I/O, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.registration import domain
from shared.contracts.events import (
    Actor,
    Event,
    InterviewCancelled,
    InterviewHeld,
    InterviewPreparationUpdated,
    InterviewScheduled,
    MotivationLetterSaved,
    Referent,
    Report,
    StudentRegistered,
    StudentWithdrawn,
)
from shared.contracts.letter import default_letter_template
from shared.domain.errors import InvalidInput, NotFound, RuleViolation
from shared.domain.student_file import CampaignFile, fold

COLLEGE, LYCEE, FORMATION, INE = "0752536Z", "0752845K", "2473121131", "123456789AB"
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
CAMPAIGN = CampaignFile(campaign="2027", opened=True, bonus_points=2500)
TEMPLATE = default_letter_template()
ACTOR = Actor(user_id="referent-dupont", role="referent", uai=COLLEGE)
REGISTERED = StudentRegistered(college_uai=COLLEGE, last_name="Martin", first_name="Léa", class_name="3e B",
                               referent=Referent(user_id="r", name="Claire Dupont", email="c.dupont@ac-paris.fr"))


def scheduled(mode: str = "presentiel") -> InterviewScheduled:
    return InterviewScheduled(interview_id="itw-1", lycee_uai=LYCEE, formation_code=FORMATION,
                              scheduled_at=NOW + timedelta(days=5), mode=mode, remote_equipment_ready=True)


HELD = InterviewHeld(interview_id="itw-1", lycee_uai=LYCEE, formation_code=FORMATION, held_at=NOW, mode="presentiel",
                     college_avis_present=False, report=Report(motivation="fragile", chances_of_success="fragile",
                                                               advice="Visiter l'atelier."))
CANCELLED = InterviewCancelled(interview_id="itw-1", lycee_uai=LYCEE, formation_code=FORMATION, reason="reporte")


def given(*payloads):
    events = [(Event(event_id=uuid4(), occurred_at=NOW, campaign="2027", student_ine=INE, actor=ACTOR, payload=p), n)
              for n, p in enumerate(payloads, start=1)]
    return fold("2027", INE, events)


QUESTIONS = tuple(q.id for q in TEMPLATE.questions)


def save(ready: bool = False, **answers: str) -> domain.SaveLetter:
    answers = answers or {"pourquoi": "J'aime vendre."}
    return domain.SaveLetter(LYCEE, FORMATION, TEMPLATE.version, answers, ready, QUESTIONS)


def tick(interview_id: str = "itw-1", equipment: bool | None = True) -> domain.UpdatePreparation:
    return domain.UpdatePreparation(interview_id, True, False, True, equipment)


def decide(file, command):
    return domain.decide(file, CAMPAIGN, NOW, command, COLLEGE)


def test_a_letter_for_the_voeus_scheduled_interview_is_saved_as_asked():
    event = decide(given(REGISTERED, scheduled()), save(ready=False, pourquoi="J'aime vendre."))
    assert event == MotivationLetterSaved(lycee_uai=LYCEE, formation_code=FORMATION, template_version=1,
                                          answers={"pourquoi": "J'aime vendre."}, ready=False)


@pytest.mark.parametrize(
    ("history", "code"),
    [((REGISTERED,), "no_interview_for_voeu"), ((REGISTERED, scheduled(), CANCELLED), "no_interview_for_voeu"),
     ((REGISTERED, scheduled(), HELD), "letter_after_interview"),
     ((REGISTERED, scheduled(), StudentWithdrawn(reason="Déménagement")), "student_withdrawn")],
    ids=["no interview", "cancelled", "held", "withdrawn"],
)
def test_a_letter_is_refused_without_the_voeus_interview_or_once_it_is_held(history, code):
    with pytest.raises(RuleViolation) as refused:
        decide(given(*history), save())
    assert refused.value.code == code


def test_a_letter_of_a_student_of_another_college_or_unregistered_reads_as_unknown():
    with pytest.raises(NotFound):
        domain.decide(given(REGISTERED, scheduled()), CAMPAIGN, NOW, save(), "0751790N")
    with pytest.raises(NotFound):
        decide(given(), save())


def test_a_closed_campaign_takes_no_letter():
    closed = CampaignFile(campaign="2027", opened=True, bonus_points=2500, closes_at=NOW - timedelta(days=1))
    with pytest.raises(RuleViolation) as refused:
        domain.decide(given(REGISTERED, scheduled()), closed, NOW, save(), COLLEGE)
    assert refused.value.code == "campaign_closed"


@pytest.mark.parametrize(
    ("answers", "code"), [({"inconnue": "x"}, "unknown_question"), ({"trajet": "x" * 301}, "answer_too_long")],
)
def test_check_letter_holds_the_answers_to_the_template(answers, code):
    with pytest.raises(InvalidInput) as refused:
        domain.check_letter(TEMPLATE, answers)
    assert refused.value.code == code
    domain.check_letter(TEMPLATE, {q.id: "x" * q.max_length for q in TEMPLATE.questions})  # at the limits


def test_a_letter_marked_ready_answers_every_question():
    file = given(REGISTERED, scheduled())
    with pytest.raises(RuleViolation) as refused:
        decide(file, save(ready=True, pourquoi="Seulement ceci."))
    assert refused.value.code == "letter_incomplete"
    full = {q: "Une réponse." for q in QUESTIONS}
    assert decide(file, save(ready=True, **full)).ready is True


def test_the_checklist_of_a_scheduled_interview_keeps_the_equipment_only_at_a_distance():
    presentiel = decide(given(REGISTERED, scheduled()), tick(equipment=True))
    assert presentiel == InterviewPreparationUpdated(interview_id="itw-1", itinerary_ready=True, letter_printed=False,
                                                     materials_ready=True, equipment_ready=None)
    remote = decide(given(REGISTERED, scheduled("distanciel")), tick(equipment=None))
    assert remote.equipment_ready is False


def test_the_checklist_of_an_unknown_or_past_interview_is_refused():
    with pytest.raises(NotFound) as unknown:
        decide(given(REGISTERED, scheduled()), tick("itw-2"))
    assert unknown.value.code == "interview_not_found"
    for history in ((REGISTERED, scheduled(), HELD), (REGISTERED, scheduled(), CANCELLED)):
        with pytest.raises(RuleViolation) as refused:
            decide(given(*history), tick())
        assert refused.value.code == "interview_not_scheduled"
