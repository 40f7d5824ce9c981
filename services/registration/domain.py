"""The collège's decisions: pure functions from a student's file and a command to the event to record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.errors import InvalidInput, NotFound, RuleViolation
from shared.contracts.events import (
    CollegeAvisGiven,
    InterviewPreparationUpdated,
    InterviewRescheduled,
    InterviewScheduled,
    MotivationLetterSaved,
    Payload,
    Referent,
    ReferentReassigned,
    StudentAccessIssued,
    StudentRegistered,
    StudentReinstated,
    StudentWithdrawn,
)
from shared.domain.slots import FREE_TIME_MINUTES, SlotFile, require_no_overlap, require_place, require_slot
from shared.domain.calendar import require_interview_time, require_registration_open
from shared.domain.rules import (
    cancel_interview,
    require_active_interview,
    require_campaign_open,
    require_not_erased,
    require_not_withdrawn,
    visible_to_college,
)
from shared.contracts.letter import LetterTemplate
from shared.domain.student_file import CampaignFile, StudentFile


@dataclass(frozen=True)
class Register:
    college_uai: str
    last_name: str
    first_name: str
    class_name: str
    referent: Referent


@dataclass(frozen=True)
class ReassignReferent:
    referent: Referent


@dataclass(frozen=True)
class ScheduleInterview:
    interview_id: str  # made by the service, outside the domain
    lycee_uai: str | None  # with a slot: None, or the slot's own
    formation_code: str | None
    scheduled_at: datetime | None
    mode: str | None
    remote_equipment_ready: bool
    slot_id: str | None = None
    room: str | None = None  # distanciel: the collège's room; required for a free time (SPEC §6)


@dataclass(frozen=True)
class RescheduleInterview:
    lycee_uai: str
    formation_code: str
    slot_id: str | None  # a slot, or a free time:
    scheduled_at: datetime | None
    mode: str | None
    room: str | None = None  # distanciel: the collège's room; required for a free time (SPEC §6)


@dataclass(frozen=True)
class CancelInterview:
    lycee_uai: str
    formation_code: str
    reason: str


@dataclass(frozen=True)
class GiveCollegeAvis:
    college_uai: str
    avis: str
    comment: str


@dataclass(frozen=True)
class Withdraw:
    reason: str


@dataclass(frozen=True)
class Reinstate:
    reason: str


@dataclass(frozen=True)
class IssueAccess:
    """A personal access code for the student's space (SPEC §6): the code itself never reaches the domain."""

    issued_by: str
    valid_for: timedelta


@dataclass(frozen=True)
class SaveLetter:
    """The student's guided motivation letter for one vœu, checked against its template (check_letter)."""

    lycee_uai: str
    formation_code: str
    template_version: int
    answers: dict[str, str]
    ready: bool
    questions: tuple[str, ...] = ()  # the template's question ids: a letter marked ready answers them all


@dataclass(frozen=True)
class UpdatePreparation:
    interview_id: str
    itinerary_ready: bool
    letter_printed: bool
    materials_ready: bool
    equipment_ready: bool | None


Command = (
    Register | ReassignReferent | ScheduleInterview | RescheduleInterview | CancelInterview | GiveCollegeAvis | Withdraw | Reinstate
    | SaveLetter | UpdatePreparation | IssueAccess
)


class InterviewNotFound(NotFound):
    """404: an interview the student's file does not have (another student's reads the same)."""

    def __init__(self) -> None:
        super(NotFound, self).__init__("interview_not_found", "Entretien introuvable.")


def check_letter(template: LetterTemplate, answers: dict[str, str]) -> None:
    """422 unless every answer is to a question of the template, within its length."""
    for question_id, text in answers.items():
        question = template.question(question_id)
        if question is None:
            raise InvalidInput("unknown_question", "Cette question ne fait pas partie de la lettre.", f"answers.{question_id}")
        if len(text) > question.max_length:
            raise InvalidInput(
                "answer_too_long",
                f"Réponse trop longue : {question.max_length} caractères au plus.",
                f"answers.{question_id}",
            )


