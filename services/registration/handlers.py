"""The collège's commands, one handler each, shared by the API and the pages.

A handler takes the command (the request's validated body), who acts and the service's runtime: it
checks the reference data and the caller's rights, then runs the domain's decision on the student's
history and appends at the version read (`shared.runtime.commands`). No HTTP request reaches it.
The order of the checks is the API's contract: reference data (422), role and establishment (403),
then the rules on the student's history (404, 409).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta

from pydantic import ConfigDict, model_validator

from shared.contracts.events import SlotId
from shared.domain.bonus import total_bonus_points, voeu_bonuses
from shared.domain.student_file import StudentFile
from shared.runtime.slots import related_slots, slot_files
from services.registration import access_codes, domain, queries
from pydantic import Field

from shared.contracts.events import (
    LETTER_ANSWER_MAX,
    MAX_LETTER_ANSWERS,
    TEXT_PATTERN,
    CollegeAvis,
    InterviewMode,
    QuestionId,
    Referent,
    Text,
)
from shared.contracts.letter import default_letter_template
from shared.contracts.identifiers import INE, UAI, Campaign, FormationCode
from shared.runtime.commands import Outcome
from shared.runtime.http.app import Runtime
from shared.runtime.http.auth import Principal
from shared.runtime.http.guard import require_own_establishment, require_role
from shared.runtime.http.openapi import LyceeUAI
from shared.runtime.http.requests import Time, WriteBody, require_college, require_formation

COLLEGE_ROLES = ("principal", "referent")


class RegisterBody(WriteBody):
    student_ine: INE
    campaign: Campaign | None = None
    college_uai: UAI
    last_name: Text(100)
    first_name: Text(100)
    class_name: Text(40)
    referent: Referent


class ReferentBody(WriteBody):
    referent: Referent


def _one_of(*shapes: dict) -> Callable[[dict], None]:
    """The body's OpenAPI schema says which fields go together (the model validator's rule), and that a field
    left out is absent, never null: the document accepts exactly what the API accepts."""

    def edit(schema: dict) -> None:
        for prop in schema.get("properties", {}).values():
            prop.pop("default", None) if prop.get("default", 0) is None else None
        schema["oneOf"] = list(shapes)

    return edit


def _absent(*names: str) -> dict:
    return {"not": {"anyOf": [{"required": [name]} for name in names]}}


def _free_time(*required: str) -> tuple[dict, dict]:
    """A free time's two shapes (SPEC §6 and domain._require_room_rules): distanciel names the collège's room,
    présentiel names none — so a body the document calls valid is never refused for its room."""
    return (
        {"required": [*required, "room"], "properties": {"mode": {"const": "distanciel"}}, **_absent("slot_id")},
        {"required": list(required), "properties": {"mode": {"const": "presentiel"}}, **_absent("slot_id", "room")},
    )


class ScheduleBody(WriteBody):
    """A slot (SPEC §7: its lycée, formation, time and mode), or a free time with all four."""

    model_config = ConfigDict(json_schema_extra=_one_of(
        {"required": ["slot_id"]},
        *_free_time("lycee_uai", "formation_code", "scheduled_at", "mode"),
    ))

    # Each optional field is left out, never null (a null is refused as the wrong type).
    slot_id: SlotId = None  # type: ignore[assignment]
    lycee_uai: LyceeUAI = None  # type: ignore[assignment]
    formation_code: FormationCode = None  # type: ignore[assignment]
    scheduled_at: Time = None  # type: ignore[assignment]
    mode: InterviewMode = None  # type: ignore[assignment]
    remote_equipment_ready: bool = False
    room: Text(120) = Field(None, description="Distanciel : la salle du collège où l'élève suit l'entretien "
                                             "(obligatoire pour un horaire libre en distanciel)")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _a_slot_or_a_free_time(self) -> "ScheduleBody":
        if self.slot_id is None:
            _require(self, "lycee_uai", "formation_code", "scheduled_at", "mode")
        return self


class RescheduleBody(WriteBody):
    """The vœu whose interview moves, and where to: a slot, or a free time and its mode (SPEC §7)."""

    model_config = ConfigDict(json_schema_extra=_one_of(
        {"required": ["slot_id"], **_absent("scheduled_at", "mode")},
        *_free_time("scheduled_at", "mode"),
    ))

    lycee_uai: LyceeUAI
    formation_code: FormationCode
    slot_id: SlotId = None  # type: ignore[assignment]
    scheduled_at: Time = None  # type: ignore[assignment]
    mode: InterviewMode = None  # type: ignore[assignment]
    room: Text(120) = Field(None, description="Distanciel : la salle du collège où l'élève suit l'entretien "
                                             "(obligatoire pour un horaire libre en distanciel)")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _a_slot_or_a_free_time(self) -> "RescheduleBody":
        if self.slot_id is None:
            _require(self, "scheduled_at", "mode")
        elif self.scheduled_at is not None or self.mode is not None:
            raise ValueError("Un créneau, ou une date et un mode : pas les deux.")
        return self


def _require(body: WriteBody, *names: str) -> None:
    missing = [name for name in names if getattr(body, name) is None]
    if missing:
        raise ValueError(f"Sans créneau (slot_id), il faut : {', '.join(missing)}.")


class CancelBody(WriteBody):
    lycee_uai: LyceeUAI
    formation_code: FormationCode
    reason: Text(500)


class CollegeAvisBody(WriteBody):
    college_uai: UAI
    avis: CollegeAvis
    comment: Text(600)


class ReasonBody(WriteBody):
    reason: Text(500)


def _template_answers(schema: dict) -> None:
    """The OpenAPI document says what the template accepts: one optional answer per question, each within its
    question's length, no other key (check_letter holds the same at run time). Read when the document is made."""
    template = default_letter_template()
    schema.pop("additionalProperties", None)
    schema.pop("propertyNames", None)
    schema.pop("patternProperties", None)
    schema["properties"] = {
        q.id: {"type": "string", "minLength": 1, "maxLength": q.max_length, "pattern": TEXT_PATTERN,
               "title": q.prompt, "description": q.help}
        for q in template.questions
    }
    schema["additionalProperties"] = False
    schema["description"] = (
        f"Les réponses aux questions du modèle (version {template.version}, GET /api/letter-template), par "
        "identifiant de question ; une lettre marquée prête (`ready`) répond à toutes (sinon 409 letter_incomplete)."
    )


