"""Past events for the domain tests: a student's file built by folding realistic events, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from shared.contracts.events import (
    Actor,
    CollegeAvisGiven,
    Event,
    InterviewCancelled,
    InterviewHeld,
    InterviewScheduled,
    LyceeAvisGiven,
    Payload,
    Referent,
    Report,
    StudentRegistered,
    StudentReinstated,
    StudentWithdrawn,
)
from shared.domain.student_file import CampaignFile, StudentFile, fold

CAMPAIGN = "2027"
INE = "123456789AB"
COLLEGE = "0752547L"  # Collège Voltaire
OTHER_COLLEGE = "0751528D"  # Collège Pierre Alviset
LYCEE = "0750502N"  # LP Théophile Gautier
FORMATION = "2473121131"  # 2nde pro Métiers de la relation client
OTHER_FORMATION = "2473121332"  # offered by the same lycée
OTHER_LYCEE = "0750785W"  # LP Marcel Deprez
OTHER_LYCEE_FORMATION = "2472550731"

NOW = datetime(2027, 3, 15, 10, 0, tzinfo=UTC)
OPEN = CampaignFile(campaign=CAMPAIGN, opened=True, bonus_points=2500)
NOT_OPENED = CampaignFile(campaign=CAMPAIGN)
CLOSED = CampaignFile(campaign=CAMPAIGN, opened=True, bonus_points=2500, closes_at=NOW - timedelta(minutes=1))

REFERENT = Referent(user_id="referent-dupont", name="Claire Dupont", email="claire.dupont@ac-paris.fr")
NEW_REFERENT = Referent(user_id="referent-bernard", name="Paul Bernard", email="paul.bernard@ac-paris.fr")
REPORT = Report(motivation="tres_satisfaisante", chances_of_success="satisfaisante", advice="Visiter l'atelier.")

_ACTORS = {
    "college": Actor(user_id="principal-voltaire", role="principal", uai=COLLEGE),
    "lycee": Actor(user_id="staff-gautier", role="lycee_staff", uai=LYCEE),
    "proviseur": Actor(user_id="proviseur-gautier", role="proviseur", uai=LYCEE),
}


def registered(college: str = COLLEGE) -> StudentRegistered:
    return StudentRegistered(
        college_uai=college, last_name="Martin", first_name="Léa", class_name="3e B", referent=REFERENT
    )


def college_avis(avis: str = "favorable") -> CollegeAvisGiven:
    return CollegeAvisGiven(college_uai=COLLEGE, avis=avis, comment="Élève motivée et impliquée.")


def scheduled(
    interview_id: str = "itw-1", lycee: str = LYCEE, formation: str = FORMATION, mode: str = "presentiel"
) -> InterviewScheduled:
    return InterviewScheduled(
        interview_id=interview_id,
        lycee_uai=lycee,
        formation_code=formation,
        scheduled_at=NOW - timedelta(days=1),
        mode=mode,
        remote_equipment_ready=mode == "distanciel",
    )


def cancelled(interview_id: str = "itw-1", lycee: str = LYCEE, formation: str = FORMATION) -> InterviewCancelled:
    return InterviewCancelled(interview_id=interview_id, lycee_uai=lycee, formation_code=formation, reason="reporte")


def held(
    interview_id: str = "itw-1", lycee: str = LYCEE, formation: str = FORMATION, college_avis_present: bool = True
) -> InterviewHeld:
    return InterviewHeld(
        interview_id=interview_id,
        lycee_uai=lycee,
        formation_code=formation,
        held_at=NOW - timedelta(hours=20),
        mode="presentiel",
        college_avis_present=college_avis_present,
        report=REPORT,
    )


def lycee_avis(
    avis: str, interview_id: str = "itw-1", lycee: str = LYCEE, formation: str = FORMATION
) -> LyceeAvisGiven:
    return LyceeAvisGiven(interview_id=interview_id, lycee_uai=lycee, formation_code=formation, avis=avis)


def withdrawn() -> StudentWithdrawn:
    return StudentWithdrawn(reason="Déménagement hors académie")


def reinstated() -> StudentReinstated:
    return StudentReinstated(reason="Retour dans l'académie")


def _actor(payload: Payload) -> Actor:
    if isinstance(payload, LyceeAvisGiven):
        return _ACTORS["proviseur"]
    if isinstance(payload, InterviewHeld):
        return _ACTORS["lycee"]
    return _ACTORS["college"]


def given(*payloads: Payload, ine: str = INE) -> StudentFile:
    """The student's file after these events, in this order (student versions 1, 2, ...)."""
    events = [
        (
            Event(
                event_id=uuid4(),
                occurred_at=NOW - timedelta(days=30) + timedelta(minutes=n),
                campaign=CAMPAIGN,
                student_ine=ine,
                actor=_actor(p),
                payload=p,
            ),
            n + 1,
        )
        for n, p in enumerate(payloads)
    ]
    return fold(CAMPAIGN, ine, events)


def nothing() -> StudentFile:
    """A student the log knows nothing about."""
    return given()