def decide(
    file: StudentFile, campaign: CampaignFile, now: datetime, command: Command, caller_uai: str,
    slots: dict[str, SlotFile] | None = None,
) -> Payload:
    """The event the command records, or a Refusal (404 for a student the collège may not see, 409 for a rule).
    `slots`: the slots the command names or the student's interviews are in, folded from their streams."""
    if isinstance(command, Register):
        require_campaign_open(campaign, now)
        require_registration_open(campaign.calendar, now)
        if file.registered:
            raise RuleViolation(
                "already_registered", "Cet élève est déjà inscrit au dispositif Passpro pour cette campagne."
            )
        return StudentRegistered(
            college_uai=command.college_uai,
            last_name=command.last_name,
            first_name=command.first_name,
            class_name=command.class_name,
            referent=command.referent,
        )

    visible_to_college(file, caller_uai)
    require_not_erased(file)
    require_campaign_open(campaign, now)
    if isinstance(command, Reinstate):
        if not file.withdrawn:
            raise RuleViolation("not_withdrawn", "L'élève n'est pas retiré du dispositif.")
        return StudentReinstated(reason=command.reason)
    require_not_withdrawn(file)

    match command:
        case ReassignReferent(referent=referent):
            return ReferentReassigned(referent=referent)
        case ScheduleInterview() if command.slot_id is not None:
            booked = _book_slot(file, command, slots or {})
            require_interview_time(campaign.calendar, booked.scheduled_at)
            return booked
        case RescheduleInterview():
            moved = _reschedule(file, command, slots or {})
            require_interview_time(campaign.calendar, moved.scheduled_at)
            return moved
        case ScheduleInterview():
            scheduled = _schedule_rules(file, command)
            _require_room_rules(command.mode, command.room, free_time=True)
            require_interview_time(campaign.calendar, command.scheduled_at)
            require_no_overlap(file, command.scheduled_at, FREE_TIME_MINUTES, slots or {})
            return scheduled
        case CancelInterview():
            return cancel_interview(file, command.lycee_uai, command.formation_code, command.reason)
        case GiveCollegeAvis():
            if file.any_interview_held:
                raise RuleViolation(
                    "college_avis_after_interview",
                    "L'avis du collège doit être saisi avant les entretiens : un entretien a déjà eu lieu.",
                )
            return CollegeAvisGiven(college_uai=command.college_uai, avis=command.avis, comment=command.comment)
        case Withdraw(reason=reason):
            return StudentWithdrawn(reason=reason)
        case IssueAccess():
            return StudentAccessIssued(issued_by=command.issued_by, expires_at=now + command.valid_for)
        case SaveLetter():
            return _save_letter(file, command)
        case UpdatePreparation():
            return _update_preparation(file, command)
    raise TypeError(f"unknown command {command!r}")


def _book_slot(file: StudentFile, command: ScheduleInterview, slots: dict[str, SlotFile]) -> InterviewScheduled:
    """SPEC §7: the lycée, formation, time and mode come from the slot (a body naming others is a 422); rule 10,
    the vœu's own rules, then rule 9 on the slot's history."""
    slot = require_slot(slots.get(command.slot_id))
    for field, asked, actual in (
        ("lycee_uai", command.lycee_uai, slot.lycee_uai),
        ("formation_code", command.formation_code, slot.formation_code),
        ("scheduled_at", command.scheduled_at, slot.starts_at),
        ("mode", command.mode, slot.mode),
    ):
        if asked is not None and asked != actual:
            raise InvalidInput("slot_mismatch", "Le créneau choisi fixe le lycée, la formation, l'heure et le mode.", field)
    booked = ScheduleInterview(
        command.interview_id, slot.lycee_uai, slot.formation_code, slot.starts_at, slot.mode,
        command.remote_equipment_ready, room=command.room,
    )
    file_rules = _schedule_rules(file, booked)
    require_no_overlap(file, slot.starts_at, slot.duration_minutes, slots)
    require_place(slot)
    return file_rules.model_copy(update={"slot_id": slot.slot_id})


def _schedule_rules(file: StudentFile, command: ScheduleInterview) -> InterviewScheduled:
    if file.active_interview(command.lycee_uai, command.formation_code):
        raise RuleViolation(
            "interview_already_scheduled", "Un entretien est déjà prévu pour ce vœu (même lycée, même formation)."
        )
    if file.held_interview(command.lycee_uai, command.formation_code):
        raise RuleViolation("interview_already_held", "L'entretien pour ce vœu a déjà eu lieu.")
    if command.mode == "distanciel" and not command.remote_equipment_ready:
        raise RuleViolation(
            "remote_equipment_missing",
            "Un entretien en distanciel exige que le collège ait vérifié l'équipement de l'élève.",
        )
    _require_room_rules(command.mode, command.room, free_time=False)
    return InterviewScheduled(
        interview_id=command.interview_id,
        lycee_uai=command.lycee_uai,
        formation_code=command.formation_code,
        scheduled_at=command.scheduled_at,
        mode=command.mode,
        remote_equipment_ready=command.remote_equipment_ready,
        room=command.room or None,
    )


