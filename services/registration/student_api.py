"""The student's way in and their own file over HTTP (SPEC §6).

- `POST /api/students/{ine}/access-code`: the principal or référent of the student's collège issues a personal
  access code (201 `{code, expires_at}`; the event StudentAccessIssued in the log, the code's hash outside it;
  a new code revokes the old).
- `POST /api/eleve/session`: INE + code for a token of role `eleve` (no token needed); a wrong code is a 401,
  and after 5 wrong tries for one INE every try answers 429 with `Retry-After` until the wait is over
  (services/registration/access_codes.py).
- `GET /api/me`: what the student sees of their own file (services/registration/student_space.py); the INE
  is the token's, never one in the request.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.registration import access_codes, handlers, queries
from services.registration.student_space import student_space
from shared.contracts.events import Assessment, CollegeAvis, InterviewMode, LyceeAvis
from shared.contracts.identifiers import INE, UAI, Campaign, FormationCode
from shared.domain.errors import NotFound, Refusal
from shared.domain.student_file import StudentFile
from shared.fr.formats import minutes_to_wait
from shared.runtime.http.app import Runtime, runtime
from shared.runtime.http.auth import InvalidToken, Principal, issue_token
from shared.runtime.http.guard import API_DEPENDENCIES, principal, require_role
from shared.runtime.http.openapi import Answer, EventOut, InterviewStatus, Positions, _refusal, read, refusals
from shared.runtime.http.requests import CampaignQuery, IneInPath, MinPositionQuery
from shared.web.pages import next_path

log = logging.getLogger(__name__)


STUDENT_SPACES = ("/eleve", "/formations")


def student_path(value: str | None) -> str:
    """Where a student goes once signed in (with an access code, in one demo click or through EduConnect): a page of
    theirs — the student space and what is under it (letters, checklist, convocation), the formations — else /eleve.
    A prefix is not enough: /eleves/… is the collège's, /eleve/connexion the sign-in itself."""
    path = next_path(value)
    page = path.split("?", 1)[0]
    mine = any(page == space or page.startswith(space + "/") for space in STUDENT_SPACES)
    return path if mine and not (page == "/eleve/connexion" or page.startswith("/eleve/connexion/")) else "/eleve"

# The bearer token is documented route by route: the sign-in needs none (ApiGuard's PUBLIC_API_PATHS).
router = APIRouter(prefix="/api", tags=["élève"])

SESSION_SECONDS = 12 * 3600  # a student's session: a school day, and never past their code's expiry
MAX_CODE_LENGTH = 40


# --- answers ------------------------------------------------------------------------------------------


class AccessCodeAnswer(Answer):
    """201: the new code, shown once (only its hash is kept), and its StudentAccessIssued event (never the code)
    with where it was stored."""

    code: str = Field(description="Le code à remettre à l'élève (12 caractères, par groupes de 4)",
                      pattern=r"^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$")
    expires_at: datetime
    event: EventOut
    positions: Positions


class SessionAnswer(Answer):
    token: str = Field(description="Jeton JWT du rôle `eleve`, à passer en `Authorization: Bearer …`")
    expires_at: datetime


class SessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    ine: INE
    code: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CODE_LENGTH)] = Field(
        description="Le code d'accès remis par le référent (tirets et espaces facultatifs)"
    )


class StopOut(Answer):
    mode: str
    stop: str
    lines: list[str]
    label: str


class CoordinatesOut(Answer):
    lat: float
    lon: float


class LyceeOut(Answer):
    uai: UAI
    name: str
    address: str | None
    coordinates: CoordinatesOut | None
    access: list[StopOut]
    journey_url: str | None = Field(description="Calculateur d'itinéraire, le lycée pour destination")
    transit_planner_url: str


class FormationOut(Answer):
    code: FormationCode
    label: str


class ReportOut(Answer):
    motivation: Assessment
    chances_of_success: Assessment
    advice: str


