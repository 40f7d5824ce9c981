"""A student's file: the fold of every event of one student, from every service.

Decisions fold the student's stream in order. Views receive the same events
through two service streams whose interleaving is arbitrary, so every field is
a register that keeps the value of the highest student version that wrote it:
the fold gives the same file whatever the order, and applying an event twice
changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict

from shared.contracts.events import (
    CampaignCalendarSet,
    CampaignOpened,
    CollegeAvisGiven,
    Event,
    InterviewCancelled,
    InterviewHeld,
    InterviewPreparationUpdated,
    InterviewReportCorrected,
    InterviewRescheduled,
    InterviewScheduled,
    LyceeAvisGiven,
    MotivationLetterSaved,
    Referent,
    ReferentReassigned,
    Report,
    StudentRegistered,
    StudentAccessIssued,
    StudentForgotten,
    StudentReinstated,
    StudentWithdrawn,
)
from shared.contracts.personal import ERASED
from shared.domain.calendar import FIELDS as CALENDAR_FIELDS, Calendar

InterviewStatus = Literal["scheduled", "cancelled", "held"]


class FileModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's shallow copy without its generic `copy.copy` of each slot: a fold copies the file at every
        event (the projection's commit, BENCHMARKS.md issue 16). The same result: the fields updated as given,
        not validated, and counted as set."""
        if deep or self.__pydantic_extra__ is not None or self.__pydantic_private__ is not None:
            return super().model_copy(update=update, deep=deep)
        if not update:
            return _made(type(self), dict(self.__dict__), set(self.__pydantic_fields_set__))
        return _made(type(self), {**self.__dict__, **update}, self.__pydantic_fields_set__.union(update))


_setattr = object.__setattr__  # a frozen model's own slots, set once on a new copy
M = TypeVar("M", bound=FileModel)


def _made(cls: type[M], fields: dict[str, Any], fields_set: set[str]) -> M:
    """A file model of these fields, not validated (they come from a model and the log's validated events)."""
    made = cls.__new__(cls)
    _setattr(made, "__dict__", fields)
    _setattr(made, "__pydantic_fields_set__", fields_set)
    _setattr(made, "__pydantic_extra__", None)
    _setattr(made, "__pydantic_private__", None)
    return made


class Draft:
    """A file model's fields changed in place, private to one fold: frozen once into a new model (as
    `model_copy` makes one: not validated, the fields changed counted as set), instead of a copy per change.
    The model takes the draft's dict: a draft is not used after `freeze`."""

    __slots__ = ("model_class", "fields", "fields_set")

    def __init__(self, model: FileModel) -> None:
        self.model_class = type(model)
        self.fields = dict(model.__dict__)
        self.fields_set = set(model.__pydantic_fields_set__)

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def update(self, changes: Mapping[str, Any]) -> None:
        self.fields.update(changes)
        self.fields_set.update(changes)

    def freeze(self) -> FileModel:
        return _made(self.model_class, self.fields, self.fields_set)


class Interview(FileModel):
    interview_id: str
    lycee_uai: str
    formation_code: str
    scheduled_at: datetime | None = None
    mode: str | None = None
    slot_id: str | None = None  # the slot booked (SPEC §7), None for a free time
    room: str | None = None  # distanciel: the room at the collège (InterviewScheduled.room)
    schedule_version: int = 0  # the version that set scheduled_at, mode and slot_id (booked, then moved)
    report_version: int = 0  # the version that set the report (held, then corrected)
    remote_equipment_ready: bool = False
    status: InterviewStatus = "scheduled"
    status_version: int = 0
    held_at: datetime | None = None
    college_avis_present: bool | None = None
    report: Report | None = None
    cancel_reason: str | None = None

    @property
    def voeu(self) -> tuple[str, str]:
        return (self.lycee_uai, self.formation_code)


class AvisGiven(FileModel):
    version: int
    avis: str
    interview_id: str
    occurred_at: datetime
    user_id: str


class Letter(FileModel):
    """The latest save of the guided motivation letter for one vœu."""

    lycee_uai: str
    formation_code: str
    template_version: int = 1
    answers: dict[str, str] = {}
    ready: bool = False
    version: int
    saved_at: datetime

    @property
    def voeu(self) -> tuple[str, str]:
        return (self.lycee_uai, self.formation_code)


class Preparation(FileModel):
    """The latest state of one interview's preparation checklist, and who ticked it last."""

    interview_id: str
    itinerary_ready: bool = False
    letter_printed: bool = False
    materials_ready: bool = False
    equipment_ready: bool | None = None
    version: int
    updated_at: datetime
    updated_by_role: str

    def ready(self, mode: str | None) -> bool:
        """Every item ticked (the equipment too for a distanciel interview)."""
        done = self.itinerary_ready and self.letter_printed and self.materials_ready
        return done and (mode != "distanciel" or bool(self.equipment_ready))


