"""What the OpenAPI documents say about answers (SPEC §5.1): a schema for every success, the headers,
the refusals each operation can give, and the links from a write to the reads that show it.

These models only describe the JSON the routes build; nothing validates an answer through them (the
Schemathesis test in tests/api does, from the outside, against the generated documents).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.events import PAYLOAD_TYPES, Assessment, CollegeAvis, InterviewMode, LyceeAvis, Role
from shared.contracts.identifiers import INE, UAI, Campaign, FormationCode
from shared.contracts.reference import Establishment

T = TypeVar("T")


def _at_most(limit: int) -> str:
    """A regular expression of the decimal numbers from 0 to `limit` (leading zeros allowed, as the log reads them)."""
    digits = str(limit)
    alternatives = [f"[0-9]{{1,{len(digits) - 1}}}"]  # fewer digits: always below
    for i, d in enumerate(digits):  # as many digits: the same prefix, then a smaller digit, then anything
        if d != "0":
            rest = len(digits) - i - 1
            alternatives.append(f"{digits[:i]}[0-{int(d) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    alternatives.append(digits)
    return "(?:" + "|".join(alternatives) + ")"


# A Redis stream entry id `ms-seq`, each part an unsigned 64-bit number (what requests.check_position checks).
_U64 = _at_most(2**64 - 1)
POSITION_PATTERN = rf"^{_U64}-{_U64}$"
# `as_of` of the audit timeline: what records.timeline.parse_as_of reads (empty: now).
AS_OF_SCHEMA = {"anyOf": [
    {"type": "string", "format": "date-time", "maxLength": 64},
    {"type": "string", "pattern": r"^[0-9]{1,20}-[0-9]{1,20}$"},
    {"type": "string", "maxLength": 0},
]}

Position = Annotated[str, Field(pattern=r"^[0-9]+-[0-9]+$", description="Position d'une entrée du journal (ms-seq)")]
Count = Annotated[int, Field(ge=0)]
InterviewStatus = Literal["scheduled", "cancelled", "held"]

# A lycée that offers the formation code's example, so that a request made of the examples is valid.
LyceeUAI = Annotated[UAI, Field(examples=["0752845K"])]


class Answer(BaseModel):
    """An answer's schema: exactly these fields, so a tester notices one the document forgets."""

    model_config = ConfigDict(extra="forbid")


# --- the event answer of every write ------------------------------------------------------------------


class Positions(Answer):
    """Where the event was stored: give `service` as `min_position` to a read to see it there."""

    service: Position
    student: Position


class ActorOut(Answer):
    user_id: str
    role: Role
    uai: UAI | None = None


class EventOut(Answer):
    event_id: UUID
    event_type: Literal[tuple(PAYLOAD_TYPES)]  # type: ignore[valid-type]
    schema_version: int = Field(ge=1)
    occurred_at: datetime
    recorded_at: datetime | None
    campaign: Campaign
    student_ine: INE | None
    actor: ActorOut
    payload: dict[str, Any] = Field(description="Les champs de l'événement `event_type` (SPEC §3)")


class EventAnswer(Answer):
    """201: the event stored; 200: the same request (same `event_id`) already stored, its original answer."""

    event: EventOut
    positions: Positions


# --- lists --------------------------------------------------------------------------------------------


class Page(Answer, Generic[T]):
    items: list[T]
    total: Count
    limit: Count
    offset: Count


class EstablishmentsPage(Page[Establishment]):
    version: str = Field(description="Version du référentiel")


class ReferentOut(Answer):
    user_id: str
    name: str
    email: str  # « [effacé] » once the student's data is erased


class ProgressInterview(Answer):
    interview_id: str
    lycee_uai: UAI
    formation_code: FormationCode
    scheduled_at: datetime | None
    mode: InterviewMode | None
    status: InterviewStatus
    college_avis_present: bool | None
    report: ReportOut | None = Field(description="Le compte rendu, une fois l'entretien tenu")
    lycee_avis: LyceeAvis | None = Field(description="Le dernier avis du lycée sur ce vœu, une fois donné")
    letter_ready: bool = Field(description="La lettre de motivation guidée du vœu est marquée prête par l'élève")
    prepared: bool = Field(description="La liste de préparation de l'entretien est entièrement cochée")


