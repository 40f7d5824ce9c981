"""The lycée's decisions: pure functions from a student's file and a command to the event to record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.errors import InvalidInput, RuleViolation
from shared.contracts.events import InterviewHeld, InterviewReportCorrected, LyceeAvisGiven, Payload, Report
from shared.domain.calendar import require_interview_time, require_lycee_avis_open
from shared.domain.rules import (
    cancel_interview,
    require_active_interview,
    require_campaign_open,
    require_not_erased,
    require_not_withdrawn,
    visible_to_lycee,
)
from shared.domain.student_file import CampaignFile, StudentFile


@dataclass(frozen=True)
class RecordHeld:
    lycee_uai: str
    formation_code: str
    held_at: datetime
    mode: str | None
    report: Report


@dataclass(frozen=True)
class CancelInterview:
    lycee_uai: str
    formation_code: str
    reason: str


@dataclass(frozen=True)
class GiveLyceeAvis:
    lycee_uai: str
    formation_code: str
    avis: str


@dataclass(frozen=True)
class CorrectReport:
    lycee_uai: str
    formation_code: str
    report: Report


Command = RecordHeld | CancelInterview | GiveLyceeAvis | CorrectReport


def check_held_at(held_at: datetime, now: datetime) -> None:
    """`held_at` may differ from `scheduled_at` but may not lie in the future (SPEC §5, a 422)."""
    if held_at > now:
        raise InvalidInput("held_in_future", "La date de l'entretien ne peut pas être dans le futur.", "held_at")


def decide(file: StudentFile, campaign: CampaignFile, now: datetime, command: Command, caller_uai: str) -> Payload:
    """The event the command records, or a Refusal (404 for a student the lycée may not see, 409 for a rule)."""
    visible_to_lycee(file, caller_uai)
    require_not_erased(file)
    require_campaign_open(campaign, now)
    require_not_withdrawn(file)
    match command:
        case RecordHeld():
            check_held_at(command.held_at, now)
            require_interview_time(campaign.calendar, command.held_at)
            interview = require_active_interview(file, command.lycee_uai, command.formation_code)
            return InterviewHeld(
                interview_id=interview.interview_id,
                lycee_uai=command.lycee_uai,
                formation_code=command.formation_code,
                held_at=command.held_at,
                mode=command.mode or interview.mode or "presentiel",
                # Rule 5: the interview happened, so it is recorded; the missing avis is flagged.
                college_avis_present=file.college_avis is not None,
                report=command.report,
            )
        case CancelInterview():
            return cancel_interview(file, command.lycee_uai, command.formation_code, command.reason)
        case CorrectReport():
            interview = file.held_interview(command.lycee_uai, command.formation_code)
            if interview is None:
                raise RuleViolation("no_held_interview", "Seul le compte rendu d'un entretien tenu peut être corrigé.")
            if file.latest_lycee_avis(command.lycee_uai, command.formation_code):
                raise RuleViolation(
                    "lycee_avis_given", "L'avis du lycée est donné : le compte rendu ne peut plus être corrigé."
                )
            return InterviewReportCorrected(
                interview_id=interview.interview_id,
                lycee_uai=command.lycee_uai,
                formation_code=command.formation_code,
                report=command.report,
            )
        case GiveLyceeAvis():
            require_lycee_avis_open(campaign.calendar, now)
            interview = file.held_interview(command.lycee_uai, command.formation_code)
            if interview is None:
                raise RuleViolation(
                    "no_held_interview", "L'avis du lycée suppose un entretien tenu pour ce vœu."
                )
            return LyceeAvisGiven(
                interview_id=interview.interview_id,
                lycee_uai=command.lycee_uai,
                formation_code=command.formation_code,
                avis=command.avis,
            )
    raise TypeError(f"unknown command {command!r}")