class StudentFile(FileModel):
    ine: str
    campaign: str
    versions: tuple[int, ...] = ()  # student versions applied, sorted
    registered_version: int = 0
    college_uai: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    class_name: str | None = None
    referent: Referent | None = None
    referent_version: int = 0
    withdrawn: bool = False
    status_version: int = 0
    status_reason: str | None = None
    college_avis: str | None = None
    college_comment: str | None = None
    college_avis_at: datetime | None = None
    college_avis_version: int = 0
    interviews: dict[str, Interview] = {}
    lycee_avis: dict[str, tuple[AvisGiven, ...]] = {}  # "UAI:formation" -> every avis, by version
    erased_version: int = 0  # the version of StudentForgotten: personal fields read ERASED for good
    access_issued_at: datetime | None = None  # the latest StudentAccessIssued: a code given to the student (SPEC §6)
    access_expires_at: datetime | None = None
    access_version: int = 0
    letters: dict[str, Letter] = {}  # "UAI:formation" -> the letter's latest save
    preparations: dict[str, Preparation] = {}  # interview id -> the checklist's latest state

    @classmethod
    def model_validate_json(cls, json_data, **kwargs):
        """A stored file (a view's row, made by the fold) is read as the log is: an erased referent's
        address reads ERASED instead of failing the address check."""
        kwargs["context"] = {"reading_log": True, **(kwargs.get("context") or {})}
        return super().model_validate_json(json_data, **kwargs)

    @property
    def erased(self) -> bool:
        return self.erased_version > 0

    @property
    def version(self) -> int:
        return self.versions[-1] if self.versions else 0

    @property
    def registered(self) -> bool:
        return self.registered_version > 0

    @property
    def active(self) -> bool:
        return self.registered and not self.withdrawn

    def interviews_for(self, lycee_uai: str, formation_code: str) -> list[Interview]:
        return [i for i in self.interviews.values() if i.voeu == (lycee_uai, formation_code)]

    def active_interview(self, lycee_uai: str, formation_code: str) -> Interview | None:
        return next((i for i in self.interviews_for(lycee_uai, formation_code) if i.status == "scheduled"), None)

    def held_interview(self, lycee_uai: str, formation_code: str) -> Interview | None:
        return next((i for i in self.interviews_for(lycee_uai, formation_code) if i.status == "held"), None)

    @property
    def any_interview_held(self) -> bool:
        return any(i.status == "held" for i in self.interviews.values())

    def latest_lycee_avis(self, lycee_uai: str, formation_code: str) -> AvisGiven | None:
        history = self.lycee_avis.get(voeu_key(lycee_uai, formation_code))
        return history[-1] if history else None

    def letter_for(self, lycee_uai: str, formation_code: str) -> Letter | None:
        return self.letters.get(voeu_key(lycee_uai, formation_code))

    def voeux(self) -> list[tuple[str, str]]:
        """Every vœu the student has had an interview scheduled for, sorted."""
        return sorted({i.voeu for i in self.interviews.values()})


def voeu_key(lycee_uai: str, formation_code: str) -> str:
    return f"{lycee_uai}:{formation_code}"


def empty_file(campaign: str, ine: str) -> StudentFile:
    return StudentFile(ine=ine, campaign=campaign)


class FileDraft(Draft):
    """A student file folding events in place (`apply`), private to one call of `evolve` or `evolve_all`:
    the interviews it changes are drafts too, the other maps copied once on their first change, and the
    whole frozen once (`freeze`). The file it started from, and every model it holds, is never changed."""

    __slots__ = ("file", "new_versions", "interviews", "copied")

    def __init__(self, file: StudentFile) -> None:
        super().__init__(file)
        self.file = file
        self.new_versions: list[int] = []
        self.interviews: dict[str, Draft] = {}  # interview id -> the draft of an interview changed here
        self.copied: set[str] = set()  # the maps (letters, lycee_avis…) this draft already holds its own copy of

    def has(self, version: int) -> bool:
        return version in self.new_versions or version in self.file.versions

    def interview(self, interview_id: str, lycee_uai: str, formation_code: str) -> Draft:
        """The interview's draft, a new interview's if the file has none."""
        draft = self.interviews.get(interview_id)
        if draft is None:
            current = self.fields["interviews"].get(interview_id) or Interview(
                interview_id=interview_id, lycee_uai=lycee_uai, formation_code=formation_code, status_version=0
            )
            draft = self.interviews[interview_id] = Draft(current)
        self.fields_set.add("interviews")
        return draft

    def entries(self, name: str) -> dict:
        """The draft's own copy of the map `name` (letters, lycee_avis, preparations, interviews), to change."""
        if name not in self.copied:
            self.fields[name] = dict(self.fields[name])
            self.copied.add(name)
        self.fields_set.add(name)
        return self.fields[name]

    def freeze(self) -> StudentFile:
        """The file after every event applied: the very file it started from if none was new."""
        if not self.new_versions:
            return self.file
        if self.interviews:
            interviews = self.entries("interviews")
            for interview_id, draft in self.interviews.items():
                interviews[interview_id] = draft.freeze()
        self.update({"versions": tuple(sorted((*self.file.versions, *self.new_versions)))})
        file = _made(StudentFile, self.fields, self.fields_set)
        return without_personal_fields(file) if file.erased else file


