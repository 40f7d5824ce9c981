"""The events of SPEC §3: the envelope, one frozen model per payload, and reading them back.

Wire names (`event_type`, `schema_version`) are explicit and stable, never a
Python path. Older payload versions are brought up to date by upcasters keyed
by (event_type, schema_version) before validation.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Callable, ClassVar, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from shared.contracts.identifiers import INE, UAI, Campaign, FormationCode
from shared.contracts.personal import (
    ERASED,
    SEALED,
    Keyring,
    SealedWithoutKeys,
    associated_data,
    has_personal_fields,
    merge_personal,
    split_personal,
)

Role = Literal["principal", "referent", "lycee_staff", "proviseur", "rectorat", "eleve"]
CollegeAvis = Literal["reserve", "assez_favorable", "favorable"]
LyceeAvis = Literal["reserve", "favorable"]
InterviewMode = Literal["presentiel", "distanciel"]
Assessment = Literal["insuffisante", "fragile", "satisfaisante", "tres_satisfaisante"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("caractères de contrôle interdits")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: no such instant in UTC
        raise ValueError("date hors des limites représentables") from None


# The same rule for the OpenAPI documents: no control character, and something besides spaces.
_ALLOWED = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
TEXT_PATTERN = rf"^{_ALLOWED}*[^\s\x00-\x08\x0b\x0c\x0e-\x1f\x7f]{_ALLOWED}*$"


def Text(max_length: int) -> Any:  # noqa: N802 - reads as a type in field declarations
    """A trimmed, non-empty text of at most `max_length` characters without control characters."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length),
        AfterValidator(_no_control_characters),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": max_length, "pattern": TEXT_PATTERN}),
    ]


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
Name = Text(100)
Reason = Text(500)


