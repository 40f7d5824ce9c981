"""A student's timeline: what each event says in French, the cut `as_of` asks for and the report (pure:
`describe`, `parse_as_of`, `Cut`, `student_report`), then the history read from the log for it (the I/O:
`resolve_cut`, `student_audit`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from services.records.audit import is_within, read_logged
from services.records.checkpoints import entry_fields, stream_pages
from services.scoring.domain import StudentBonus, bonus_of
from shared.contracts.events import (
    CampaignOpened,
    CollegeAvisGiven,
    Event,
    InterviewCancelled,
    InterviewHeld,
    InterviewPreparationUpdated,
    InterviewReportCorrected,
    InterviewRescheduled,
    InterviewScheduled,
    InterviewSlotClosed,
    InterviewSlotOpened,
    LyceeAvisGiven,
    MotivationLetterSaved,
    ReferentReassigned,
    StudentAccessIssued,
    StudentForgotten,
    StudentRegistered,
    StudentReinstated,
    StudentWithdrawn,
)
from shared.contracts.personal import ErasedKeyring, Keyring
from shared.contracts.streams import LoggedEvent, StreamKeys
from shared.domain.student_file import empty_file, evolve
from shared.fr.labels import (
    ASSESSMENT_LABELS,
    COLLEGE_AVIS_LABELS,
    EVENT_LABELS,
    LYCEE_AVIS_LABELS,
    PREPARATION_LABELS,
)


def _said(labels: dict[str, str], code: str) -> str:
    """A catalogue label inside a sentence (« avis : assez favorable »); an unknown code as it is."""
    return labels[code].lower() if code in labels else code


def describe(event: Event, show_time: Callable[[datetime], str] = datetime.isoformat) -> list[str]:
    """What the event says, in French, one line per fact; `show_time` writes its dates (people read Paris time)."""
    p = event.payload
    match p:
        case StudentRegistered():
            return [
                f"{p.last_name} {p.first_name}, classe {p.class_name}, collège {p.college_uai}",
                f"référent : {p.referent.name} <{p.referent.email}>",
            ]
        case ReferentReassigned():
            return [f"nouveau référent : {p.referent.name} <{p.referent.email}>"]
        case InterviewScheduled():
            equipment = ", équipement vérifié" if p.remote_equipment_ready else ""
            slot = f", créneau {p.slot_id}" if p.slot_id else ""
            return [f"vœu {p.lycee_uai}/{p.formation_code}, le {show_time(p.scheduled_at)}, {p.mode}{equipment}{slot}"]
        case InterviewRescheduled():
            slot = f", créneau {p.slot_id}" if p.slot_id else ", hors créneau"
            return [f"vœu {p.lycee_uai}/{p.formation_code}, déplacé au {show_time(p.scheduled_at)}, {p.mode}{slot}"]
        case InterviewReportCorrected():
            return [
                f"vœu {p.lycee_uai}/{p.formation_code}, compte rendu corrigé : motivation "
                f"{_said(ASSESSMENT_LABELS, p.report.motivation)}, "
                f"chances de réussite {_said(ASSESSMENT_LABELS, p.report.chances_of_success)}",
                f"conseils : {p.report.advice}",
            ]
        case InterviewSlotOpened():
            return [
                f"créneau {p.slot_id} : {p.lycee_uai}/{p.formation_code}, le {show_time(p.starts_at)}, "
                f"{p.duration_minutes} min, {p.capacity} place(s), {p.mode}, {p.place}"
            ]
        case InterviewSlotClosed():
            return [f"créneau {p.slot_id} fermé ({p.lycee_uai}/{p.formation_code})"]
        case InterviewCancelled():
            return [f"vœu {p.lycee_uai}/{p.formation_code}, motif : {p.reason}"]
        case CollegeAvisGiven():
            return [f"avis : {_said(COLLEGE_AVIS_LABELS, p.avis)}", f"commentaire : {p.comment}"]
        case StudentWithdrawn() | StudentReinstated():
            return [f"motif : {p.reason}"]
        case InterviewHeld():
            missing = "" if p.college_avis_present else " — avis du collège manquant"
            return [
                f"vœu {p.lycee_uai}/{p.formation_code}, tenu le {show_time(p.held_at)}, {p.mode}{missing}",
                f"compte rendu : motivation {_said(ASSESSMENT_LABELS, p.report.motivation)}, "
                f"chances de réussite {_said(ASSESSMENT_LABELS, p.report.chances_of_success)}",
                f"conseils : {p.report.advice}",
            ]
        case LyceeAvisGiven():
            return [f"vœu {p.lycee_uai}/{p.formation_code}, avis : {_said(LYCEE_AVIS_LABELS, p.avis)}"]
        case CampaignOpened():
            return [f"bonus : {p.bonus_points} points"]
        case StudentForgotten():
            return [f"motif : {p.reason}"]
        case StudentAccessIssued():
            return [f"code d'accès délivré par {p.issued_by}, valable jusqu'au {show_time(p.expires_at)}"]
        case MotivationLetterSaved():
            state = "prête" if p.ready else "brouillon"
            answers = [f"{question} : {text}" for question, text in sorted(p.answers.items())]
            return [f"vœu {p.lycee_uai}/{p.formation_code}, lettre {state} (modèle v{p.template_version})", *answers]
        case InterviewPreparationUpdated():
            ticked = [name for name in PREPARATION_LABELS if getattr(p, name)]
            said = ", ".join(PREPARATION_LABELS[name].lower() for name in ticked) or "rien de coché"
            return [f"entretien {p.interview_id} : {said}"]
    return []


@dataclass(frozen=True)
class AsOf:
    """What `as_of` asked for: a moment (RFC 3339 with offset) or a log position (`ms-seq`)."""

    raw: str
    moment: datetime | None = None
    position: str | None = None


class InvalidAsOf(ValueError):
    pass


MAX_ID_PART = 2**64 - 1  # each half of a stream entry id is an unsigned 64-bit number


def parse_as_of(value: str | None) -> AsOf | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    ms, dash, seq = value.partition("-")
    if dash and ms.isdigit() and seq.isdigit() and len(ms) <= 20 and len(seq) <= 20:
        return AsOf(value, position=value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidAsOf(
            "as_of : une date RFC 3339 avec fuseau (2027-03-15T12:00:00+01:00) "
            "ou une position du journal (1789000000000-0)."
        )
    return AsOf(value, moment=moment)


@dataclass(frozen=True)
class Cut:
    """Where the history stops: up to an entry of the student's own stream, else up to a recording time.
    A position from another stream (a service stream, the rectorat) becomes that entry's recording time,
    so the `service` and `student` positions of one append give the same answer."""

    until: datetime | None = None
    student_position: str | None = None

    def keeps(self, logged: LoggedEvent) -> bool:
        if self.student_position is not None and not is_within(logged.entry_id, self.student_position):
            return False
        if self.until is not None and (logged.event.recorded_at is None or logged.event.recorded_at > self.until):
            return False
        return True

    def keeps_event(self, event: Event) -> bool:
        return self.until is None or (event.recorded_at is not None and event.recorded_at <= self.until)


def bonus_as_dict(bonus: StudentBonus) -> dict[str, Any]:
    return {
        "total_bonus_points": bonus.total_bonus_points,
        "withdrawn": bonus.withdrawn,
        "voeux": [v.__dict__ for v in bonus.voeux],
    }


def student_report(
    *,
    ine: str,
    campaign: str,
    as_of: AsOf | None,
    cut: Cut,
    history: list[LoggedEvent],
    rectorat: list[Event],
    establishments: Mapping[str, str],
    show_time: Callable[[datetime], str] = datetime.isoformat,
) -> dict[str, Any]:
    """The student's timeline up to the cut, each step with who, when, from where, what it said and the
    bonus right after it; then the bonus as it stood at the cut."""
    bonus_points = 0
    for event in rectorat:
        if event.campaign == campaign and isinstance(event.payload, CampaignOpened) and cut.keeps_event(event):
            bonus_points = event.payload.bonus_points
    file = empty_file(campaign, ine)
    timeline = []
    for logged in history:
        if not cut.keeps(logged):
            continue
        event = logged.event
        file = evolve(file, event, logged.student_version or len(file.versions) + 1)
        uai = event.actor.uai
        dumped = event.model_dump(mode="json")  # times written as every other answer writes them
        timeline.append(
            {
                "position": logged.entry_id,
                "student_version": logged.student_version,
                "event_id": str(event.event_id),
                "event_type": event.event_type,
                "label": EVENT_LABELS.get(event.event_type, event.event_type),
                "occurred_at": dumped["occurred_at"],
                "recorded_at": dumped["recorded_at"],
                "actor": dumped["actor"],
                "establishment": {"uai": uai, "name": establishments.get(uai)} if uai else None,
                "details": describe(event, show_time),
                "payload": dumped["payload"],
                "bonus_after": bonus_as_dict(bonus_of(file, bonus_points)),
            }
        )
    bonus = bonus_of(file, bonus_points)
    return {
        "ine": ine,
        "campaign": campaign,
        "as_of": as_of.raw if as_of else None,
        "cut": {
            "recorded_until": cut.until.isoformat() if cut.until else None,
            "student_position": cut.student_position,
        },
        "campaign_bonus_points": bonus_points,
        "college_uai": file.college_uai,
        "college_avis": file.college_avis,
        "timeline": timeline,
        **bonus_as_dict(bonus),
    }


# --- read from the log ----------------------------------------------------------------

NO_KEYS = ErasedKeyring()  # the campaign events need no personal field


async def _entries(redis: Redis, key: str) -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []
    async for page in stream_pages(redis, key):
        found += page
    return found


async def _rectorat_events(redis: Redis, keys: StreamKeys) -> list[Event]:
    events = []
    for entry_id, fields in await _entries(redis, keys.rectorat):
        logged = read_logged(keys.rectorat, entry_id, fields, NO_KEYS)
        if isinstance(logged, LoggedEvent):
            events.append(logged.event)
    return events


async def _recorded_at(redis: Redis, stream: str, entry_id: str) -> datetime | None:
    found = await redis.xrange(stream, entry_id, entry_id)
    if not found:
        return None
    value = entry_fields(found[0][1]).get("recorded_at")
    return datetime.fromisoformat(value) if value else None


async def resolve_cut(
    redis: Redis, keys: StreamKeys, campaign: str, as_of: AsOf | None, history: list[LoggedEvent]
) -> Cut:
    """A time stays a time; a position of the student's stream cuts there; a position of another stream
    of the campaign (a service stream, the rectorat) becomes that entry's recording time."""
    if as_of is None:
        return Cut()
    if as_of.moment is not None:
        return Cut(until=as_of.moment)
    own = next((h for h in history if h.entry_id == as_of.position), None)
    if own is not None:
        return Cut(until=own.event.recorded_at, student_position=as_of.position)
    if any(int(part) > MAX_ID_PART for part in as_of.position.split("-")):  # Redis would refuse it: no entry
        raise InvalidAsOf(f"as_of : la position {as_of.position} n'est pas une entrée du journal de la campagne {campaign}.")
    for stream in [*keys.campaign_streams(campaign), keys.rectorat]:
        moment = await _recorded_at(redis, stream, as_of.position)
        if moment is not None:
            return Cut(until=moment)
    raise InvalidAsOf(f"as_of : la position {as_of.position} n'est pas une entrée du journal de la campagne {campaign}.")