class LetterBody(WriteBody):
    lycee_uai: LyceeUAI
    formation_code: FormationCode
    answers: dict[QuestionId, Text(LETTER_ANSWER_MAX)] = Field(
        default_factory=dict, max_length=MAX_LETTER_ANSWERS, json_schema_extra=_template_answers
    )
    ready: bool = False


class PreparationBody(WriteBody):
    itinerary_ready: bool
    letter_printed: bool
    materials_ready: bool
    equipment_ready: bool | None = None  # the room and equipment at the collège: a distanciel interview's only


async def _run(
    rt: Runtime, who: Principal, action: str, ine: str, campaign: str | None, body: WriteBody, command: domain.Command,
    slots_of: Callable[[StudentFile], Iterable[str | None]] | None = None,
) -> Outcome:
    if slots_of is None:
        return await rt.command(
            who, action, ine, campaign, body, lambda file, camp, now: domain.decide(file, camp, now, command, who.uai)
        )
    # SPEC §7 rule 9: the slots whose places the command takes or frees are read with the student's history
    # and the append is conditioned on their versions too (one script); the others give their lengths.
    return await rt.command(
        who, action, ine, campaign, body,
        lambda file, camp, now, streams: domain.decide(file, camp, now, command, who.uai, slot_files(streams)),
        related_slots(rt.keys, campaign or rt.settings.campaign, slots_of),
    )


def _slot_of(lycee_uai: str, formation_code: str) -> Callable[[StudentFile], list[str | None]]:
    """The slot of the vœu's scheduled interview, if it is in one: the place a cancellation or a move frees."""
    return lambda file: [i.slot_id for i in [file.active_interview(lycee_uai, formation_code)] if i]


async def register(rt: Runtime, who: Principal, body: RegisterBody) -> Outcome:
    require_college(rt.reference, body.college_uai)
    require_role(who, "principal")
    require_own_establishment(who, body.college_uai, "college_uai")
    command = domain.Register(body.college_uai, body.last_name, body.first_name, body.class_name, body.referent)
    return await _run(rt, who, "register", body.student_ine, body.campaign, body, command)


async def reassign_referent(
    rt: Runtime, who: Principal, ine: str, body: ReferentBody, campaign: str | None = None
) -> Outcome:
    require_role(who, "principal")
    return await _run(rt, who, "referent", ine, campaign, body, domain.ReassignReferent(body.referent))