def apply(draft: FileDraft, event: Event, version: int) -> None:
    """evolve's rules, written once: `event`, which made student version `version`, applied to the draft.
    Idempotent, order-free (a version already applied, in the file or earlier in the draft, changes nothing)."""
    if draft.has(version):
        return
    draft.new_versions.append(version)
    p = event.payload
    match p:
        case StudentRegistered():
            draft.update(
                {
                    "registered_version": version,
                    "college_uai": p.college_uai,
                    "last_name": p.last_name,
                    "first_name": p.first_name,
                    "class_name": p.class_name,
                }
            )
            if version > draft["referent_version"]:
                draft.update({"referent": p.referent, "referent_version": version})
        case ReferentReassigned() if version > draft["referent_version"]:
            draft.update({"referent": p.referent, "referent_version": version})
        case StudentWithdrawn() | StudentReinstated() if version > draft["status_version"]:
            draft.update(
                {"withdrawn": isinstance(p, StudentWithdrawn), "status_version": version, "status_reason": p.reason}
            )
        case CollegeAvisGiven() if version > draft["college_avis_version"]:
            draft.update(
                {
                    "college_avis": p.avis,
                    "college_comment": p.comment,
                    "college_avis_at": event.occurred_at,
                    "college_avis_version": version,
                }
            )
        case InterviewScheduled():
            interview = draft.interview(p.interview_id, p.lycee_uai, p.formation_code)
            update: dict[str, Any] = {"remote_equipment_ready": p.remote_equipment_ready}
            if version > interview["schedule_version"]:
                update |= {
                    "scheduled_at": p.scheduled_at,
                    "mode": p.mode,
                    "slot_id": p.slot_id,
                    "room": p.room,
                    "schedule_version": version,
                }
            if version > interview["status_version"]:
                update |= {"status": "scheduled", "status_version": version}
            interview.update(update)
        case InterviewCancelled():
            interview = draft.interview(p.interview_id, p.lycee_uai, p.formation_code)
            if version > interview["status_version"]:
                interview.update({"status": "cancelled", "status_version": version, "cancel_reason": p.reason})
        case InterviewRescheduled():
            interview = draft.interview(p.interview_id, p.lycee_uai, p.formation_code)
            if version > interview["schedule_version"]:
                interview.update(
                    {
                        "scheduled_at": p.scheduled_at,
                        "mode": p.mode,
                        "slot_id": p.slot_id,
                        "room": p.room,
                        "schedule_version": version,
                    }
                )
        case InterviewReportCorrected():
            interview = draft.interview(p.interview_id, p.lycee_uai, p.formation_code)
            if version > interview["report_version"]:
                interview.update({"report": p.report, "report_version": version})
        case InterviewHeld():
            interview = draft.interview(p.interview_id, p.lycee_uai, p.formation_code)
            update = {"held_at": p.held_at, "college_avis_present": p.college_avis_present}
            if version > interview["report_version"]:
                update |= {"report": p.report, "report_version": version}
            if version > interview["status_version"]:
                update |= {"status": "held", "status_version": version, "mode": interview["mode"] or p.mode}
            interview.update(update)
        case LyceeAvisGiven():
            key = voeu_key(p.lycee_uai, p.formation_code)
            given = AvisGiven(
                version=version,
                avis=p.avis,
                interview_id=p.interview_id,
                occurred_at=event.occurred_at,
                user_id=event.actor.user_id,
            )
            lycee_avis = draft.entries("lycee_avis")
            lycee_avis[key] = tuple(sorted((*lycee_avis.get(key, ()), given), key=lambda a: a.version))
        case MotivationLetterSaved():
            key = voeu_key(p.lycee_uai, p.formation_code)
            current = draft["letters"].get(key)
            if current is None or version > current.version:
                draft.entries("letters")[key] = Letter(
                    lycee_uai=p.lycee_uai,
                    formation_code=p.formation_code,
                    template_version=p.template_version,
                    answers=dict(p.answers),
                    ready=p.ready,
                    version=version,
                    saved_at=event.occurred_at,
                )
        case InterviewPreparationUpdated():
            current = draft["preparations"].get(p.interview_id)
            if current is None or version > current.version:
                draft.entries("preparations")[p.interview_id] = Preparation(
                    interview_id=p.interview_id,
                    itinerary_ready=p.itinerary_ready,
                    letter_printed=p.letter_printed,
                    materials_ready=p.materials_ready,
                    equipment_ready=p.equipment_ready,
                    version=version,
                    updated_at=event.occurred_at,
                    updated_by_role=event.actor.role,
                )
        case StudentAccessIssued() if version > draft["access_version"]:
            draft.update(
                {"access_issued_at": event.occurred_at, "access_expires_at": p.expires_at, "access_version": version}
            )
        case StudentForgotten():
            draft.update({"erased_version": version})
        case CampaignOpened():
            pass


