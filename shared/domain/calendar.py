"""The campaign's calendar (SPEC §7): its dates, the phase rules that refuse a write outside its phase
(409 `phase_closed` naming the date) and where the campaign stands. Pure functions, no clock of their own:
`now` is given (the command's clock, or the page's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from pydantic import BaseModel, ConfigDict

from shared.domain.errors import InvalidInput, RuleViolation

FIELDS = ("registrations_until", "interviews_from", "interviews_until", "lycee_avis_until", "closes_at")


class Calendar(BaseModel):
    """The latest CampaignCalendarSet of a campaign (every date may be none: no such limit)."""

    model_config = ConfigDict(frozen=True)

    registrations_until: datetime | None = None
    interviews_from: datetime | None = None
    interviews_until: datetime | None = None
    lycee_avis_until: datetime | None = None
    closes_at: datetime | None = None

    @property
    def is_set(self) -> bool:
        return any(getattr(self, name) is not None for name in FIELDS)


# What each refusal says; {date} is the date named, in French (PhaseClosed.name_date, by the runtime).
MESSAGES = {
    "registrations": "Les inscriptions de la campagne sont closes depuis le {date}.",
    "interviews_not_started": "Les entretiens de la campagne commencent le {date} : un entretien ne peut être fixé ou tenu avant.",
    "interviews_over": "Les entretiens de la campagne se terminent le {date} : un entretien ne peut être fixé ou tenu après.",
    "lycee_avis": "Les avis des lycées sont clos depuis le {date}.",
}


class PhaseClosed(RuleViolation):
    """409 `phase_closed`: the write is outside its phase; `phase` and `date` (RFC 3339) in the body."""

    def __init__(self, phase: str, date: datetime) -> None:
        self.phase, self.date = phase, date
        super().__init__("phase_closed", MESSAGES[phase].format(date=date.isoformat()), phase=phase, date=date.isoformat())

    def name_date(self, date_text: Callable[[datetime], str]) -> None:
        """The message with the date as people read it (the runtime passes the French formatter)."""
        self.message = MESSAGES[self.phase].format(date=date_text(self.date))
        self.args = (self.message,)


def require_registration_open(calendar: Calendar, now: datetime) -> None:
    """A registration after `registrations_until` is refused."""
    if calendar.registrations_until is not None and now > calendar.registrations_until:
        raise PhaseClosed("registrations", calendar.registrations_until)


def require_interview_time(calendar: Calendar, at: datetime | None) -> None:
    """An interview scheduled, held or moved at a time outside [`interviews_from`, `interviews_until`]."""
    if at is None:
        return
    if calendar.interviews_from is not None and at < calendar.interviews_from:
        raise PhaseClosed("interviews_not_started", calendar.interviews_from)
    if calendar.interviews_until is not None and at > calendar.interviews_until:
        raise PhaseClosed("interviews_over", calendar.interviews_until)


def require_lycee_avis_open(calendar: Calendar, now: datetime) -> None:
    """A lycée avis after `lycee_avis_until` is refused."""
    if calendar.lycee_avis_until is not None and now > calendar.lycee_avis_until:
        raise PhaseClosed("lycee_avis", calendar.lycee_avis_until)


# Dates that must come in this order when both are set: (earlier, later).
ORDER = (
    ("interviews_from", "interviews_until"),
    ("registrations_until", "interviews_until"),
    ("interviews_from", "lycee_avis_until"),
    ("interviews_until", "lycee_avis_until"),
    ("registrations_until", "closes_at"),
    ("interviews_until", "closes_at"),
    ("lycee_avis_until", "closes_at"),
)
LABELS = {
    "registrations_until": "la fin des inscriptions",
    "interviews_from": "le début des entretiens",
    "interviews_until": "la fin des entretiens",
    "lycee_avis_until": "la fin des avis des lycées",
    "closes_at": "la clôture de la campagne",
}


def out_of_order(calendar: Calendar) -> tuple[str, str] | None:
    """The first pair (earlier, later) of ORDER whose dates are both set and in the wrong order, if any."""
    for earlier, later in ORDER:
        first, then = getattr(calendar, earlier), getattr(calendar, later)
        if first is not None and then is not None and then < first:
            return earlier, later
    return None


def order_message(earlier: str, later: str) -> str:
    return f"{LABELS[later].capitalize()} ne peut pas précéder {LABELS[earlier]}."


def check_order(calendar: Calendar) -> None:
    """422 `calendar_order` naming the later field when two dates are in the wrong order."""
    broken = out_of_order(calendar)
    if broken is not None:
        raise InvalidInput("calendar_order", order_message(*broken), broken[1])


@dataclass(frozen=True)
class Phase:
    """Where the campaign stands at a moment: a short French name and the next date to come (if any)."""

    name: str
    next_label: str | None = None
    next_date: datetime | None = None


NEXT = (
    ("registrations_until", "fin des inscriptions"),
    ("interviews_from", "début des entretiens"),
    ("interviews_until", "fin des entretiens"),
    ("lycee_avis_until", "fin des avis des lycées"),
    ("closes_at", "clôture de la campagne"),
)


def phase_at(calendar: Calendar, now: datetime) -> Phase:
    """The phase the campaign is in at `now` and its next date."""
    c = calendar
    if c.closes_at is not None and now >= c.closes_at:
        name = "campagne close (consultation seule)"
    elif c.lycee_avis_until is not None and now > c.lycee_avis_until:
        name = "avis des lycées clos"
    elif c.interviews_until is not None and now > c.interviews_until:
        name = "avis des lycées"
    elif c.interviews_from is not None and now >= c.interviews_from:
        name = "entretiens"
    elif c.registrations_until is not None and now > c.registrations_until:
        name = "inscriptions closes, entretiens à venir"
    else:
        name = "inscriptions"
    upcoming = [(getattr(c, field), label) for field, label in NEXT if getattr(c, field) is not None and getattr(c, field) > now]
    if not upcoming:
        return Phase(name)
    date, label = min(upcoming, key=lambda pair: pair[0])
    return Phase(name, label, date)
