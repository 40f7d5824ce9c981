"""What the notifier owes, pure (SPEC §7 "Reminders by e-mail"): no I/O, no clock (`now` is an argument).

Two kinds of notification:
- on an event: the référent's convocation when an interview is booked, moved or cancelled
  (`convocations(event, before, after)`, the student's file folded before and up to the event's version);
- in time: the principal's reminder when the student's first interview is 3 days away and the collège avis
  is missing, the proviseur's when an interview was held 5 days ago and has no avis
  (`reminders(file, now)`: what is due now, and the next moment something may become due).

Each notification has a key that names it once and for all: the ledger keeps what was sent under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from shared.contracts.events import Event, InterviewCancelled, InterviewRescheduled, InterviewScheduled
from shared.contracts.personal import ERASED
from shared.domain.student_file import Interview, StudentFile, fold_campaign, voeu_key

Kind = Literal["convocation", "convocation_moved", "convocation_cancelled", "reminder_college_avis",
               "reminder_lycee_avis"]

PRINCIPAL_REMINDER_BEFORE = timedelta(days=3)
PROVISEUR_REMINDER_AFTER = timedelta(days=5)


@dataclass(frozen=True)
class Notification:
    key: str
    kind: Kind
    campaign: str
    ine: str
    # who: the référent's address, or the establishment (UAI) whose head receives it
    referent_email: str | None = None
    referent_name: str | None = None
    establishment_uai: str | None = None
    student_name: str = ""
    class_name: str | None = None
    college_uai: str | None = None
    interview: Interview | None = None
    previous_at: datetime | None = None  # a move: the time it had
    slot_place: str | None = None  # booked on a slot: its place (the lycée's room, or how the video link is given)
    cancel_reason: str | None = None
    due_at: datetime | None = None
    extra: dict = field(default_factory=dict)


def _student_name(file: StudentFile) -> str:
    names = [n for n in (file.first_name, file.last_name) if n and n != ERASED]
    return " ".join(names) or file.ine


def _referent(file: StudentFile) -> tuple[str, str] | None:
    referent = file.referent
    if referent is None or not referent.email or referent.email == ERASED or "@" not in str(referent.email):
        return None
    return str(referent.email), referent.name if referent.name != ERASED else ""


def convocations(event: Event, before: StudentFile, after: StudentFile) -> list[Notification]:
    """The référent's convocation for a booking, a move or a cancellation; nothing for an erased student or one
    with no référent address."""
    payload = event.payload
    if not isinstance(payload, (InterviewScheduled, InterviewRescheduled, InterviewCancelled)) or after.erased:
        return []
    referent = _referent(after)
    interview = after.interviews.get(payload.interview_id)
    if referent is None or interview is None:
        return []
    kind: Kind = ("convocation" if isinstance(payload, InterviewScheduled)
                  else "convocation_moved" if isinstance(payload, InterviewRescheduled) else "convocation_cancelled")
    previous = before.interviews.get(payload.interview_id)
    return [Notification(
        key=f"{kind}:{event.campaign}:{after.ine}:{event.event_id}", kind=kind, campaign=event.campaign,
        ine=after.ine, referent_email=referent[0], referent_name=referent[1], student_name=_student_name(after),
        class_name=after.class_name, college_uai=after.college_uai, interview=interview,
        previous_at=previous.scheduled_at if previous is not None and kind == "convocation_moved" else None,
        cancel_reason=payload.reason if isinstance(payload, InterviewCancelled) else None,
    )]


def _first_interview(file: StudentFile) -> Interview | None:
    planned = [i for i in file.interviews.values() if i.status == "scheduled" and i.scheduled_at is not None]
    return min(planned, key=lambda i: i.scheduled_at, default=None)


def reminders(file: StudentFile, now: datetime) -> tuple[list[Notification], datetime | None]:
    """The reminders due at `now` (the ledger says which were already sent), and the next moment one may
    become due if nothing else happens (None: nothing to wait for)."""
    if not file.active or file.erased:
        return [], None
    due: list[Notification] = []
    upcoming: list[datetime] = []
    first = _first_interview(file)
    if first is not None and file.college_avis is None and file.college_uai:
        at = first.scheduled_at - PRINCIPAL_REMINDER_BEFORE
        if at <= now < first.scheduled_at:
            due.append(Notification(
                key=f"reminder_college_avis:{file.campaign}:{file.ine}", kind="reminder_college_avis",
                campaign=file.campaign, ine=file.ine, establishment_uai=file.college_uai,
                student_name=_student_name(file), class_name=file.class_name, college_uai=file.college_uai,
                interview=first, due_at=at))
        elif now < at:
            upcoming.append(at)
    for interview in sorted(file.interviews.values(), key=lambda i: i.interview_id):
        if interview.status != "held" or interview.held_at is None:
            continue
        if file.lycee_avis.get(voeu_key(interview.lycee_uai, interview.formation_code)):
            continue
        at = interview.held_at + PROVISEUR_REMINDER_AFTER
        if at <= now:
            due.append(Notification(
                key=f"reminder_lycee_avis:{file.campaign}:{file.ine}:{interview.interview_id}",
                kind="reminder_lycee_avis", campaign=file.campaign, ine=file.ine,
                establishment_uai=interview.lycee_uai, student_name=_student_name(file),
                class_name=file.class_name, college_uai=file.college_uai, interview=interview, due_at=at))
        else:
            upcoming.append(at)
    return due, min(upcoming, default=None)


def followed_campaigns(rectorat: list[Event], now: datetime, keep_after_close: timedelta,
                       configured: str | None = None) -> list[str]:
    """The campaigns the notifier reads (sorted): each one the rectorat stream opened (CampaignOpened), until
    its closing date plus `keep_after_close` (the retention delay: past it the campaign may be purged, and
    its streams must not be made again), and the one configured by PASSPRO_CAMPAIGN if any."""
    opened = {event.campaign for event in rectorat if event.event_type == "CampaignOpened"}
    followed = set()
    for campaign in opened:
        closes_at = fold_campaign(campaign, rectorat).closes_at
        if closes_at is None or now < closes_at + keep_after_close:
            followed.add(campaign)
    if configured:
        followed.add(configured)
    return sorted(followed)