class LetterStateOut(Answer):
    ready: bool
    saved_at: datetime


class PreparationStateOut(Answer):
    itinerary_ready: bool
    letter_printed: bool
    materials_ready: bool
    equipment_ready: bool | None
    ready: bool


class MyInterview(Answer):
    interview_id: str
    status: InterviewStatus
    lycee: LyceeOut
    formation: FormationOut
    scheduled_at: datetime | None
    scheduled_at_text: str | None = Field(description="Date et heure de Paris, en toutes lettres")
    mode: InterviewMode | None
    room: str | None = Field(description="Entretien à distance : où le suivre au collège")
    slot_place: str | None = Field(description="Entretien pris sur un créneau du lycée : le lieu que le lycée a "
                                               "donné (la salle, ou comment le lien de la visioconférence est "
                                               "transmis) ; null pour un horaire libre")
    held_at: datetime | None
    report: ReportOut | None
    lycee_avis: LyceeAvis | None
    bonus_points: int | None = Field(ge=0, description="Le bonus de ce vœu, une fois l'avis du lycée donné")
    letter: LetterStateOut | None
    preparation: PreparationStateOut | None


class StepOut(Answer):
    id: str
    label: str
    state: str = Field(pattern="^(done|current|todo)$")
    todo: str


class CollegeOut(Answer):
    uai: UAI | None
    name: str | None


class MyReferent(Answer):
    name: str
    email: str


class MySpace(Answer):
    """The student's own file as they see it; a personal field reads « [effacé] » once erased."""

    ine: INE
    campaign: Campaign
    first_name: str | None
    last_name: str | None
    class_name: str | None
    college: CollegeOut
    status: str = Field(pattern="^(active|withdrawn)$")
    referent: MyReferent | None
    college_avis: CollegeAvis | None
    college_comment: str | None
    steps: list[StepOut]
    next_step: str
    interviews: list[MyInterview]
    total_bonus_points: int = Field(ge=0)
    version: int = Field(ge=0)


class TooManyTries(Refusal):
    """429: five wrong codes for this INE; every try waits, the right code too."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too_many_attempts", f"Trop d'essais avec un code faux. Attends {minutes_to_wait(retry_after)} avant de réessayer.",
        )
        self.headers = {"Retry-After": str(retry_after)}


class WrongCode(Refusal):
    status = 401

    def __init__(self) -> None:
        super().__init__("wrong_access_code", "INE ou code d'accès incorrect. Vérifie-les, ou demande un nouveau code à ton référent.")
        self.headers = {"WWW-Authenticate": ACCESS_CODE_CHALLENGE}  # RFC 9110 §15.5.2: a 401 names its scheme


ACCESS_CODE_CHALLENGE = 'AccessCode realm="passpro-eleve"'
_RETRY = {"Retry-After": {"description": "Secondes à attendre avant de réessayer", "schema": {"type": "integer", "minimum": 1}}}
SESSION_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"model": SessionAnswer, "description": "Le jeton de l'élève"},
    401: _refusal("INE ou code faux, expiré ou remplacé par un nouveau", "wrong_access_code",
                  "INE ou code d'accès incorrect. Vérifie-les, ou demande un nouveau code à ton référent.",
                  {"WWW-Authenticate": {"description": "`AccessCode` : un INE et un code d'accès", "schema": {"type": "string"}}}),
    413: refusals(413)[413],
    422: refusals(422)[422],
    429: _refusal("Cinq codes faux pour cet INE : attendre `Retry-After` secondes, même avec le bon code",
                  "too_many_attempts", "Trop d'essais avec un code faux. Attends 15 minutes avant de réessayer.",
                  _RETRY),
    503: refusals(503)[503],
}


# --- the routes ---------------------------------------------------------------------------------------


@router.post(
    "/students/{ine}/access-code", status_code=201, operation_id="issue_access_code", response_model=None,
    dependencies=API_DEPENDENCIES,
    responses={201: {"model": AccessCodeAnswer, "description": "Le nouveau code (l'ancien ne marche plus)"},
               **refusals(403, 404, 409, 413, 422)},
    summary="Donner à l'élève un code d'accès à son espace (StudentAccessIssued ; le code n'est gardé que haché)",
)
async def issue_access_code(ine: IneInPath, request: Request, campaign: CampaignQuery = None) -> JSONResponse:
    outcome, code = await handlers.issue_access_code(runtime(request), principal(request), ine, campaign)
    body = {"code": code, "expires_at": outcome.event.payload.expires_at.isoformat(), **outcome.body()}
    return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})


async def open_student_session(rt: Runtime, ine: str, code: str) -> tuple[str, Principal, datetime]:
    """INE + code -> a signed token of role eleve, who it names and when it ends; WrongCode or TooManyTries.
    The API's sign-in and the /eleve/connexion page both call it."""
    now = datetime.now(UTC)
    outcome = await asyncio.to_thread(access_codes.verify_access_code, rt.engine, ine, code, now)
    if outcome.locked:
        raise TooManyTries(outcome.retry_after or 1)
    if not outcome.accepted:
        raise WrongCode()
    ttl = int(min(SESSION_SECONDS, (outcome.code_expires_at - now).total_seconds()))
    user_id = f"eleve.{ine}"
    try:
        token = issue_token(
            rt.settings.jwt_secret, user_id=user_id, role="eleve", uai=outcome.college_uai, ine=ine,
            reference=rt.reference, ttl_seconds=max(ttl, 1), issuer=rt.settings.jwt_issuer, now=now.timestamp(),
        )
    except InvalidToken:  # the collège left the reference data since the code was issued
        log.warning("student sign-in: collège %s no longer in the reference data", outcome.college_uai)
        raise WrongCode() from None
    expires_at = datetime.fromtimestamp(int(now.timestamp()) + max(ttl, 1), UTC)
    return token, Principal(user_id, "eleve", outcome.college_uai, ine), expires_at