class Contract(BaseModel):
    """Base of every contract model: frozen, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(Contract):
    user_id: Text(128)
    role: Role
    uai: UAI | None = None


class Referent(Contract):
    user_id: Text(128)
    name: Name
    email: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    ]

    @field_validator("email", mode="wrap")
    @classmethod
    def _erased_on_read(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> str:
        """An erased address (its student's key destroyed) is read back as ERASED, never accepted on input."""
        if value == ERASED and (info.context or {}).get("reading_log"):
            return value
        return handler(value)


class Report(Contract):
    motivation: Assessment
    chances_of_success: Assessment
    advice: Text(2000)


class Payload(Contract):
    """Base of the payloads; each subclass names its wire type and current version."""

    EVENT_TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1


class CampaignOpened(Payload):
    EVENT_TYPE = "CampaignOpened"
    bonus_points: int = Field(default=2500, ge=0, le=100_000)
    closes_at: UtcDatetime | None = None


class CampaignCalendarSet(Payload):
    """The campaign's dates (SPEC §7), set by the rectorat on the rectorat stream like CampaignOpened: each
    event states the whole calendar (a date left out is none); the latest counts."""

    EVENT_TYPE = "CampaignCalendarSet"
    registrations_until: UtcDatetime | None = None
    interviews_from: UtcDatetime | None = None
    interviews_until: UtcDatetime | None = None
    lycee_avis_until: UtcDatetime | None = None
    closes_at: UtcDatetime | None = None


class StudentRegistered(Payload):
    EVENT_TYPE = "StudentRegistered"
    college_uai: UAI
    last_name: Name
    first_name: Name
    class_name: Text(40)
    referent: Referent


class ReferentReassigned(Payload):
    EVENT_TYPE = "ReferentReassigned"
    referent: Referent


# A slot's id, made by evaluation; it names the slot's stream, so letters, digits, '-' and '_' only.
SlotId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class InterviewScheduled(Payload):
    EVENT_TYPE = "InterviewScheduled"
    SCHEMA_VERSION = 2  # v2 names the slot booked (SPEC §7); see upcast_interview_scheduled_v1
    interview_id: Text(64)
    lycee_uai: UAI
    formation_code: FormationCode
    scheduled_at: UtcDatetime
    mode: InterviewMode
    remote_equipment_ready: bool = False
    slot_id: SlotId | None = None  # None: a free time, as every v1 event
    room: Text(120) | None = None  # distanciel: the collège's room the student follows it in (SPEC §6); v1: None


class InterviewRescheduled(Payload):
    """The interview moved to another time or slot (SPEC §7), in one event that frees its old slot's place."""

    EVENT_TYPE = "InterviewRescheduled"
    interview_id: Text(64)
    lycee_uai: UAI
    formation_code: FormationCode
    scheduled_at: UtcDatetime
    slot_id: SlotId | None = None
    mode: InterviewMode
    room: Text(120) | None = None  # distanciel: the collège's room, as InterviewScheduled.room (SPEC §6)


class InterviewSlotOpened(Payload):
    """A lycée receives students for one formation at one time (SPEC §7). Not about a student: it goes to
    evaluation's stream and the slot's own stream, whose version every booking of it is conditioned on."""

    EVENT_TYPE = "InterviewSlotOpened"
    SLOT_STREAM: ClassVar[bool] = True
    slot_id: SlotId
    lycee_uai: UAI
    formation_code: FormationCode
    starts_at: UtcDatetime
    duration_minutes: int = Field(ge=10, le=120)
    capacity: int = Field(ge=1, le=50)
    mode: InterviewMode
    place: Text(200)  # the room, or how the video link is given


class InterviewSlotClosed(Payload):
    EVENT_TYPE = "InterviewSlotClosed"
    SLOT_STREAM: ClassVar[bool] = True
    slot_id: SlotId
    lycee_uai: UAI
    formation_code: FormationCode


class InterviewCancelled(Payload):
    EVENT_TYPE = "InterviewCancelled"
    interview_id: Text(64)
    lycee_uai: UAI
    formation_code: FormationCode
    reason: Reason


class CollegeAvisGiven(Payload):
    EVENT_TYPE = "CollegeAvisGiven"
    SCHEMA_VERSION = 2  # v1 carried the avis as the label people read; see upcast_college_avis_v1
    college_uai: UAI
    avis: CollegeAvis
    comment: Text(600)


class StudentWithdrawn(Payload):
    EVENT_TYPE = "StudentWithdrawn"
    reason: Reason


class StudentReinstated(Payload):
    EVENT_TYPE = "StudentReinstated"
    reason: Reason


class InterviewHeld(Payload):
    EVENT_TYPE = "InterviewHeld"
    interview_id: Text(64)
    lycee_uai: UAI
    formation_code: FormationCode
    held_at: UtcDatetime
    mode: InterviewMode
    college_avis_present: bool
    report: Report


class StudentForgotten(Payload):
    """The rectorat erased the student's personal data (RGPD): their key is destroyed, so every
    sealed field of their events reads ERASED from now on; the bonus and the audit trail stand."""

    EVENT_TYPE = "StudentForgotten"
    reason: Reason  # the request it answers (never personal data: it stays in clear)


class StudentAccessIssued(Payload):
    """The principal or the référent issued the student a personal access code to their space (SPEC §6): who and
    until when. Never the code: it is kept only as a salted hash, outside the log
    (services/registration/access_codes.py). A new code revokes the previous one."""

    EVENT_TYPE = "StudentAccessIssued"
    issued_by: Text(128)  # the user id of who issued it
    expires_at: UtcDatetime


class InterviewReportCorrected(Payload):
    """The lycée corrected a held interview's report (SPEC §7), until the lycée avis: the latest counts."""

    EVENT_TYPE = "InterviewReportCorrected"
    interview_id: Text(64)
    lycee_uai: UAI
    formation_code: FormationCode
    report: Report


class LyceeAvisGiven(Payload):
    EVENT_TYPE = "LyceeAvisGiven"
    interview_id: Text(64)
    lycee_uai: UAI
    formation_code: FormationCode
    avis: LyceeAvis


# A question of the guided motivation letter's template (shared/contracts/letter.py): a stable slug.
QuestionId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
MAX_LETTER_ANSWERS = 20  # the template's questions are fewer; the bound keeps a body small
LETTER_ANSWER_MAX = 3000  # the template bounds each answer further (its max_length)


class MotivationLetterSaved(Payload):
    """The student saved their guided motivation letter for one vœu (SPEC §6): the answers so far, and
    whether they are ready to show it. `answers` are personal data (sealed); an erased letter reads {}."""

    EVENT_TYPE = "MotivationLetterSaved"
    lycee_uai: UAI
    formation_code: FormationCode
    template_version: int = Field(default=1, ge=1, le=1000)
    answers: Annotated[dict[QuestionId, Text(LETTER_ANSWER_MAX)], Field(max_length=MAX_LETTER_ANSWERS)]
    ready: bool

    @field_validator("answers", mode="wrap")
    @classmethod
    def _erased_on_read(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> dict:
        """Erased answers (the student's key destroyed) are read back as none, never accepted on input."""
        if value == ERASED and (info.context or {}).get("reading_log"):
            return {}
        return handler(value)


class InterviewPreparationUpdated(Payload):
    """The preparation checklist of one interview (the seed's list), ticked by the student or the référent;
    `equipment_ready` (the room and equipment at the collège) only for a distanciel interview."""

    EVENT_TYPE = "InterviewPreparationUpdated"
    interview_id: Text(64)
    itinerary_ready: bool
    letter_printed: bool
    materials_ready: bool
    equipment_ready: bool | None = None


PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.EVENT_TYPE: cls
    for cls in (
        CampaignOpened,
        CampaignCalendarSet,
        StudentRegistered,
        ReferentReassigned,
        InterviewScheduled,
        InterviewCancelled,
        CollegeAvisGiven,
        StudentWithdrawn,
        StudentReinstated,
        InterviewHeld,
        LyceeAvisGiven,
        StudentForgotten,
        StudentAccessIssued,
        MotivationLetterSaved,
        InterviewPreparationUpdated,
        InterviewRescheduled,
        InterviewSlotOpened,
        InterviewSlotClosed,
        InterviewReportCorrected,
    )
}


class Event(Contract):
    """The envelope of SPEC §3 around one payload."""

    event_id: UUID
    event_type: str
    schema_version: int = Field(ge=1)
    occurred_at: UtcDatetime
    recorded_at: UtcDatetime | None = None
    campaign: Campaign
    student_ine: INE | None = None
    actor: Actor
    payload: SerializeAsAny[Payload]

    def __init__(self, **data: Any) -> None:
        payload = data.get("payload")
        if isinstance(payload, Payload):
            data.setdefault("event_type", payload.EVENT_TYPE)
            data.setdefault("schema_version", payload.SCHEMA_VERSION)
        super().__init__(**data)

    @model_validator(mode="after")
    def _type_matches_payload(self) -> "Event":
        if (self.event_type, self.schema_version) != (self.payload.EVENT_TYPE, self.payload.SCHEMA_VERSION):
            raise ValueError(
                f"event_type/schema_version {self.event_type}/{self.schema_version} do not match the payload "
                f"{self.payload.EVENT_TYPE}/{self.payload.SCHEMA_VERSION}"
            )
        return self


# --- reading events back -------------------------------------------------------------

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UnknownEventType(ValueError):
    """An entry whose event type this code does not know (a newer producer): skip it."""


class UnreadableEntry(ValueError):
    """An entry that cannot be turned into an event (bad JSON, no upcaster, invalid payload)."""


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning payload version `from_version` into `from_version + 1`."""

    def register(fn: Upcaster) -> Upcaster:
        UPCASTERS[(event_type, from_version)] = fn
        return fn

    return register


def upcast(event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    target = PAYLOAD_TYPES[event_type].SCHEMA_VERSION
    while version < target:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise UnreadableEntry(f"no upcaster for {event_type} v{version}")
        payload = step(payload)
        version += 1
    if version > target:
        raise UnreadableEntry(f"{event_type} v{version} is newer than this code (v{target})")
    return payload


def _open_payload(fields: dict[str, str], event_type: str, keyring: Keyring | None) -> dict[str, Any]:
    """The entry's payload with its sealed personal fields put back (ERASED if the key is gone)."""
    payload = json.loads(fields["payload"])
    sealed = fields.get(SEALED)
    if not sealed:
        return payload  # in clear: written before sealing, or an event without personal fields
    if keyring is None:
        raise SealedWithoutKeys(f"{event_type} {fields.get('event_id')} is sealed and no keyring was given")
    campaign, ine = fields["campaign"], fields.get("student_ine", "")
    try:
        plain = keyring.open(campaign, ine, associated_data(fields["event_id"], event_type), sealed)
    except LookupError as exc:
        raise UnreadableEntry(f"{event_type}: {exc}") from exc
    return merge_personal(event_type, payload, None if plain is None else json.loads(plain))


def event_from_fields(fields: dict[str, str], keyring: Keyring | None = None) -> Event:
    """Turn a log entry's plain fields into an event, opening its sealed personal fields with
    `keyring` (needed only if the entry has some) and upcasting older payloads."""
    try:
        event_type = fields["event_type"]
        version = int(fields["schema_version"])
    except (KeyError, ValueError) as exc:
        raise UnreadableEntry(f"entry without a valid event_type/schema_version: {exc}") from exc
    payload_type = PAYLOAD_TYPES.get(event_type)
    if payload_type is None:
        raise UnknownEventType(event_type)
    try:
        payload = upcast(event_type, version, _open_payload(fields, event_type, keyring))
        return Event(
            event_id=fields["event_id"],
            event_type=event_type,
            schema_version=payload_type.SCHEMA_VERSION,
            occurred_at=fields["occurred_at"],
            recorded_at=fields.get("recorded_at") or None,
            campaign=fields["campaign"],
            student_ine=fields.get("student_ine") or None,
            actor=json.loads(fields["actor"]),
            payload=payload_type.model_validate(payload, context={"reading_log": True}),
        )
    except (UnreadableEntry, SealedWithoutKeys):
        raise
    except (KeyError, ValueError, TypeError) as exc:
        raise UnreadableEntry(f"{event_type}: {_without_values(exc)}") from None


def _without_values(exc: Exception) -> str:
    """Why an entry is unreadable, without the values it holds: the reason goes to the dead letters
    and the logs, which must never carry a student's personal fields."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
    if isinstance(exc, json.JSONDecodeError):
        return f"JSON invalide ({exc.msg}, position {exc.pos})"
    return type(exc).__name__ + (f" {exc}" if isinstance(exc, KeyError) else "")


def event_to_fields(event: Event, keyring: Keyring | None = None) -> dict[str, str]:
    """The plain, framework-neutral fields of an entry (SPEC §4), without the log's own fields.
    With a keyring, a student's personal fields are sealed (the `sealed` field); without one they
    are written in clear, as before sealing existed (kept for tests of that older format)."""
    payload = event.payload.model_dump_json()
    fields = {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "schema_version": str(event.schema_version),
        "student_ine": event.student_ine or "",
        "campaign": event.campaign,
        "occurred_at": event.occurred_at.isoformat(),
        "actor": event.actor.model_dump_json(),
        "payload": payload,
    }
    if keyring is not None and event.student_ine and has_personal_fields(event.event_type):
        clear, personal = split_personal(event.event_type, json.loads(payload))
        if personal:
            fields["payload"] = json.dumps(clear, ensure_ascii=False, separators=(",", ":"))
            fields[SEALED] = keyring.seal(
                event.campaign,
                event.student_ine,
                associated_data(fields["event_id"], event.event_type),
                json.dumps(personal, ensure_ascii=False, separators=(",", ":")).encode(),
            )
    return fields


# --- upcasters: one function per (event_type, older version), chained ----------------------

# v1's stored avis (the wording the principal read, lower-cased) -> v2's code. Wire values, not labels:
# the labels shown to people are shared/fr's COLLEGE_AVIS_LABELS.
COLLEGE_AVIS_V1_CODES = {"réservé": "reserve", "assez favorable": "assez_favorable", "favorable": "favorable"}


@upcaster("CollegeAvisGiven", 1)
def upcast_college_avis_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 stored the avis as the principal reads it ("réservé", "assez favorable", "favorable");
    v2 stores a stable code. A v1 entry that already holds a code keeps it."""
    avis = payload.get("avis")
    label = avis.strip().lower() if isinstance(avis, str) else avis
    return {**payload, "avis": COLLEGE_AVIS_V1_CODES.get(label, avis)}


@upcaster("InterviewScheduled", 1)
def upcast_interview_scheduled_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 knew no slots: every v1 interview was scheduled at a free time (slot_id None)."""
    return {**payload, "slot_id": None}
