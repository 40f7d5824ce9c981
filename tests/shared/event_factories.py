"""The tests' one set of event builders: a realistic payload per event type (every builder's arguments say
what may vary), an envelope around it (`make_event`), the actors who write each, and one sample of every type.
The shared and records tests build events with it; tests/services/histories.py folds them into a file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from shared.contracts.events import (
    Actor,
    CampaignCalendarSet,
    CampaignOpened,
    CollegeAvisGiven,
    Event,
    InterviewCancelled,
    InterviewHeld,
    InterviewReportCorrected,
    InterviewRescheduled,
    InterviewSlotClosed,
    InterviewSlotOpened,
    InterviewScheduled,
    InterviewPreparationUpdated,
    LyceeAvisGiven,
    MotivationLetterSaved,
    Payload,
    Referent,
    ReferentReassigned,
    Report,
    StudentAccessIssued,
    StudentForgotten,
    StudentRegistered,
    StudentReinstated,
    StudentWithdrawn,
)
from shared.runtime.settings import campaign_in_force, paris_today

# The campaign whose rentrée is to come, as the services count it by default: "2027" until 1 September 2027 in
# Paris, then the next one — scoring refuses to open a past rentrée, so the tests pass on any day. Their dates
# follow it (YEAR, T0).
CAMPAIGN = campaign_in_force(paris_today())
YEAR = int(CAMPAIGN)  # a test's dates are in the campaign's year: datetime(YEAR, 3, 2) was datetime(2027, 3, 2)
COLLEGE = "0752536Z"  # Collège Voltaire
LYCEE = "0752845K"  # LP Théophile Gautier
FORMATION = "2473121131"  # 2nde pro Métiers de la relation client
INE = "123456789AB"

PRINCIPAL = Actor(user_id="principal-voltaire", role="principal", uai=COLLEGE)
REFERENT_ACTOR = Actor(user_id="referent-dupont", role="referent", uai=COLLEGE)
LYCEE_STAFF = Actor(user_id="staff-gautier", role="lycee_staff", uai=LYCEE)
PROVISEUR = Actor(user_id="proviseur-gautier", role="proviseur", uai=LYCEE)
RECTORAT = Actor(user_id="rectorat-dsden", role="rectorat", uai=None)

REFERENT = Referent(user_id="referent-dupont", name="Claire Dupont", email="claire.dupont@ac-paris.fr")
NEW_REFERENT = Referent(user_id="referent-bernard", name="Paul Bernard", email="paul.bernard@ac-paris.fr")
REPORT = Report(
    motivation="tres_satisfaisante", chances_of_success="satisfaisante", advice="Visiter l'atelier lors des portes ouvertes."
)
INTERVIEW_ID = "itw-0001"
T0 = datetime(YEAR, 3, 2, 9, 0, tzinfo=UTC)


def registered(college: str = COLLEGE) -> StudentRegistered:
    return StudentRegistered(
        college_uai=college, last_name="Martin", first_name="Léa", class_name="3e B", referent=REFERENT
    )


def college_avis(avis: str = "favorable") -> CollegeAvisGiven:
    return CollegeAvisGiven(college_uai=COLLEGE, avis=avis, comment="Élève motivée et impliquée dans son projet.")


def scheduled(
    interview_id: str = INTERVIEW_ID,
    lycee: str = LYCEE,
    formation: str = FORMATION,
    mode: str = "presentiel",
    at: datetime = T0 + timedelta(days=10),
) -> InterviewScheduled:
    return InterviewScheduled(
        interview_id=interview_id,
        lycee_uai=lycee,
        formation_code=formation,
        scheduled_at=at,
        mode=mode,
        remote_equipment_ready=mode == "distanciel",
    )


def cancelled(interview_id: str = INTERVIEW_ID, lycee: str = LYCEE, formation: str = FORMATION) -> InterviewCancelled:
    return InterviewCancelled(interview_id=interview_id, lycee_uai=lycee, formation_code=formation, reason="reporte")


def held(
    interview_id: str = INTERVIEW_ID,
    lycee: str = LYCEE,
    formation: str = FORMATION,
    college_avis_present: bool = True,
    at: datetime = T0 + timedelta(days=10, hours=1),
) -> InterviewHeld:
    return InterviewHeld(
        interview_id=interview_id,
        lycee_uai=lycee,
        formation_code=formation,
        held_at=at,
        mode="presentiel",
        college_avis_present=college_avis_present,
        report=REPORT,
    )


def lycee_avis(
    avis: str = "favorable", interview_id: str = INTERVIEW_ID, lycee: str = LYCEE, formation: str = FORMATION
) -> LyceeAvisGiven:
    return LyceeAvisGiven(interview_id=interview_id, lycee_uai=lycee, formation_code=formation, avis=avis)


def withdrawn() -> StudentWithdrawn:
    return StudentWithdrawn(reason="Déménagement hors académie")


def reinstated() -> StudentReinstated:
    return StudentReinstated(reason="Retour dans l'académie")


def letter_saved(ready: bool = False) -> MotivationLetterSaved:
    return MotivationLetterSaved(
        lycee_uai=LYCEE,
        formation_code=FORMATION,
        answers={"projet": "Je veux travailler au contact des clients.", "atouts": "Je suis patiente."},
        ready=ready,
    )


def preparation(interview_id: str = INTERVIEW_ID) -> InterviewPreparationUpdated:
    return InterviewPreparationUpdated(
        interview_id=interview_id, itinerary_ready=True, letter_printed=False, materials_ready=False
    )


SLOT_ID = "slot-0001"


def slot_opened(slot_id: str = SLOT_ID, capacity: int = 5) -> InterviewSlotOpened:
    return InterviewSlotOpened(
        slot_id=slot_id, lycee_uai=LYCEE, formation_code=FORMATION, starts_at=datetime(2027, 3, 10, 13, 0, tzinfo=UTC),
        duration_minutes=30, capacity=capacity, mode="presentiel", place="Salle B12",
    )


Step = tuple[str, Payload, Actor]  # the service that writes the event, its payload, who acts


def journey(lycee_avis_given: str | None = "favorable") -> list[Step]:
    """A student's campaign as the services write it: registered, the collège avis and an interview scheduled
    (registration, by the principal), the interview held (evaluation, its staff), then the lycée avis (its
    proviseur), left out when None."""
    steps: list[Step] = [
        ("registration", registered(), PRINCIPAL),
        ("registration", college_avis(), PRINCIPAL),
        ("registration", scheduled(), PRINCIPAL),
        ("evaluation", held(), LYCEE_STAFF),
    ]
    if lycee_avis_given:
        steps.append(("evaluation", lycee_avis(lycee_avis_given), PROVISEUR))
    return steps


def sample_payloads() -> dict[str, Payload]:
    """One valid payload of every event type of SPEC §3, keyed by wire name."""
    payloads: list[Payload] = [
        CampaignOpened(bonus_points=2500, closes_at=datetime(2027, 6, 1, 22, 0, tzinfo=UTC)),
        CampaignCalendarSet(
            registrations_until=datetime(2027, 2, 1, 17, 0, tzinfo=UTC), interviews_from=datetime(2027, 3, 1, 7, 0, tzinfo=UTC),
            interviews_until=datetime(2027, 4, 15, 16, 0, tzinfo=UTC), lycee_avis_until=datetime(2027, 5, 1, 16, 0, tzinfo=UTC),
        ),
        registered(),
        ReferentReassigned(referent=NEW_REFERENT),
        scheduled(),
        cancelled(),
        college_avis(),
        withdrawn(),
        reinstated(),
        held(),
        lycee_avis(),
        StudentForgotten(reason="Demande de la famille du 12 novembre"),
        StudentAccessIssued(issued_by="referent-dupont", expires_at=datetime(2027, 5, 1, 22, 0, tzinfo=UTC)),
        InterviewRescheduled(
            interview_id=INTERVIEW_ID, lycee_uai=LYCEE, formation_code=FORMATION,
            scheduled_at=datetime(2027, 3, 12, 14, 0, tzinfo=UTC), slot_id=None, mode="presentiel",
        ),
        slot_opened(),
        InterviewSlotClosed(slot_id=SLOT_ID, lycee_uai=LYCEE, formation_code=FORMATION),
        InterviewReportCorrected(interview_id=INTERVIEW_ID, lycee_uai=LYCEE, formation_code=FORMATION, report=REPORT),
        letter_saved(),
        preparation(),
    ]
    return {p.EVENT_TYPE: p for p in payloads}


ACTOR_FOR = {
    "CampaignOpened": RECTORAT,
    "CampaignCalendarSet": RECTORAT,
    "InterviewHeld": LYCEE_STAFF,
    "LyceeAvisGiven": PROVISEUR,
    "InterviewScheduled": REFERENT_ACTOR,
    "StudentForgotten": RECTORAT,
    "StudentAccessIssued": REFERENT_ACTOR,
}


def make_event(
    payload: Payload,
    *,
    ine: str | None = INE,
    campaign: str = CAMPAIGN,
    event_id: UUID | None = None,
    occurred_at: datetime | None = None,
    actor: Actor | None = None,
) -> Event:
    if isinstance(payload, (CampaignOpened, CampaignCalendarSet)):
        ine = None
    return Event(
        event_id=event_id or uuid4(),
        occurred_at=occurred_at or datetime.now(UTC),
        campaign=campaign,
        student_ine=ine,
        actor=actor or ACTOR_FOR.get(payload.EVENT_TYPE, PRINCIPAL),
        payload=payload,
    )


def ine_number(n: int) -> str:
    """A distinct, valid INE (format `^[0-9]{9}[A-Z]{2}$`) for each n."""
    return f"{n:09d}AB"
