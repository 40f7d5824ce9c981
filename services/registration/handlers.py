"""The collège's commands, one handler each, shared by the API and the pages.

A handler takes the command (the request's validated body), who acts and the service's runtime: it
checks the reference data and the caller's rights, then runs the domain's decision on the student's
history and appends at the version read (`shared.runtime.commands`). No HTTP request reaches it.
The order of the checks is the API's contract: reference data (422), role and establishment (403),
then the rules on the student's history (404, 409).
"""

from __future__ import annotations

import uuid

from services.registration import domain
from pydantic import Field

from shared.contracts.events import LETTER_ANSWER_MAX, MAX_LETTER_ANSWERS, CollegeAvis, InterviewMode, QuestionId, Referent, Text
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


class ScheduleBody(WriteBody):
    lycee_uai: LyceeUAI
    formation_code: FormationCode
    scheduled_at: Time
    mode: InterviewMode
    remote_equipment_ready: bool = False


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


class LetterBody(WriteBody):
    lycee_uai: LyceeUAI
    formation_code: FormationCode
    answers: dict[QuestionId, Text(LETTER_ANSWER_MAX)] = Field(default_factory=dict, max_length=MAX_LETTER_ANSWERS)
    ready: bool = False


class PreparationBody(WriteBody):
    itinerary_ready: bool
    letter_printed: bool
    materials_ready: bool
    equipment_ready: bool | None = None  # the room and equipment at the collège: a distanciel interview's only


async def _run(
    rt: Runtime, who: Principal, action: str, ine: str, campaign: str | None, body: WriteBody, command: domain.Command
) -> Outcome:
    return await rt.command(
        who, action, ine, campaign, body, lambda file, camp, now: domain.decide(file, camp, now, command, who.uai)
    )


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
    require_formation(rt.reference, body.lycee_uai, body.formation_code)
    require_role(who, *COLLEGE_ROLES)
    command = domain.ScheduleInterview(
        interview_id=str(uuid.uuid4()),  # made here: the domain stays pure
        lycee_uai=body.lycee_uai,
        formation_code=body.formation_code,
        scheduled_at=body.scheduled_at,
        mode=body.mode,
        remote_equipment_ready=body.remote_equipment_ready,
    )
    return await _run(rt, who, "schedule", ine, campaign, body, command)


async def cancel_interview(
    rt: Runtime, who: Principal, ine: str, body: CancelBody, campaign: str | None = None
) -> Outcome:
    require_formation(rt.reference, body.lycee_uai, body.formation_code)
    require_role(who, *COLLEGE_ROLES)
    command = domain.CancelInterview(body.lycee_uai, body.formation_code, body.reason)
    return await _run(rt, who, "cancel", ine, campaign, body, command)


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
    domain.check_letter(template, body.answers, body.ready)
    require_role(who, "eleve")
    command = domain.SaveLetter(body.lycee_uai, body.formation_code, template.version, dict(body.answers), body.ready)
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
