"""The letters and checklists in the student's records (SPEC §6, privacy): the fold keeps each vœu's latest letter
and each interview's latest checklist whatever the order, an erasure leaves no answer, the family's copy shows
both, and the lycée's copy of a file never holds a draft."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from services.records import family_copy
from shared.contracts.events import (
    Actor,
    Event,
    InterviewPreparationUpdated,
    InterviewScheduled,
    MotivationLetterSaved,
    Referent,
    StudentForgotten,
    StudentRegistered,
    event_from_fields,
    event_to_fields,
)
from shared.contracts.personal import ERASED, ErasedKeyring
from shared.contracts.reference import default_reference_text, parse_reference
from shared.domain.student_file import evolve, fold, ready_letter, without_draft_letters

COLLEGE, LYCEE, FORMATION, INE = "0752536Z", "0752845K", "2473121131", "123456789AB"
T0 = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
STUDENT = Actor(user_id="eleve-lea", role="eleve", uai=COLLEGE)
REFERENT = Actor(user_id="referent-dupont", role="referent", uai=COLLEGE)


def event(payload, n: int, actor: Actor = STUDENT) -> tuple[Event, int]:
    return Event(event_id=uuid4(), occurred_at=T0 + timedelta(hours=n), campaign="2027", student_ine=INE,
                 actor=actor, payload=payload), n


def history() -> list[tuple[Event, int]]:
    referent = Referent(user_id="referent-dupont", name="Claire Dupont", email="claire.dupont@ac-paris.fr")
    return [
        event(StudentRegistered(college_uai=COLLEGE, last_name="Martin", first_name="Léa", class_name="3e B",
                                referent=referent), 1, REFERENT),
        event(InterviewScheduled(interview_id="itw-1", lycee_uai=LYCEE, formation_code=FORMATION,
                                 scheduled_at=T0 + timedelta(days=10), mode="distanciel",
                                 remote_equipment_ready=True), 2, REFERENT),
        event(MotivationLetterSaved(lycee_uai=LYCEE, formation_code=FORMATION,
                                    answers={"pourquoi": "Premier jet."}, ready=False), 3),
        event(InterviewPreparationUpdated(interview_id="itw-1", itinerary_ready=True, letter_printed=False,
                                          materials_ready=True, equipment_ready=False), 4),
        event(MotivationLetterSaved(lycee_uai=LYCEE, formation_code=FORMATION,
                                    answers={"pourquoi": "J'aime conseiller.", "trajet": "Métro 8."},
                                    ready=True), 5),
        event(InterviewPreparationUpdated(interview_id="itw-1", itinerary_ready=True, letter_printed=True,
                                          materials_ready=True, equipment_ready=True), 6, REFERENT),
    ]


def test_the_fold_keeps_the_latest_letter_and_checklist_in_any_order():
    events = history()
    in_order = fold("2027", INE, events)
    backwards = fold("2027", INE, list(reversed(events)))
    twice = fold("2027", INE, events + events)
    for file in (in_order, backwards, twice):
        letter = file.letter_for(LYCEE, FORMATION)
        assert (letter.answers, letter.ready, letter.version) == ({"pourquoi": "J'aime conseiller.", "trajet": "Métro 8."}, True, 5)
        checklist = file.preparations["itw-1"]
        assert (checklist.letter_printed, checklist.equipment_ready, checklist.updated_by_role) == (True, True, "referent")
        assert checklist.ready("distanciel") and not checklist.model_copy(update={"equipment_ready": False}).ready("distanciel")
    assert in_order == backwards == twice


def test_the_lycees_copy_holds_a_letter_only_once_ready():
    events = history()
    draft = fold("2027", INE, events[:4])
    assert ready_letter(draft, LYCEE, FORMATION) is None
    assert without_draft_letters(draft).letter_for(LYCEE, FORMATION).answers == {}
    ready = fold("2027", INE, events)
    assert without_draft_letters(ready).letter_for(LYCEE, FORMATION).answers == ready_letter(ready, LYCEE, FORMATION)
    # A draft's version is kept: a ready letter of an older version arriving later does not come back.
    trimmed = without_draft_letters(evolve(ready, event(MotivationLetterSaved(
        lycee_uai=LYCEE, formation_code=FORMATION, answers={"pourquoi": "Je recommence."}, ready=False), 7)[0], 7))
    assert ready_letter(evolve(trimmed, events[4][0], 5), LYCEE, FORMATION) is None


def test_the_answers_are_sealed_and_read_back_empty_once_the_key_is_gone():
    class OneKey:
        def seal(self, campaign, ine, aad, plaintext):
            return "k:" + plaintext.decode()

        def open(self, campaign, ine, aad, sealed):
            return sealed.removeprefix("k:").encode()

    saved, _ = history()[4]
    fields = event_to_fields(saved, OneKey())
    assert "answers" not in json.loads(fields["payload"]) and "conseiller" in fields["sealed"]
    assert event_from_fields(fields, OneKey()) == saved
    erased = event_from_fields(fields, ErasedKeyring())
    assert erased.payload.answers == {} and erased.payload.ready is True


def test_an_erased_file_keeps_no_answer():
    events = history()
    forgotten = event(StudentForgotten(reason="Demande de la famille"), 7, Actor(user_id="dpo", role="rectorat"))
    for order in (events + [forgotten], [forgotten] + events):
        file = fold("2027", INE, order)
        assert file.letter_for(LYCEE, FORMATION).answers == {"pourquoi": ERASED, "trajet": ERASED}
        assert "conseiller" not in file.model_dump_json()


def report_of(events: list[tuple[Event, int]]) -> dict:
    """What timeline.student_report answers, for these events (the family copy's input)."""
    timeline = [
        {
            "event_id": str(e.event_id), "event_type": e.event_type, "occurred_at": e.occurred_at.isoformat(),
            "recorded_at": e.occurred_at.isoformat(), "actor": e.actor.model_dump(mode="json"),
            "payload": e.payload.model_dump(mode="json"), "student_version": n, "label": e.event_type,
            "details": [], "bonus_after": {"total_bonus_points": 0},
        }
        for e, n in events
    ]
    return {"ine": INE, "campaign": "2027", "timeline": timeline, "voeux": [], "withdrawn": False,
            "total_bonus_points": 0, "campaign_bonus_points": 2500}


def test_the_family_copy_shows_each_letter_and_checklist():
    reference = parse_reference(default_reference_text())
    content = family_copy.build(report_of(history()), [], reference, generated_at=T0, generated_by="dpo")
    [letter] = content["letters"]
    assert letter["answers"] == [("Pourquoi ai-je choisi cette formation ?", "J'aime conseiller."),
                                 ("Comment vais-je aller au lycée ?", "Métro 8.")]
    assert letter["state"].startswith("prête")
    [interview] = content["interviews"]
    assert ("La salle et le matériel du collège sont prêts (entretien à distance)", True) in interview["preparation"]
    page = html.unescape(family_copy.render(content))
    assert "Lettres de motivation guidées" in page and "J'aime conseiller." in page
    assert "Préparation de l'entretien" in page and "Fait : La salle et le matériel du collège" in page