async def schedule_interview(
    rt: Runtime, who: Principal, ine: str, body: ScheduleBody, campaign: str | None = None
) -> Outcome:
    if body.lycee_uai is not None and body.formation_code is not None:
        require_formation(rt.reference, body.lycee_uai, body.formation_code)
    require_role(who, *COLLEGE_ROLES)
    command = domain.ScheduleInterview(
        interview_id=str(uuid.uuid4()),  # made here: the domain stays pure
        lycee_uai=body.lycee_uai,
        formation_code=body.formation_code,
        scheduled_at=body.scheduled_at,
        mode=body.mode,
        remote_equipment_ready=body.remote_equipment_ready,
        slot_id=body.slot_id,
        room=body.room,
    )
    return await _run(rt, who, "schedule", ine, campaign, body, command, lambda file: [body.slot_id])


async def reschedule_interview(
    rt: Runtime, who: Principal, ine: str, body: RescheduleBody, campaign: str | None = None
) -> Outcome:
    """SPEC §7: one InterviewRescheduled, appended on the student's, the old slot's and the new slot's streams."""
    require_formation(rt.reference, body.lycee_uai, body.formation_code)
    require_role(who, *COLLEGE_ROLES)
    command = domain.RescheduleInterview(
        body.lycee_uai, body.formation_code, body.slot_id, body.scheduled_at, body.mode, room=body.room
    )
    old_slot = _slot_of(body.lycee_uai, body.formation_code)
    return await _run(
        rt, who, "reschedule", ine, campaign, body, command, lambda file: [*old_slot(file), body.slot_id]
    )


async def cancel_interview(
    rt: Runtime, who: Principal, ine: str, body: CancelBody, campaign: str | None = None
) -> Outcome:
    require_formation(rt.reference, body.lycee_uai, body.formation_code)
    require_role(who, *COLLEGE_ROLES)
    command = domain.CancelInterview(body.lycee_uai, body.formation_code, body.reason)
    return await _run(rt, who, "cancel", ine, campaign, body, command, _slot_of(body.lycee_uai, body.formation_code))


async def give_college_avis(
    rt: Runtime, who: Principal, ine: str, body: CollegeAvisBody, campaign: str | None = None
) -> Outcome:
    require_college(rt.reference, body.college_uai)
    require_role(who, "principal")
    require_own_establishment(who, body.college_uai, "college_uai")
    command = domain.GiveCollegeAvis(body.college_uai, body.avis, body.comment)
    return await _run(rt, who, "college-avis", ine, campaign, body, command)


async def withdraw(rt: Runtime, who: Principal, ine: str, body: ReasonBody, campaign: str | None = None) -> Outcome:
    require_role(who, "principal")
    return await _run(rt, who, "withdraw", ine, campaign, body, domain.Withdraw(body.reason))


async def reinstate(rt: Runtime, who: Principal, ine: str, body: ReasonBody, campaign: str | None = None) -> Outcome:
    require_role(who, "principal")
    return await _run(rt, who, "reinstate", ine, campaign, body, domain.Reinstate(body.reason))


async def save_letter(rt: Runtime, who: Principal, body: LetterBody, campaign: str | None = None) -> Outcome:
    """The student saves their own letter for one vœu (SPEC §6): the actor is the student, the file theirs."""
    require_formation(rt.reference, body.lycee_uai, body.formation_code)
    template = default_letter_template()
    domain.check_letter(template, body.answers)
    require_role(who, "eleve")
    command = domain.SaveLetter(
        body.lycee_uai, body.formation_code, template.version, dict(body.answers), body.ready,
        tuple(q.id for q in template.questions),
    )
    return await _run(rt, who, "letter", who.ine, campaign, body, command)


async def update_preparation(
    rt: Runtime, who: Principal, ine: str | None, interview_id: str, body: PreparationBody, campaign: str | None = None
) -> Outcome:
    """The preparation checklist of one interview: ticked by the student (their own file: `ine` is theirs,
    whatever was asked) or by the collège's référent or principal."""
    require_role(who, "eleve", *COLLEGE_ROLES)
    student = who.ine if who.role == "eleve" else ine
    command = domain.UpdatePreparation(
        interview_id, body.itinerary_ready, body.letter_printed, body.materials_ready, body.equipment_ready
    )
    return await _run(rt, who, f"preparation:{interview_id}", student, campaign, body, command)