async def student_audit(
    redis: Redis,
    keys: StreamKeys,
    campaign: str,
    ine: str,
    as_of: str | None,
    establishments: Mapping[str, str],
    keyring: Keyring,
    show_time: Callable[[datetime], str] = datetime.isoformat,
) -> dict[str, Any] | None:
    """The student's timeline and bonus as of `as_of` (None: now); None if the log has no such student.
    `keyring` opens the student's personal fields (ErasedKeyring(): shown as erased)."""
    wanted = parse_as_of(as_of)
    key = keys.student(campaign, ine)
    history: list[LoggedEvent] = []
    unreadable: list[dict[str, str]] = []
    for entry_id, fields in await _entries(redis, key):
        logged = read_logged(key, entry_id, fields, keyring)
        if isinstance(logged, LoggedEvent):
            history.append(logged)
        else:
            reason = logged or f"type d'événement inconnu : {fields.get('event_type')}"
            unreadable.append({"position": entry_id, "reason": reason})
    if not history and not unreadable:
        return None
    cut = await resolve_cut(redis, keys, campaign, wanted, history)
    report = student_report(
        ine=ine,
        campaign=campaign,
        as_of=wanted,
        cut=cut,
        history=history,
        rectorat=await _rectorat_events(redis, keys),
        establishments=establishments,
        show_time=show_time,
    )
    return {**report, "unreadable": unreadable}