class ProgressVoeu(Answer):
    lycee_uai: UAI
    formation_code: FormationCode
    lycee_avis: LyceeAvis | None
    bonus_points: Count


class AccessCodeState(Answer):
    """When the student's latest access code to their space was given, and until when (SPEC §6)."""

    issued_at: datetime
    expires_at: datetime


class StudentProgress(Answer):
    """One student of « Mes élèves »; a personal field reads « [effacé] » once the student is erased."""

    ine: INE
    campaign: Campaign
    last_name: str | None
    first_name: str | None
    class_name: str | None
    status: Literal["active", "withdrawn"]
    referent: ReferentOut | None
    college_avis: CollegeAvis | None
    college_comment: str | None
    interviews: list[ProgressInterview]
    voeux: list[ProgressVoeu]
    total_bonus_points: Count
    next_step: str
    access_code: AccessCodeState | None = Field(description="Le dernier code d'accès donné à l'élève (jamais le code)")
    version: Count


class ReportOut(Answer):
    motivation: Assessment
    chances_of_success: Assessment
    advice: str


class LyceeInterview(Answer):
    """One interview of the lycée, with the student's file as the lycée may see it."""

    ine: INE
    campaign: Campaign
    last_name: str | None
    first_name: str | None
    college_uai: UAI | None
    interview_id: str
    lycee_uai: UAI
    formation_code: FormationCode
    scheduled_at: datetime | None
    mode: InterviewMode | None
    status: InterviewStatus
    college_avis: CollegeAvis | None
    college_comment: str | None
    college_avis_missing: bool
    held_at: datetime | None
    report: ReportOut | None
    lycee_avis: LyceeAvis | None
    student_withdrawn: bool
    letter: dict[str, str] | None = Field(
        description="La lettre de motivation guidée du vœu une fois marquée prête par l'élève (réponses par "
        "question de GET /api/letter-template du service d'inscription), sinon null"
    )


# --- scoring ------------------------------------------------------------------------------------------


class VoeuBonus(Answer):
    lycee_uai: UAI
    formation_code: FormationCode
    lycee_avis: LyceeAvis | None
    bonus_points: Count
    college_avis_present: bool | None


class StudentBonus(Answer):
    ine: INE
    campaign: Campaign
    total_bonus_points: Count
    withdrawn: bool
    voeux: list[VoeuBonus]
    positions: dict[str, Position] = Field(description="Positions du journal lues par la vue, par flux")


class BonusRow(VoeuBonus):
    ine: INE
    college_uai: UAI | None


class CollegeAvisCount(Answer):
    college_avis: CollegeAvis | None
    count: Count


class CollegeAvisByCollege(CollegeAvisCount):
    college_uai: UAI | None


class LyceeAvisCount(Answer):
    lycee_avis: LyceeAvis | None
    count: Count


class LyceeAvisByFormation(LyceeAvisCount):
    lycee_uai: UAI
    formation_code: FormationCode


class Summary(Answer):
    campaign: Campaign
    students: Count
    college_avis: list[CollegeAvisCount]
    college_avis_by_college: list[CollegeAvisByCollege]
    lycee_avis: list[LyceeAvisCount]
    lycee_avis_by_lycee_and_formation: list[LyceeAvisByFormation]
    interviews_held: Count
    missing_college_avis: Count
    bonuses_granted: Count


class ExportRecord(Answer):
    id: int
    campaign: Campaign
    exported_at: datetime
    user_id: str
    positions: dict[str, Position]
    rows: Count
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class AuditVoeu(VoeuBonus):
    interview_held: bool


class AuditBonus(Answer):
    total_bonus_points: Count
    withdrawn: bool
    voeux: list[AuditVoeu]


class EstablishmentRef(Answer):
    uai: UAI
    name: str | None


