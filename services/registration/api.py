"""Registration's HTTP API (SPEC §5): the collège's writes and its students' progress."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.registration import domain, handlers, queries
from services.registration.handlers import (
    COLLEGE_ROLES,
    CancelBody,
    CollegeAvisBody,
    ReasonBody,
    ReferentBody,
    RegisterBody,
    ScheduleBody,
)
from shared.domain.bonus import total_bonus_points, voeu_bonuses
from shared.contracts.identifiers import UAI
from shared.domain.student_file import StudentFile
from shared.runtime import access_log
from shared.runtime.http.guard import API_DEPENDENCIES, principal, require_own_establishment, require_role
from shared.runtime.http.requests import CampaignQuery, IneInPath, Limit, MinPositionQuery, Offset
from shared.runtime.http.openapi import (
    EstablishmentsPage,
    Page,
    StudentProgress,
    after_write,
    read,
    to_student,
    write,
)
from shared.runtime.http.app import answer_of, runtime

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

# Each write: the body parsed by FastAPI -> the command's handler (the pages call the same) -> its answer.


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
    return await answer_of(handlers.register(runtime(request), principal(request), body))


@router.post(
    "/students/{ine}/referent", status_code=201, operation_id="reassign_referent", responses=STUDENT_WRITE,
    summary="Changer de référent (ReferentReassigned)",
)
async def reassign_referent(ine: IneInPath, body: ReferentBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(handlers.reassign_referent(runtime(request), principal(request), ine, body, campaign))


@router.post(
    "/students/{ine}/interviews", status_code=201, operation_id="schedule_interview", responses=STUDENT_WRITE,
    summary="Inscrire à un entretien (InterviewScheduled)",
)
async def schedule_interview(ine: IneInPath, body: ScheduleBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(handlers.schedule_interview(runtime(request), principal(request), ine, body, campaign))


@router.post(
    "/students/{ine}/interviews/cancel", status_code=201, operation_id="cancel_interview", responses=STUDENT_WRITE,
    summary="Annuler un entretien (InterviewCancelled)",
)
async def cancel_interview(ine: IneInPath, body: CancelBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(handlers.cancel_interview(runtime(request), principal(request), ine, body, campaign))


@router.post(
    "/students/{ine}/interviews/reschedule", status_code=201, operation_id="reschedule_interview",
    responses=STUDENT_WRITE, summary="Déplacer un entretien vers un créneau ou une heure libre (InterviewRescheduled)",
)
async def reschedule_interview(
    ine: IneInPath, body: handlers.RescheduleBody, request: Request, campaign: CampaignQuery = None
):
    return await answer_of(handlers.reschedule_interview(runtime(request), principal(request), ine, body, campaign))


@router.post(
    "/students/{ine}/college-avis", status_code=201, operation_id="give_college_avis", responses=STUDENT_WRITE,
    summary="Avis du collège (CollegeAvisGiven)",
)
async def give_college_avis(ine: IneInPath, body: CollegeAvisBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(handlers.give_college_avis(runtime(request), principal(request), ine, body, campaign))


@router.post(
    "/students/{ine}/withdrawal", status_code=201, operation_id="withdraw_student", responses=STUDENT_WRITE,
    summary="Retrait du dispositif (StudentWithdrawn)",
)
async def withdraw(ine: IneInPath, body: ReasonBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(handlers.withdraw(runtime(request), principal(request), ine, body, campaign))


@router.post(
    "/students/{ine}/reinstatement", status_code=201, operation_id="reinstate_student", responses=STUDENT_WRITE,
    summary="Réintégration (StudentReinstated)",
)
async def reinstate(ine: IneInPath, body: ReasonBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(handlers.reinstate(runtime(request), principal(request), ine, body, campaign))


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
