"""The rectorat's decisions and the bonus rule: pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.bonus import VoeuBonus, total_bonus_points, voeu_bonuses
from shared.domain.errors import NotFound, RuleViolation
from shared.contracts.events import CampaignCalendarSet, CampaignOpened, StudentForgotten
from shared.domain.calendar import FIELDS as CALENDAR_FIELDS, Calendar, check_order, order_message, out_of_order
from shared.contracts.identifiers import PARIS
from shared.domain.student_file import CampaignFile, StudentFile

__all__ = ["OpenCampaign", "decide", "SetCalendar", "decide_calendar", "Forget", "decide_forget", "voeu_bonuses", "total_bonus_points", "VoeuBonus", "StudentBonus", "bonus_of"]


@dataclass(frozen=True)
class OpenCampaign:
    bonus_points: int
    closes_at: datetime | None


def rentree_is_past(campaign: str, now: datetime) -> bool:
    """Whether the rentrée a campaign prepares, 1 September of its year (SPEC §2) in Paris, has come.
    Compared as (year, month), so a campaign 0000 is in the past rather than a date Python cannot build."""
    today = now.astimezone(PARIS)
    return (today.year, today.month) >= (int(campaign), 9)


def decide(campaign: CampaignFile, now: datetime, command: OpenCampaign) -> CampaignOpened:
    if campaign.opened:
        raise RuleViolation("campaign_already_open", f"La campagne {campaign.campaign} est déjà ouverte.")
    if rentree_is_past(campaign.campaign, now):
        raise RuleViolation(
            "campaign_in_past",
            f"La rentrée {campaign.campaign} est déjà passée : une campagne ne s'ouvre que pour une rentrée à venir.",
        )
    if command.closes_at is not None and command.closes_at <= now:
        raise RuleViolation("closes_in_past", "La date de clôture doit être dans le futur.")
    return CampaignOpened(bonus_points=command.bonus_points, closes_at=command.closes_at)


@dataclass(frozen=True)
class SetCalendar:
    """The dates asked (`dates`: only those the request named; a date named as None is removed)."""

    dates: dict[str, datetime | None]


def decide_calendar(campaign: CampaignFile, now: datetime, command: SetCalendar) -> CampaignCalendarSet:
    """SPEC §7: the rectorat sets or changes the campaign's dates. A date the request leaves out keeps its
    value, so the event states the whole calendar (the latest counts). The campaign must be open (a closed
    one stays readable, unchanged); the dates in order — 422 `calendar_order` when the request's own dates
    contradict each other, 409 `calendar_order` when a date asked contradicts one kept from the calendar in
    force (a rule on the campaign's state, not a bad request); a new closing in the future."""
    if not campaign.opened:
        raise RuleViolation("campaign_not_open", f"La campagne {campaign.campaign} n'est pas ouverte.")
    if not campaign.is_open(now):
        raise RuleViolation("campaign_closed", f"La campagne {campaign.campaign} est close.")
    current = {**campaign.calendar.model_dump(), "closes_at": campaign.closes_at}
    asked = {k: v for k, v in command.dates.items() if k in CALENDAR_FIELDS}
    check_order(Calendar(**asked))
    calendar = Calendar(**{**current, **asked})
    broken = out_of_order(calendar)
    if broken is not None:
        raise RuleViolation("calendar_order", order_message(*broken))
    if calendar.closes_at is not None and calendar.closes_at != campaign.closes_at and calendar.closes_at <= now:
        raise RuleViolation("closes_in_past", "La date de clôture doit être dans le futur.")
    return CampaignCalendarSet(**calendar.model_dump())


@dataclass(frozen=True)
class Forget:
    reason: str


def _names(reason: str, name: str | None) -> bool:
    """`name` as a whole word of `reason`, whatever the case."""
    if not name or len(name) < 2:
        return False
    text, wanted = reason.lower(), name.lower()
    start = text.find(wanted)
    while start >= 0:
        end = start + len(wanted)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        start = text.find(wanted, start + 1)
    return False


def decide_forget(file: StudentFile, command: Forget) -> StudentForgotten:
    """The rectorat erases a student's personal data (RGPD), campaign open or not; once only. The reason stays
    in clear in the log forever: it must not carry the student's name (judged on the file the append is
    conditioned on)."""
    if not file.versions:
        raise NotFound()
    if file.erased:
        raise RuleViolation("already_erased", "Les données personnelles de cet élève sont déjà effacées.")
    if _names(command.reason, file.last_name) or _names(command.reason, file.first_name):
        raise RuleViolation(
            "reason_names_student",
            "motif invalide : il ne doit pas contenir le nom ni le prénom de l'élève (il reste lisible).",
        )
    return StudentForgotten(reason=command.reason)


def what_scoring_keeps(file: StudentFile) -> StudentFile:
    """Scoring's view keeps what the bonus and the rectorat's lists need: identifiers, levels, versions
    and the student's name. Comments, reports, reasons, class and référent stay in the (sealed) log,
    where the audit timeline reads them: less personal data in one more database. A file already trimmed
    (a kept one the page changed little) is not copied again, nor an interview already trimmed."""
    interviews = file.interviews
    if any(i.report is not None or i.cancel_reason is not None for i in interviews.values()):
        interviews = {
            key: i if i.report is None and i.cancel_reason is None else i.model_copy(update={"report": None, "cancel_reason": None})
            for key, i in interviews.items()
        }
    elif file.class_name is None and file.referent is None and file.status_reason is None and file.college_comment is None:
        return file
    return file.model_copy(
        update={"class_name": None, "referent": None, "status_reason": None, "college_comment": None, "interviews": interviews}
    )


@dataclass(frozen=True)
class StudentBonus:
    ine: str
    campaign: str
    college_uai: str | None
    withdrawn: bool
    voeux: list[VoeuBonus]

    @property
    def total_bonus_points(self) -> int:
        return total_bonus_points(self.voeux)


def bonus_of(file: StudentFile, campaign_bonus_points: int) -> StudentBonus:
    """SPEC §3.2 for one student."""
    return StudentBonus(
        ine=file.ine,
        campaign=file.campaign,
        college_uai=file.college_uai,
        withdrawn=file.withdrawn,
        voeux=voeu_bonuses(file, campaign_bonus_points),
    )