def _require_room_rules(mode: str | None, room: str | None, *, free_time: bool) -> None:
    """SPEC §6, for a booking as for a move: the collège's room only for a distanciel interview, and required
    for a distanciel free time (a slot's own place is the lycée's side: the room is optional there)."""
    if room and mode != "distanciel":
        raise InvalidInput(
            "room_not_for_presentiel",
            "La salle du collège ne se donne que pour un entretien en distanciel : en présentiel, l'élève va au lycée.",
            "room",
        )
    if free_time and mode == "distanciel" and not room:
        raise InvalidInput(
            "room_missing",
            "Pour un entretien en distanciel, indiquez la salle du collège où l'élève le suivra.",
            "room",
        )


def _reschedule(file: StudentFile, command: RescheduleInterview, slots: dict[str, SlotFile]) -> InterviewRescheduled:
    """SPEC §7: one event moves the vœu's scheduled interview to a slot or a free time; the old slot's place is
    freed in the same append (the handler conditions it on the student's, the old and the new slot's streams)."""
    interview = require_active_interview(file, command.lycee_uai, command.formation_code)
    if command.slot_id is not None:
        slot = require_slot(slots.get(command.slot_id))
        if (slot.lycee_uai, slot.formation_code) != interview.voeu:
            raise InvalidInput("slot_mismatch", "Ce créneau est celui d'un autre lycée ou d'une autre formation.", "slot_id")
        if interview.slot_id == slot.slot_id:
            raise RuleViolation("already_in_slot", "L'entretien est déjà dans ce créneau.")
        require_place(slot)
        starts_at, minutes, mode = slot.starts_at, slot.duration_minutes, slot.mode
    else:
        starts_at, minutes, mode = command.scheduled_at, FREE_TIME_MINUTES, command.mode
    if mode == "distanciel" and not interview.remote_equipment_ready:
        raise RuleViolation(
            "remote_equipment_missing",
            "Un entretien en distanciel exige que le collège ait vérifié l'équipement de l'élève.",
        )
    _require_room_rules(mode, command.room, free_time=command.slot_id is None)
    require_no_overlap(file, starts_at, minutes, slots, moving=interview.interview_id)
    return InterviewRescheduled(
        interview_id=interview.interview_id,
        lycee_uai=command.lycee_uai,
        formation_code=command.formation_code,
        scheduled_at=starts_at,
        slot_id=command.slot_id,
        mode=mode,
        room=command.room or None,
    )


def _save_letter(file: StudentFile, command: SaveLetter) -> MotivationLetterSaved:
    """SPEC §6: a letter needs the vœu's interview, and is frozen once that interview is held."""
    if file.held_interview(command.lycee_uai, command.formation_code):
        raise RuleViolation(
            "letter_after_interview",
            "L'entretien pour ce vœu a eu lieu : la lettre de motivation ne peut plus être modifiée.",
        )
    if file.active_interview(command.lycee_uai, command.formation_code) is None:
        raise RuleViolation(
            "no_interview_for_voeu",
            "Aucun entretien n'est prévu pour ce vœu : la lettre de motivation accompagne un entretien.",
        )
    if command.ready and any(not command.answers.get(q) for q in command.questions):
        raise RuleViolation(
            "letter_incomplete", "Pour marquer la lettre comme prête, réponds à toutes les questions.",
        )
    return MotivationLetterSaved(
        lycee_uai=command.lycee_uai,
        formation_code=command.formation_code,
        template_version=command.template_version,
        answers=command.answers,
        ready=command.ready,
    )


def _update_preparation(file: StudentFile, command: UpdatePreparation) -> InterviewPreparationUpdated:
    """The checklist of one of the student's interviews, while it is still to come; the equipment is a
    distanciel interview's item only (absent for a présentiel one)."""
    interview = file.interviews.get(command.interview_id)
    if interview is None:
        raise InterviewNotFound()
    if interview.status != "scheduled":
        raise RuleViolation(
            "interview_not_scheduled", "Cet entretien n'est plus à venir : sa préparation ne peut plus changer."
        )
    remote = interview.mode == "distanciel"
    return InterviewPreparationUpdated(
        interview_id=command.interview_id,
        itinerary_ready=command.itinerary_ready,
        letter_printed=command.letter_printed,
        materials_ready=command.materials_ready,
        equipment_ready=bool(command.equipment_ready) if remote else None,
    )


def next_step(file: StudentFile) -> str:
    """What the collège should do next for this student, in French."""
    if file.withdrawn:
        return "Élève retiré du dispositif"
    if file.college_avis is None and not file.any_interview_held:
        return "Saisir l'avis du collège (avant les entretiens)"
    if all(i.status == "cancelled" for i in file.interviews.values()):
        return "Inscrire l'élève à un entretien"
    if any(i.status == "scheduled" for i in file.interviews.values()):
        return "Entretien à venir"
    if not file.lycee_avis:
        return "En attente de l'avis du lycée"
    return "Dossier complet"
