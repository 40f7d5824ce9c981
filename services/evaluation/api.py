"""Evaluation's HTTP API (SPEC §5): the lycée's interviews, reports and avis."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.evaluation import handlers
from services.evaluation.handlers import CancelBody, HeldBody, LyceeAvisBody
from shared.contracts.identifiers import UAI
from shared.runtime import access_log
from shared.runtime.http.guard import API_DEPENDENCIES, principal
from shared.runtime.http.requests import CampaignQuery, IneInPath, Limit, MinPositionQuery, Offset
from shared.runtime.http.openapi import LyceeInterview, Page, after_write, read, to_student, write
from shared.runtime.http.app import answer_of, runtime

router = APIRouter(prefix="/api", tags=["evaluation"], dependencies=API_DEPENDENCIES)

# From any write's answer: the list that shows it, and the next steps for the same student.
LINKS = {
    "entretiens": after_write("list_interviews", "Les entretiens, une fois la vue à jour de cet événement"),
    "entretien_tenu": to_student("record_interview_held", "Enregistrer l'entretien tenu de cet élève"),
    "avis_lycee": to_student("give_lycee_avis", "Donner l'avis du lycée pour cet élève"),
    "annulation": to_student("cancel_interview", "Annuler un entretien de cet élève"),
}
STUDENT_WRITE = write((403, 404, 409), LINKS)

# Each write: the body parsed by FastAPI -> the command's handler (the pages call the same) -> its answer.


@router.post(
    "/students/{ine}/interviews/held", status_code=201, operation_id="record_interview_held",
    responses=STUDENT_WRITE,
    summary="Entretien tenu et compte rendu (InterviewHeld)",
)
async def record_held(ine: IneInPath, body: HeldBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(handlers.record_held(runtime(request), principal(request), ine, body, campaign))


@router.post(
    "/students/{ine}/interviews/cancel", status_code=201, operation_id="cancel_interview", responses=STUDENT_WRITE,
    summary="Annuler un entretien (InterviewCancelled)",
)
async def cancel_interview(ine: IneInPath, body: CancelBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(handlers.cancel_interview(runtime(request), principal(request), ine, body, campaign))


@router.post(
    "/students/{ine}/interviews/report", status_code=201, operation_id="correct_interview_report",
    responses=STUDENT_WRITE, summary="Corriger le compte rendu d'un entretien tenu (InterviewReportCorrected)",
)
async def correct_report(ine: IneInPath, body: handlers.ReportBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(handlers.correct_report(runtime(request), principal(request), ine, body, campaign))


@router.post(
    "/students/{ine}/lycee-avis", status_code=201, operation_id="give_lycee_avis", responses=STUDENT_WRITE,
    summary="Avis du lycée (LyceeAvisGiven)",
)
async def give_lycee_avis(ine: IneInPath, body: LyceeAvisBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(handlers.give_lycee_avis(runtime(request), principal(request), ine, body, campaign))


@router.get(
    "/interviews", operation_id="list_interviews", response_model=None,
    responses=read(Page[LyceeInterview], description="Une page des entretiens"),
    summary="Les entretiens du lycée, avec l'avis et le commentaire du collège",
)
async def list_interviews(
    request: Request,
    campaign: CampaignQuery = None,
    lycee_uai: Annotated[UAI | None, Query(description="Rectorat : un seul lycée")] = None,
    min_position: MinPositionQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict:
    answer = await handlers.interviews_page(
        runtime(request), principal(request), campaign, lycee_uai, min_position, limit, offset
    )
    year = campaign or runtime(request).settings.campaign
    await access_log.record_request(request, year, [i["ine"] for i in answer["items"]], access_log.INTERVIEW_LIST)
    return answer


