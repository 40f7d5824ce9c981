"""The guided motivation letter and the interview preparation over HTTP (SPEC §6).

The student writes their letters and ticks their checklists under /api/me (their own file: the INE of
their token, never one in the request); the collège's référent and principal read the letters and tick
a checklist under /api/students/{ine}. Every write runs the same handler as the pages (handlers.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import Field

from services.registration import handlers, queries
from services.registration.handlers import COLLEGE_ROLES, LetterBody, PreparationBody
from shared.contracts.identifiers import INE, UAI, Campaign, FormationCode
from shared.contracts.letter import default_letter_template
from shared.domain.errors import NotFound
from shared.domain.student_file import StudentFile
from shared.runtime import access_log
from shared.runtime.http.app import answer_of, runtime
from shared.runtime.http.auth import Principal
from shared.runtime.http.guard import API_DEPENDENCIES, principal, require_role
from shared.runtime.http.openapi import Answer, after_write, link, read, write
from shared.runtime.http.requests import CampaignQuery, IneInPath, MinPositionQuery

router = APIRouter(prefix="/api", tags=["lettre et préparation"], dependencies=API_DEPENDENCIES)

InterviewIdInPath = Annotated[
    str, Path(description="Identifiant de l'entretien", pattern=r"^[A-Za-z0-9_-]{1,64}$", examples=["itw-0001"])
]
LETTERS_READ = "lettres de motivation"


class QuestionOut(Answer):
    id: str
    prompt: str
    help: str
    max_length: int = Field(ge=1)


class LetterTemplateOut(Answer):
    version: int = Field(ge=1)
    title: str
    source: str
    questions: list[QuestionOut]


class LetterOut(Answer):
    lycee_uai: UAI
    formation_code: FormationCode
    template_version: int
    answers: dict[str, str] = Field(description="Réponses par question ; « [effacé] » une fois les données effacées")
    ready: bool
    saved_at: datetime


class PreparationOut(Answer):
    interview_id: str
    itinerary_ready: bool
    letter_printed: bool
    materials_ready: bool
    equipment_ready: bool | None = Field(description="Salle et matériel du collège : entretien à distance seulement")
    ready: bool = Field(description="Tout est coché (le matériel aussi pour un entretien à distance)")
    updated_at: datetime
    updated_by_role: str


class StudentLetters(Answer):
    """The student's letters (one per vœu with an interview) and the checklist of each interview."""

    ine: INE
    campaign: Campaign
    letters: list[LetterOut]
    preparations: list[PreparationOut]


LINKS = {
    "lettres": after_write("read_my_letters", "Mes lettres, une fois la vue à jour de cet événement"),
}
STAFF_LINKS = {
    "lettres": link(
        "read_student_letters", "Les lettres de l'élève, une fois la vue à jour de cet événement",
        ine="$response.body#/event/student_ine", min_position="$response.body#/positions/service",
        campaign="$response.body#/event/campaign",
    ),
}


def letters_of(file: StudentFile) -> dict:
    """The student's letters and checklists, as the API answers them."""
    modes = {i.interview_id: i.mode for i in file.interviews.values()}
    return {
        "ine": file.ine,
        "campaign": file.campaign,
        "letters": [
            letter.model_dump(mode="json", include={"lycee_uai", "formation_code", "template_version", "answers",
                                                    "ready", "saved_at"})
            for _, letter in sorted(file.letters.items())
        ],
        "preparations": [
            {
                **p.model_dump(mode="json", exclude={"version"}),
                "ready": p.ready(modes.get(p.interview_id)),
            }
            for _, p in sorted(file.preparations.items())
        ],
    }


async def student_file(request: Request, who: Principal, ine: str, campaign: str | None,
                       min_position: str | None) -> StudentFile:
    """The file of one student of the caller's collège (the caller's own for a student), or 404."""
    rt = runtime(request)
    await rt.wait_for(min_position)
    year = campaign or rt.settings.campaign

    def query() -> StudentFile | None:
        with rt.engine.connect() as conn:
            return queries.college_student(conn, year, who.uai, ine)

    file = await asyncio.to_thread(query)
    if file is None or not file.registered:
        raise NotFound()
    return file


@router.get(
    "/letter-template", operation_id="get_letter_template", response_model=None,
    responses=read(LetterTemplateOut, refused=(), description="Le modèle en vigueur"),
    summary="Le modèle de la lettre de motivation guidée (questions, aides, longueurs)",
)
async def letter_template() -> dict:
    return default_letter_template().model_dump(mode="json")


@router.post(
    "/me/letters", status_code=201, operation_id="save_my_letter", responses=write((403, 404, 409), LINKS),
    summary="L'élève enregistre sa lettre de motivation pour un vœu (MotivationLetterSaved)",
)
async def save_letter(body: LetterBody, request: Request, campaign: CampaignQuery = None):
    return await answer_of(handlers.save_letter(runtime(request), principal(request), body, campaign))


@router.get(
    "/me/letters", operation_id="read_my_letters", response_model=None,
    responses=read(StudentLetters, refused=(403, 404, 422), description="Mes lettres et mes préparations"),
    summary="L'élève lit ses lettres de motivation et ses listes de préparation",
)
async def my_letters(request: Request, campaign: CampaignQuery = None, min_position: MinPositionQuery = None) -> dict:
    who = principal(request)
    require_role(who, "eleve")
    return letters_of(await student_file(request, who, who.ine or "", campaign, min_position))


@router.post(
    "/me/interviews/{interview_id}/preparation", status_code=201, operation_id="update_my_preparation",
    responses=write((403, 404, 409), LINKS),
    summary="L'élève coche la préparation d'un de ses entretiens (InterviewPreparationUpdated)",
)
async def update_my_preparation(
    interview_id: InterviewIdInPath, body: PreparationBody, request: Request, campaign: CampaignQuery = None
):
    who = principal(request)
    require_role(who, "eleve")  # the student's own checklist: the collège's staff tick it under /api/students
    return await answer_of(handlers.update_preparation(runtime(request), who, who.ine, interview_id, body, campaign))


@router.get(
    "/students/{ine}/letters", operation_id="read_student_letters", response_model=None,
    responses=read(StudentLetters, refused=(403, 404, 422), description="Les lettres et préparations de l'élève"),
    summary="Le collège lit les lettres de motivation d'un élève et où en est sa préparation",
)
async def student_letters(
    ine: IneInPath, request: Request, campaign: CampaignQuery = None, min_position: MinPositionQuery = None
) -> dict:
    who = principal(request)
    require_role(who, *COLLEGE_ROLES)
    answer = letters_of(await student_file(request, who, ine, campaign, min_position))
    await access_log.record_request(request, answer["campaign"], [ine], LETTERS_READ)
    return answer


@router.post(
    "/students/{ine}/interviews/{interview_id}/preparation", status_code=201,
    operation_id="update_student_preparation", responses=write((403, 404, 409), STAFF_LINKS),
    summary="Le référent coche la préparation d'un entretien de l'élève (InterviewPreparationUpdated)",
)
async def update_student_preparation(
    ine: IneInPath, interview_id: InterviewIdInPath, body: PreparationBody, request: Request,
    campaign: CampaignQuery = None,
):
    return await answer_of(
        handlers.update_preparation(runtime(request), principal(request), ine, interview_id, body, campaign)
    )
