"""The collège's decisions: pure functions from a student's file and a command to the event to record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.errors import RuleViolation
from shared.contracts.events import (
    CollegeAvisGiven,
    InterviewScheduled,
    Payload,
    Referent,
    ReferentReassigned,
    StudentRegistered,
    StudentReinstated,
    StudentWithdrawn,
)
from shared.domain.rules import (
    cancel_interview,
    require_campaign_open,
    require_not_erased,
    require_not_withdrawn,
    visible_to_college,
)
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
    lycee_uai: str
    formation_code: str
    scheduled_at: datetime
    mode: str
    remote_equipment_ready: bool


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


Command = Register | ReassignReferent | ScheduleInterview | CancelInterview | GiveCollegeAvis | Withdraw | Reinstate


def decide(file: StudentFile, campaign: CampaignFile, now: datetime, command: Command, caller_uai: str) -> Payload:
    """The event the command records, or a Refusal (404 for a student the collège may not see, 409 for a rule)."""
    if isinstance(command, Register):
        require_campaign_open(campaign, now)
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
        case ScheduleInterview():
            if file.active_interview(command.lycee_uai, command.formation_code):
                raise RuleViolation(
                    "interview_already_scheduled",
                    "Un entretien est déjà prévu pour ce vœu (même lycée, même formation).",
                )
            if file.held_interview(command.lycee_uai, command.formation_code):
                raise RuleViolation("interview_already_held", "L'entretien pour ce vœu a déjà eu lieu.")
            if command.mode == "distanciel" and not command.remote_equipment_ready:
                raise RuleViolation(
                    "remote_equipment_missing",
                    "Un entretien en distanciel exige que le collège ait vérifié l'équipement de l'élève.",
                )
            return InterviewScheduled(
                interview_id=command.interview_id,
                lycee_uai=command.lycee_uai,
                formation_code=command.formation_code,
                scheduled_at=command.scheduled_at,
                mode=command.mode,
                remote_equipment_ready=command.remote_equipment_ready,
            )
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
    raise TypeError(f"unknown command {command!r}")


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
