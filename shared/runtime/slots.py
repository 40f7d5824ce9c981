"""The slot streams a command reads and is conditioned on (SPEC §7 rule 9), shared by both services' handlers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from shared.contracts.events import Event
from shared.contracts.streams import StreamKeys
from shared.domain.slots import SlotFile, fold_slot, slots_read
from shared.domain.student_file import StudentFile
from shared.runtime.commands import Related, RelatedOf


def slot_id_of(key: str) -> str:
    return key.rsplit(":slot:", 1)[-1]


def slot_files(histories: Mapping[str, list[Event]]) -> dict[str, SlotFile]:
    """The slots folded from their streams' events, by slot id."""
    return {slot_id_of(key): fold_slot(slot_id_of(key), events) for key, events in histories.items()}


def related_slots(keys: StreamKeys, campaign: str, conditioned: Callable[[StudentFile], Iterable[str | None]]) -> RelatedOf:
    """What the command reads besides the student's stream: the slots whose places it takes or frees
    (`conditioned(file)`, their ids; None for a free time), on which its append is conditioned, and the
    slots of the student's other active interviews, read for their length (rule 10; it never changes)."""

    def related(file: StudentFile) -> Related:
        mine = [keys.slot(campaign, s) for s in dict.fromkeys(conditioned(file)) if s]
        others = [keys.slot(campaign, s) for s in slots_read(file)]
        return Related(conditioned=tuple(mine), read=tuple(k for k in others if k not in mine))

    return related
