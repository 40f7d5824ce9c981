"""Rules of SPEC §3.1 that more than one service checks; pure functions of the student's file."""

from __future__ import annotations

from datetime import datetime

from shared.domain.errors import NotFound, RuleViolation
from shared.contracts.events import InterviewCancelled
from shared.domain.student_file import CampaignFile, Interview, StudentFile


def require_campaign_open(campaign: CampaignFile, now: datetime) -> None:
    """Rule 1."""
    if not campaign.opened:
        raise RuleViolation("campaign_not_open", f"La campagne {campaign.campaign} n'est pas ouverte.")
    if not campaign.is_open(now):
        raise RuleViolation("campaign_closed", f"La campagne {campaign.campaign} est close.")


def require_not_withdrawn(file: StudentFile) -> None:
    """Rule 8."""
    if file.withdrawn:
        raise RuleViolation(
            "student_withdrawn", "L'élève s'est retiré du dispositif : seule une réintégration est possible."
        )


def require_not_erased(file: StudentFile) -> None:
    """After an erasure (RGPD) nothing more is written about the student."""
    if file.erased:
        raise RuleViolation(
            "student_erased",
            "Les données personnelles de cet élève ont été effacées : plus aucune action n'est possible à son sujet.",
        )


def visible_to_college(file: StudentFile, college_uai: str | None) -> None:
    if not file.registered or file.college_uai != college_uai:
        raise NotFound()


def visible_to_lycee(file: StudentFile, lycee_uai: str | None) -> None:
    if not file.registered or not any(i.lycee_uai == lycee_uai for i in file.interviews.values()):
        raise NotFound()


def require_active_interview(file: StudentFile, lycee_uai: str, formation_code: str) -> Interview:
    """Rules 4 and 6: the vœu's scheduled (not cancelled, not held) interview."""
    interview = file.active_interview(lycee_uai, formation_code)
    if interview is None:
        raise RuleViolation("no_active_interview", "Aucun entretien prévu pour ce vœu.")
    return interview


def cancel_interview(file: StudentFile, lycee_uai: str, formation_code: str, reason: str) -> InterviewCancelled:
    """Either side may cancel the vœu's active interview (SPEC §3: registration or evaluation)."""
    interview = require_active_interview(file, lycee_uai, formation_code)
    return InterviewCancelled(
        interview_id=interview.interview_id, lycee_uai=lycee_uai, formation_code=formation_code, reason=reason
    )