async def issue_access_code(rt: Runtime, who: Principal, ine: str, campaign: str | None = None) -> tuple[Outcome, str]:
    """A new personal access code for a student of the caller's collège (SPEC §6): StudentAccessIssued in the
    log (who, until when), then the code's hash outside it, replacing (so revoking) the previous one. The code
    is returned once, to be handed to the student; nothing keeps it. Every call is a new code (no event_id:
    a retry could not give back a code nobody kept)."""
    require_role(who, *COLLEGE_ROLES)
    command = domain.IssueAccess(who.user_id, timedelta(days=access_codes.CODE_DAYS))
    code = access_codes.new_code()
    outcome = await _run(rt, who, "access-code", ine, campaign, WriteBody(), command)
    event = outcome.event
    await asyncio.to_thread(
        access_codes.store_code, rt.engine, campaign=event.campaign, ine=ine, college_uai=who.uai, code=code,
        issued_by=who.user_id, issued_at=event.occurred_at, expires_at=event.payload.expires_at,
    )
    return outcome, code


# --- Reads shared by the API and the pages -------------------------------------------------------------


def _interview_order(interview) -> tuple[str, str]:
    return (interview.scheduled_at.isoformat() if interview.scheduled_at else "", interview.interview_id)


def _lycee_avis(file: StudentFile, interview) -> str | None:
    """The latest lycée avis of a held interview's vœu (None before it is given, or for an interview not held)."""
    latest = file.latest_lycee_avis(*interview.voeu) if interview.status == "held" else None
    return latest.avis if latest else None


def progress(file: StudentFile, bonus_points: int) -> dict:
    """One student's row in "Mes élèves"."""
    bonuses = voeu_bonuses(file, bonus_points)
    return {
        "ine": file.ine,
        "campaign": file.campaign,
        "last_name": file.last_name,
        "first_name": file.first_name,
        "class_name": file.class_name,
        "status": "withdrawn" if file.withdrawn else "active",
        "referent": file.referent.model_dump(mode="json") if file.referent else None,
        "college_avis": file.college_avis,
        "college_comment": file.college_comment,
        "interviews": [
            {
                "interview_id": i.interview_id,
                "lycee_uai": i.lycee_uai,
                "formation_code": i.formation_code,
                "scheduled_at": i.scheduled_at.isoformat() if i.scheduled_at else None,
                "mode": i.mode,
                "status": i.status,
                "college_avis_present": i.college_avis_present,
                # once held, what the lycée wrote "to advise the student" reaches the collège too (SPEC §6)
                "report": i.report.model_dump(mode="json") if i.status == "held" and i.report else None,
                "lycee_avis": _lycee_avis(file, i),
                "letter_ready": bool((letter := file.letter_for(*i.voeu)) and letter.ready),
                "prepared": bool((checklist := file.preparations.get(i.interview_id)) and checklist.ready(i.mode)),
            }
            for i in sorted(file.interviews.values(), key=_interview_order)
        ],
        "voeux": [
            {
                "lycee_uai": b.lycee_uai,
                "formation_code": b.formation_code,
                "lycee_avis": b.lycee_avis,
                "bonus_points": b.bonus_points,
            }
            for b in bonuses
        ],
        "total_bonus_points": total_bonus_points(bonuses),
        "next_step": domain.next_step(file),
        # the student's latest access code (its date and end, never the code): SPEC §6
        "access_code": {"issued_at": file.access_issued_at.isoformat(), "expires_at": file.access_expires_at.isoformat()}
        if file.access_issued_at and file.access_expires_at else None,
        "version": file.version,
    }


async def students_page(
    rt: Runtime, who: Principal, campaign: str | None, college_uai: str | None, min_position: str | None,
    limit: int | None, offset: int,
) -> dict:
    """A page of the caller's students with their progress (`limit` from `offset`, all when None) and their
    total, paged in SQL: only the page's files are read. Unlogged: each caller logs the students it shows."""
    require_role(who, *COLLEGE_ROLES, "rectorat")
    if college_uai is not None and who.role != "rectorat":  # another collège is refused, never silently ignored
        require_own_establishment(who, college_uai, "college_uai")
    await rt.wait_for(min_position)
    year = campaign or rt.settings.campaign
    college = college_uai if who.role == "rectorat" else who.uai

    def query() -> tuple[list[StudentFile], int, int]:
        with rt.engine.connect() as conn:
            files = queries.college_students(conn, year, college, limit, offset)
            return files, queries.count_college_students(conn, year, college), queries.bonus_points(conn, year)

    files, total, points = await asyncio.to_thread(query)
    return {"items": [progress(f, points) for f in files], "total": total, "limit": limit, "offset": offset}