def evolve(file: StudentFile, event: Event, version: int) -> StudentFile:
    """The file after `event`, which made student version `version`. Idempotent, order-free."""
    if version in file.versions:
        return file
    draft = FileDraft(file)
    apply(draft, event, version)
    return draft.freeze()


def evolve_all(file: StudentFile, events: Iterable[tuple[Event, int]]) -> StudentFile:
    """The file after every event (with the student version it made), as `evolve` one after the other
    would make it, in one draft frozen once: no copy of the file per event (the projection's page)."""
    draft = FileDraft(file)
    for event, version in events:
        apply(draft, event, version)
    return draft.freeze()


def _erased(value: str | None) -> str | None:
    return None if value is None else ERASED


def without_personal_fields(file: StudentFile) -> StudentFile:
    """The file with every personal field ERASED (SPEC: erasure), whatever order its events came in:
    an event read before the key was destroyed can never bring a name back into a view."""
    referent = file.referent
    if referent is not None:
        referent = Referent.model_validate(
            {"user_id": referent.user_id, "name": ERASED, "email": ERASED}, context={"reading_log": True}
        )
    interviews = {
        key: interview.model_copy(
            update={
                "cancel_reason": _erased(interview.cancel_reason),
                "report": interview.report.model_copy(update={"advice": ERASED}) if interview.report else None,
            }
        )
        for key, interview in file.interviews.items()
    }
    return file.model_copy(
        update={
            "last_name": _erased(file.last_name),
            "first_name": _erased(file.first_name),
            "class_name": _erased(file.class_name),
            "referent": referent,
            "status_reason": _erased(file.status_reason),
            "college_comment": _erased(file.college_comment),
            "interviews": interviews,
            "letters": {
                key: letter.model_copy(update={"answers": dict.fromkeys(letter.answers, ERASED)})
                for key, letter in file.letters.items()
            },
        }
    )


def without_draft_letters(file: StudentFile) -> StudentFile:
    """The file as a lycée may hold it: a letter's answers only once the student marked it ready (SPEC §6).
    Each letter keeps its version, so a later save still replaces it in whatever order it comes."""
    letters = {
        key: letter if letter.ready else letter.model_copy(update={"answers": {}})
        for key, letter in file.letters.items()
    }
    return file.model_copy(update={"letters": letters})


def ready_letter(file: StudentFile, lycee_uai: str, formation_code: str) -> dict[str, str] | None:
    """The answers of the vœu's letter once marked ready (what the lycée reads), else None."""
    letter = file.letter_for(lycee_uai, formation_code)
    return dict(letter.answers) if letter is not None and letter.ready else None


def fold(campaign: str, ine: str, events: list[tuple[Event, int]]) -> StudentFile:
    return evolve_all(empty_file(campaign, ine), events)


class CampaignFile(FileModel):
    """What the rectorat stream says of one campaign."""

    campaign: str
    opened: bool = False
    bonus_points: int = 0
    closes_at: datetime | None = None
    calendar: Calendar = Calendar()  # SPEC §7: the latest CampaignCalendarSet (its closes_at is the one above)

    def is_open(self, now: datetime) -> bool:
        return self.opened and (self.closes_at is None or now < self.closes_at)


def fold_campaign(campaign: str, events: list[Event]) -> CampaignFile:
    file = CampaignFile(campaign=campaign)
    for event in events:
        if event.campaign == campaign and isinstance(event.payload, CampaignOpened):
            file = file.model_copy(
                update={"opened": True, "bonus_points": event.payload.bonus_points, "closes_at": event.payload.closes_at}
            )
        elif event.campaign == campaign and isinstance(event.payload, CampaignCalendarSet):
            dates = event.payload.model_dump(include=set(CALENDAR_FIELDS))
            file = file.model_copy(update={"calendar": Calendar(**dates), "closes_at": dates["closes_at"]})
    return file