@router.post(
    "/eleve/session", status_code=201, operation_id="open_student_session", response_model=None,
    responses=SESSION_RESPONSES, openapi_extra={"security": []},  # no token: INE + code are the credentials
    summary="L'élève échange son INE et son code d'accès contre un jeton (sans jeton)",
)
async def student_session(body: SessionBody, request: Request) -> JSONResponse:
    token, _, expires_at = await open_student_session(runtime(request), body.ine, body.code)
    return JSONResponse({"token": token, "expires_at": expires_at.isoformat()}, status_code=201,
                        headers={"Cache-Control": "no-store"})


async def my_file(rt: Runtime, who: Principal, campaign: str | None) -> tuple[StudentFile, int, dict[str, str]]:
    """The student's own file (their token's INE, in their collège), the campaign's bonus and the places of the
    slots its interviews are booked on; 404 if none."""
    require_role(who, "eleve")
    year = campaign or rt.settings.campaign

    def query() -> tuple[StudentFile | None, int, dict[str, str]]:
        with rt.engine.connect() as conn:
            file = queries.college_student(conn, year, who.uai or "", who.ine or "")
            return file, queries.bonus_points(conn, year), queries.slot_places(conn, year, file)

    file, points, places = await asyncio.to_thread(query)
    if file is None or not file.registered:
        raise NotFound()
    return file, points, places


@router.get(
    "/me", operation_id="read_my_file", response_model=None, dependencies=API_DEPENDENCIES,
    responses=read(MySpace, refused=(403, 404, 422), description="Mon dossier Passpro"),
    summary="L'élève lit son dossier : référent, avis du collège, étapes, entretiens, comptes rendus, bonus",
)
async def me(request: Request, campaign: CampaignQuery = None, min_position: MinPositionQuery = None) -> dict:
    rt = runtime(request)
    await rt.wait_for(min_position)
    file, points, places = await my_file(rt, principal(request), campaign)
    return student_space(file, rt.reference, points, places)

