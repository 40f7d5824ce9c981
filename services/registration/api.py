"""Registration's HTTP API (SPEC §5): the collège's writes and its students' progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.registration import handlers
from services.registration.handlers import (
    CancelBody,
    CollegeAvisBody,
    ReasonBody,
    ReferentBody,
    RegisterBody,
    ScheduleBody,
)
from shared.contracts.identifiers import UAI
from shared.runtime import access_log
from shared.runtime.http.guard import API_DEPENDENCIES, principal
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
    answer = await handlers.students_page(
        runtime(request), principal(request), campaign, college_uai, min_position, limit, offset
    )
    year = campaign or runtime(request).settings.campaign
    await access_log.record_request(request, year, [s["ine"] for s in answer["items"]], access_log.STUDENT_LIST)
    return answer