class TimelineStep(Answer):
    position: Position
    student_version: int | None
    event_id: UUID
    event_type: str
    label: str
    occurred_at: datetime
    recorded_at: datetime | None
    actor: ActorOut
    establishment: EstablishmentRef | None
    details: list[str] = Field(description="Ce que dit l'événement, en français, un fait par ligne")
    payload: dict[str, Any]
    bonus_after: AuditBonus


class AuditCut(Answer):
    recorded_until: datetime | None
    student_position: Position | None


class Unreadable(Answer):
    position: Position
    reason: str


class AuditTimeline(AuditBonus):
    """The student's history up to `as_of` (every event: who, when, from where, what) and the bonus then."""

    ine: INE
    campaign: Campaign
    as_of: str | None
    cut: AuditCut
    campaign_bonus_points: Count
    college_uai: UAI | None
    college_avis: CollegeAvis | None
    timeline: list[TimelineStep]
    unreadable: list[Unreadable]


class Access(Answer):
    at: datetime
    user_id: str
    role: Role
    uai: str = Field(description="UAI de l'établissement du lecteur, vide pour le rectorat")
    service: str
    what: str
    channel: str
    position: Position


class AccessLog(Page[Access]):
    ine: INE
    campaign: Campaign


# What every operation shares, said once at the top of each document.
API_DESCRIPTION = """\
Toutes les routes `/api/` demandent un jeton JWT (`Authorization: Bearer …`) : sans jeton valide, 401 avec
`WWW-Authenticate: Bearer`. Un refus est un JSON `{error, message, fields?}` en français ; chaque opération
liste les statuts qu'elle peut donner.

- **Écritures** : 201 et `{event, positions}` ; la même demande renvoyée avec le même `event_id` répond 200
  avec la réponse d'origine et n'enregistre rien de plus ; un autre contenu sous le même `event_id` est un 409
  `event_id_reused`.
- **Lire ses écritures** : passer `positions.service` d'une réponse en `min_position` d'une lecture ; si la
  vue ne l'a pas atteinte à temps, 503 `view_behind` avec `Retry-After`, jamais des données anciennes.
- **503** (journal ou base injoignable) : une écriture a pu être enregistrée ou non ; la renvoyer à
  l'identique, avec le même `event_id`, après `Retry-After` secondes.
- **Autres méthodes** : une méthode qu'un chemin n'offre pas répond 405 avec l'en-tête `Allow` (les méthodes
  offertes) ; `HEAD` et `OPTIONS` se comportent comme HTTP le prévoit.
- **Identifiants** : chaînes de caractères (INE, UAI avec sa lettre de contrôle, code de formation, campagne),
  sous la forme que donnent leurs `pattern` ; un UAI ou une formation absents du référentiel
  (`GET /api/establishments` du service d'inscription) sont un 422.
"""


# --- responses= of the routes -------------------------------------------------------------------------

class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every refusal's body (SPEC §3.1, §5)."""

    error: str
    message: str
    fields: list[FieldError] | None = None


# Told on a 503 (the guard answers it): the log or a database out of reach. A write may have been stored just
# before the connection broke, so never "nothing was stored"; a retry with the same event_id is safe.
UNAVAILABLE_MESSAGE = (
    "Service momentanément indisponible : votre demande a pu être enregistrée ou non. Renvoyez-la à l'identique "
    "dans un instant, avec le même event_id : elle ne sera jamais enregistrée deux fois."
)


_RETRY_AFTER = {"Retry-After": {"description": "Secondes à attendre avant de réessayer", "schema": {"type": "integer", "minimum": 0}}}


