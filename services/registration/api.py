"""Registration's HTTP API (SPEC §5): the collège's writes and its students' progress."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.registration import domain, queries
from shared.domain.bonus import total_bonus_points, voeu_bonuses
from shared.contracts.events import CollegeAvis, InterviewMode, Referent, Text
from shared.contracts.identifiers import INE, UAI, Campaign, FormationCode
from shared.domain.student_file import StudentFile
from shared.runtime import access_log
from shared.runtime.http.guard import API_DEPENDENCIES, principal, require_own_establishment, require_role
from shared.runtime.http.requests import (
    CampaignQuery,
    IneInPath,
    Limit,
    MinPositionQuery,
    Offset,
    Time,
    WriteBody,
    require_college,
    require_formation,
)
from shared.runtime.http.openapi import (
    EstablishmentsPage,
    LyceeUAI,
    Page,
    StudentProgress,
    after_write,
    read,
    to_student,
    write,
)
from shared.runtime.http.app import runtime

router = APIRouter(prefix="/api", tags=["registration"], dependencies=API_DEPENDENCIES)

# From any write's answer: the list that shows it, and the next steps for the same student (stateful clients, testers).
LINKS = {
    "eleves": after_write("list_students", "Les élèves, une fois la vue à jour de cet événement"),
    "avis_college": to_student("give_college_avis", "Donner l'avis du collège pour cet élève"),
    "entretien": to_student("schedule_interview", "Inscrire cet élève à un entretien"),
    "annulation": to_student("cancel_interview", "Annuler un entretien de cet élève"),
    "referent": to_student("reassign_referent", "Changer le référent de cet élève"),
    "retrait": to_student("withdraw_student", "Retirer cet élève du dispositif"),
    "reintegration": to_student("reinstate_student", "Réintégrer cet élève"),
}
STUDENT_WRITE = write((403, 404, 409), LINKS)

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


async def _write(request: Request, action: str, ine: str, campaign: str | None, body: WriteBody, command) -> object:
    rt = runtime(request)
    who = principal(request)
    return await rt.write(
        who,
        action=action,
        campaign=campaign or rt.settings.campaign,
        ine=ine,
        event_id=body.event_id,
        request=body.request_fields(),
        decide=lambda file, camp, now: domain.decide(file, camp, now, command, who.uai),
    )


@router.get(
    "/establishments", operation_id="list_establishments", response_model=None,
    responses=read(EstablishmentsPage, refused=(), description="Le référentiel"),
    summary="Le référentiel : collèges, lycées et formations",
)
async def establishments(request: Request) -> dict:
    reference = runtime(request).reference
    items = [e.model_dump(mode="json") for e in sorted(reference.establishments, key=lambda e: e.uai)]
    return {"items": items, "total": len(items), "limit": len(items), "offset": 0, "version": reference.version}


@router.post(
    "/students", status_code=201, operation_id="register_student", responses=write((403, 409), LINKS),
    summary="Inscrire un élève (StudentRegistered)",
)
async def register(body: RegisterBody, request: Request):
    rt, who = runtime(request), principal(request)
    require_college(rt.reference, body.college_uai)
    require_role(who, "principal")
    require_own_establishment(who, body.college_uai, "college_uai")
    command = domain.Register(body.college_uai, body.last_name, body.first_name, body.class_name, body.referent)
    return await _write(request, "register", body.student_ine, body.campaign, body, command)


@router.post(
    "/students/{ine}/referent", status_code=201, operation_id="reassign_referent", responses=STUDENT_WRITE,
    summary="Changer de référent (ReferentReassigned)",
)
async def reassign_referent(ine: IneInPath, body: ReferentBody, request: Request, campaign: CampaignQuery = None):
    require_role(principal(request), "principal")
    return await _write(request, "referent", ine, campaign, body, domain.ReassignReferent(body.referent))


@router.post(
    "/students/{ine}/interviews", status_code=201, operation_id="schedule_interview", responses=STUDENT_WRITE,
    summary="Inscrire à un entretien (InterviewScheduled)",
)
async def schedule_interview(ine: IneInPath, body: ScheduleBody, request: Request, campaign: CampaignQuery = None):
    require_formation(runtime(request).reference, body.lycee_uai, body.formation_code)
    require_role(principal(request), *COLLEGE_ROLES)
    command = domain.ScheduleInterview(
        interview_id=str(uuid.uuid4()),
        lycee_uai=body.lycee_uai,
        formation_code=body.formation_code,
        scheduled_at=body.scheduled_at,
        mode=body.mode,
        remote_equipment_ready=body.remote_equipment_ready,
    )
    return await _write(request, "schedule", ine, campaign, body, command)


@router.post(
    "/students/{ine}/interviews/cancel", status_code=201, operation_id="cancel_interview", responses=STUDENT_WRITE,
    summary="Annuler un entretien (InterviewCancelled)",
)
async def cancel_interview(ine: IneInPath, body: CancelBody, request: Request, campaign: CampaignQuery = None):
    require_formation(runtime(request).reference, body.lycee_uai, body.formation_code)
    require_role(principal(request), *COLLEGE_ROLES)
    command = domain.CancelInterview(body.lycee_uai, body.formation_code, body.reason)
    return await _write(request, "cancel", ine, campaign, body, command)


@router.post(
    "/students/{ine}/college-avis", status_code=201, operation_id="give_college_avis", responses=STUDENT_WRITE,
    summary="Avis du collège (CollegeAvisGiven)",
)
async def give_college_avis(ine: IneInPath, body: CollegeAvisBody, request: Request, campaign: CampaignQuery = None):
    rt, who = runtime(request), principal(request)
    require_college(rt.reference, body.college_uai)
    require_role(who, "principal")
    require_own_establishment(who, body.college_uai, "college_uai")
    command = domain.GiveCollegeAvis(body.college_uai, body.avis, body.comment)
    return await _write(request, "college-avis", ine, campaign, body, command)


@router.post(
    "/students/{ine}/withdrawal", status_code=201, operation_id="withdraw_student", responses=STUDENT_WRITE,
    summary="Retrait du dispositif (StudentWithdrawn)",
)
async def withdraw(ine: IneInPath, body: ReasonBody, request: Request, campaign: CampaignQuery = None):
    require_role(principal(request), "principal")
    return await _write(request, "withdraw", ine, campaign, body, domain.Withdraw(body.reason))


@router.post(
    "/students/{ine}/reinstatement", status_code=201, operation_id="reinstate_student", responses=STUDENT_WRITE,
    summary="Réintégration (StudentReinstated)",
)
async def reinstate(ine: IneInPath, body: ReasonBody, request: Request, campaign: CampaignQuery = None):
    require_role(principal(request), "principal")
    return await _write(request, "reinstate", ine, campaign, body, domain.Reinstate(body.reason))


def _interview_order(interview) -> tuple[str, str]:
    return (interview.scheduled_at.isoformat() if interview.scheduled_at else "", interview.interview_id)


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
        "version": file.version,
    }


async def students_page(
    request: Request, campaign: str | None, college_uai: str | None, min_position: str | None,
    limit: int | None, offset: int,
) -> dict:
    """A page of the caller's students with their progress (`limit` from `offset`, all when None) and their
    total, paged in SQL: only the page's files are read. Unlogged: each caller logs the students it shows."""
    rt, who = runtime(request), principal(request)
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


@router.get(
    "/students", operation_id="list_students", response_model=None,
    responses=read(Page[StudentProgress], description="Une page des élèves"),
    summary="Les élèves du collège et leur avancement (tous les collèges pour le rectorat)",
)
async def list_students(
    request: Request,
    campaign: CampaignQuery = None,
    college_uai: Annotated[UAI | None, Query(description="Rectorat : un seul collège")] = None,
    min_position: MinPositionQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict:
    answer = await students_page(request, campaign, college_uai, min_position, limit, offset)
    year = campaign or runtime(request).settings.campaign
    await access_log.record_request(request, year, [s["ine"] for s in answer["items"]], access_log.STUDENT_LIST)
    return answer
