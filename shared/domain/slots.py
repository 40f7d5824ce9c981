"""A lycée's interview slots (SPEC §7): the fold of one slot's stream, and rules 9 (capacity) and 10 (overlap).

A slot's stream holds its opening and closing and every event that takes or frees one of its places (a
booking, a cancellation, a move in or out), each appended in the one script conditioned on this stream's
version and the student's: a decision on a slot's places is a pure function of the two histories, and
no other write can slip in between the read and the append.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from shared.contracts.events import (
    Event,
    InterviewCancelled,
    InterviewRescheduled,
    InterviewScheduled,
    InterviewSlotClosed,
    InterviewSlotOpened,
)
from shared.domain.errors import Refusal, RuleViolation
from shared.domain.student_file import FileModel, Interview, StudentFile

FREE_TIME_MINUTES = 30  # an interview at a free time (no slot) lasts 30 minutes (rule 10)


class SlotFile(FileModel):
    slot_id: str
    opened: bool = False
    lycee_uai: str | None = None
    formation_code: str | None = None
    starts_at: datetime | None = None
    duration_minutes: int = 0
    capacity: int = 0
    mode: str | None = None
    place: str | None = None
    closed: bool = False
    bookings: dict[str, str] = {}  # interview_id -> INE: the places taken (scheduled or held, not cancelled)

    @property
    def taken(self) -> int:
        return len(self.bookings)

    @property
    def free(self) -> int:
        return max(self.capacity - self.taken, 0)


def fold_slot(slot_id: str, events: Iterable[Event]) -> SlotFile:
    """The slot after its stream's events, in stream order."""
    slot = SlotFile(slot_id=slot_id)
    for event in events:
        p = event.payload
        match p:
            case InterviewSlotOpened() if p.slot_id == slot_id:
                slot = slot.model_copy(
                    update={
                        "opened": True,
                        "lycee_uai": p.lycee_uai,
                        "formation_code": p.formation_code,
                        "starts_at": p.starts_at,
                        "duration_minutes": p.duration_minutes,
                        "capacity": p.capacity,
                        "mode": p.mode,
                        "place": p.place,
                    }
                )
            case InterviewSlotClosed() if p.slot_id == slot_id:
                slot = slot.model_copy(update={"closed": True})
            case InterviewScheduled() if p.slot_id == slot_id:
                slot = _booked(slot, p.interview_id, event.student_ine or "")
            case InterviewRescheduled():
                slot = _booked(slot, p.interview_id, event.student_ine or "") if p.slot_id == slot_id else _freed(
                    slot, p.interview_id
                )
            case InterviewCancelled():
                slot = _freed(slot, p.interview_id)
    return slot


def _booked(slot: SlotFile, interview_id: str, ine: str) -> SlotFile:
    return slot.model_copy(update={"bookings": {**slot.bookings, interview_id: ine}})


def _freed(slot: SlotFile, interview_id: str) -> SlotFile:
    return slot.model_copy(update={"bookings": {k: v for k, v in slot.bookings.items() if k != interview_id}})


class SlotNotFound(Refusal):
    """404: no such slot (or, for its lycée's commands, one of another lycée)."""

    status = 404

    def __init__(self) -> None:
        super().__init__("slot_not_found", "Créneau introuvable.")


def require_slot(slot: SlotFile | None) -> SlotFile:
    """A slot the request names must exist: 404 `slot_not_found`."""
    if slot is None or not slot.opened:
        raise SlotNotFound()
    return slot


def require_place(slot: SlotFile) -> None:
    """Rule 9: a closed slot takes no one; a slot's bookings never exceed its capacity."""
    if slot.closed:
        raise RuleViolation("slot_closed", "Ce créneau est fermé : choisissez-en un autre.")
    if slot.taken >= slot.capacity:
        raise RuleViolation(
            "slot_full", f"Ce créneau est complet ({slot.capacity} place(s)) : choisissez-en un autre."
        )


def duration_of(interview: Interview, slots: Mapping[str, SlotFile]) -> int:
    if interview.slot_id and interview.slot_id in slots:
        return slots[interview.slot_id].duration_minutes
    return FREE_TIME_MINUTES


def require_no_overlap(
    file: StudentFile, starts_at: datetime, minutes: int, slots: Mapping[str, SlotFile], moving: str | None = None
) -> None:
    """Rule 10: the student's active interviews (scheduled or held, the one `moving` apart) never overlap."""
    ends_at = starts_at + timedelta(minutes=minutes)
    for other in file.interviews.values():
        if other.interview_id == moving or other.status == "cancelled" or other.scheduled_at is None:
            continue
        other_ends = other.scheduled_at + timedelta(minutes=duration_of(other, slots))
        if other.scheduled_at < ends_at and starts_at < other_ends:
            raise RuleViolation(
                "interview_overlap",
                f"L'élève a déjà un entretien à ce moment-là ({other.lycee_uai}, formation {other.formation_code}).",
            )


def slots_read(file: StudentFile) -> list[str]:
    """The slots of the student's active interviews: their lengths, for rule 10 (a slot's length never changes)."""
    return sorted({i.slot_id for i in file.interviews.values() if i.slot_id and i.status != "cancelled"})