def _refusal(description: str, code: str, message: str, headers: dict | None = None, **extra: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "model": ErrorBody,
        "description": description,
        "content": {"application/json": {"example": {"error": code, "message": message, **extra}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


@cache
def _refusals() -> dict[int, dict[str, Any]]:
    return {
        401: _refusal(
            "Jeton absent, mal formé, expiré ou mal signé", "unauthenticated",
            "Jeton d'authentification absent, invalide ou expiré.",
            {"WWW-Authenticate": {"description": "Le schéma attendu : `Bearer`", "schema": {"type": "string"}}},
        ),
        403: _refusal("Rôle non autorisé, ou un autre établissement que le sien", "role_forbidden",
                      "Votre rôle ne permet pas cette action."),
        404: _refusal("Élève inconnu, ou que l'appelant ne peut pas voir", "student_not_found", "Élève introuvable."),
        409: _refusal("Une règle du dispositif refuse la demande (`error` la nomme)", "college_avis_after_interview",
                      "L'avis du collège doit être saisi avant les entretiens : un entretien a déjà eu lieu."),
        413: _refusal("Corps de requête de plus de 64 Kio", "payload_too_large",
                      "La requête dépasse la taille maximale de 64 Kio."),
        422: _refusal("Données invalides, établissement ou formation inconnus", "invalid_input",
                      "Certaines données sont invalides.",
                      fields=[{"field": "lycee_uai",
                               "message": "UAI invalide : la lettre de contrôle ne correspond pas aux chiffres"}]),
        503: _refusal(
            "Journal ou base de données momentanément injoignable, ou vue pas encore à `min_position` "
            "(`view_behind`) : une écriture a pu être enregistrée ou non ; réessayer après `Retry-After`, "
            "avec le même `event_id` pour une écriture", "unavailable", UNAVAILABLE_MESSAGE, _RETRY_AFTER,
        ),
    }


def refusals(*statuses: int) -> dict[int, dict[str, Any]]:
    """The refusals of one operation: 401 (the token) and 503 (the log or a database) always, then these."""
    table = _refusals()
    return {status: table[status] for status in sorted({401, 503, *statuses})}


def link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "description": description, "parameters": parameters}


def to_student(operation_id: str, description: str) -> dict[str, Any]:
    """A link from an event answer to an operation on the same student, in the same campaign."""
    return link(operation_id, description, ine="$response.body#/event/student_ine",
                campaign="$response.body#/event/campaign")


def after_write(operation_id: str, description: str) -> dict[str, Any]:
    """A link from an event answer to a read that waits until its view shows the event (read your writes)."""
    return link(operation_id, description, min_position="$response.body#/positions/service",
                campaign="$response.body#/event/campaign")


def write(refused: tuple[int, ...], links: dict[str, dict[str, Any]] | None = None) -> dict[int, dict[str, Any]]:
    """responses= of a write: 201 the event stored, 200 the same request already stored, and its refusals."""
    answers: dict[int, dict[str, Any]] = {
        201: {"model": EventAnswer, "description": "L'événement enregistré et ses positions dans le journal"},
        200: {"model": EventAnswer, "description": "La même demande (même `event_id`) déjà enregistrée : "
                                                   "la réponse d'origine, rien de plus n'est enregistré"},
    }
    if links:
        for status in (201, 200):
            answers[status]["links"] = links
    return {**answers, **refusals(413, 422, *refused)}


def read(model: Any, refused: tuple[int, ...] = (403, 422), description: str = "La réponse",
         links: dict[str, dict[str, Any]] | None = None) -> dict[int, dict[str, Any]]:
    """responses= of a read."""
    ok: dict[str, Any] = {"model": model, "description": description}
    if links:
        ok["links"] = links
    return {200: ok, **refusals(*refused)}


def csv() -> dict[int, dict[str, Any]]:
    """responses= of the Affelnet export: a CSV file, not JSON."""
    return {
        200: {
            "description": "Le fichier Affelnet : `;`, une ligne par vœu bonifié (INE;UAI_ACCUEIL;CODE_MEF;BONUS), "
                           "trié par INE",
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "headers": {
                "Content-Disposition": {"description": "`attachment; filename=\"passpro-affelnet-<campagne>.csv\"`",
                                        "schema": {"type": "string"}},
                "X-Content-SHA256": {"description": "SHA-256 du fichier, tel qu'enregistré dans `/api/audit/exports`",
                                     "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
            },
        },
        **refusals(403, 422),
    }
