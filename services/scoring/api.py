"""Scoring's HTTP API (SPEC §5): campaigns, bonuses, reports, the Affelnet export and the access log.

The audit timeline (`/api/audit/students/{ine}`) is the records' (services/records/http.py), composed in by the CLI."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field
from fastapi.responses import Response

from services.scoring import affelnet as exports, handlers, queries
from services.scoring.handlers import CalendarBody, CampaignBody
from services.scoring.views import positions as positions_table
from shared.domain.calendar import phase_at
from shared.domain.errors import NotFound
from shared.contracts.identifiers import UAI, Campaign, FormationCode
from shared.runtime import access_log
from shared.runtime.http.guard import API_DEPENDENCIES, principal, require_role
from shared.runtime.http.openapi import (
    AccessLog,
    Answer,
    BonusRow,
    ExportRecord,
    Page,
    StudentBonus,
    Summary,
    after_write,
    csv,
    link,
    read,
    write,
)
from shared.runtime.http.requests import CampaignQuery, IneInPath, Limit, MinPositionQuery, Offset
from shared.runtime.http.app import answer_of, runtime
from shared.runtime.projection.views import load_positions

router = APIRouter(prefix="/api", tags=["scoring"], dependencies=API_DEPENDENCIES)

CAMPAIGN_LINKS = {
    "bonus": after_write("list_bonuses", "Les bonus de la campagne, une fois la vue à jour"),
    "synthese": after_write("summary_report", "La synthèse de la campagne, une fois la vue à jour"),
}
# From a list of bonuses: the first student's bonus, history and access log.
FIRST_STUDENT = "$response.body#/items/0/ine"
BONUS_LINKS = {
    "bonus_eleve": link("student_bonus", "Le bonus du premier élève de la liste", ine=FIRST_STUDENT),
    "historique": link("audit_student", "L'historique du premier élève de la liste", ine=FIRST_STUDENT),
    "consultations": link("student_access_log", "Qui a consulté le dossier du premier élève", ine=FIRST_STUDENT),
}


@router.post(
    "/campaigns", status_code=201, operation_id="open_campaign", responses=write((403, 409), CAMPAIGN_LINKS),
    summary="Ouvrir une campagne (CampaignOpened)",
)
async def open_campaign(body: CampaignBody, request: Request):
    return await answer_of(handlers.open_campaign(runtime(request), principal(request), body))


CampaignInPath = Annotated[Campaign, Path(description="Campagne : l'année de la rentrée", examples=["2027"])]


STAFF_ROLES = ("principal", "referent", "lycee_staff", "proviseur", "rectorat")
CALENDAR_LINKS = {
    "calendrier": link("campaign_calendar", "Le calendrier de la campagne", year="$response.body#/event/campaign"),
}


class CampaignNotFound(NotFound):
    def __init__(self) -> None:
        super(NotFound, self).__init__("campaign_not_found", "Campagne introuvable (non ouverte).")


class NextDate(Answer):
    label: str
    date: datetime


class CampaignCalendar(Answer):
    campaign: Campaign
    registrations_until: datetime | None
    interviews_from: datetime | None
    interviews_until: datetime | None
    lycee_avis_until: datetime | None
    closes_at: datetime | None
    phase: str = Field(description="La phase en cours, en français")
    next: NextDate | None = Field(description="La prochaine date du calendrier, s'il en reste une")


@router.get(
    "/campaigns/{year}/calendar", operation_id="campaign_calendar", responses=read(CampaignCalendar, (403, 404, 422)),
    summary="Le calendrier de la campagne et la phase en cours",
)
async def campaign_calendar(year: CampaignInPath, request: Request):
    """Read from the rectorat stream, as the commands' decisions read it (always the latest calendar)."""
    rt = runtime(request)
    require_role(principal(request), *STAFF_ROLES)
    campaign = await rt.log.read_campaign(year)
    if not campaign.opened:
        raise CampaignNotFound()
    dates = {**campaign.calendar.model_dump(), "closes_at": campaign.closes_at}
    phase = phase_at(campaign.calendar.model_copy(update={"closes_at": campaign.closes_at}), rt.clock())
    upcoming = {"label": phase.next_label, "date": phase.next_date} if phase.next_date else None
    return {"campaign": year, **dates, "phase": phase.name, "next": upcoming}


@router.post(
    "/campaigns/{year}/calendar", status_code=201, operation_id="set_campaign_calendar",
    responses=write((403, 409), CALENDAR_LINKS),
    summary="Fixer le calendrier de la campagne (CampaignCalendarSet)",
    description="Les dates de la campagne (SPEC §7), chacune facultative : une date absente garde sa valeur, "
    "une date à `null` est retirée ; le dernier calendrier fixé fait foi. Hors de sa phase, une écriture est refusée "
    "(409 `phase_closed`, avec la date).",
)
async def set_campaign_calendar(year: CampaignInPath, body: CalendarBody, request: Request):
    return await answer_of(handlers.set_calendar(runtime(request), principal(request), year, body))


async def _read(request: Request, min_position: str | None, query):
    rt = runtime(request)
    require_role(principal(request), "rectorat")
    await rt.wait_for(min_position)

    def run():
        with rt.engine.connect() as conn:
            return query(conn), load_positions(conn, positions_table)

    return await asyncio.to_thread(run)


def _short(rt, positions: dict[str, str]) -> dict[str, str]:
    return {rt.keys.stream_name(k): v for k, v in sorted(positions.items())}


@router.get(
    "/bonuses/{ine}", operation_id="student_bonus", responses=read(StudentBonus, (403, 404, 422)),
    summary="Le bonus d'un élève, par vœu",
)
async def student_bonus(ine: IneInPath, request: Request, campaign: CampaignQuery = None, min_position: MinPositionQuery = None):
    rt = runtime(request)
    year = campaign or rt.settings.campaign
    found, positions = await _read(request, min_position, lambda conn: queries.student_bonus(conn, year, ine))
    if found is None:
        raise NotFound()
    return {**found, "positions": _short(rt, positions)}


@router.get(
    "/bonuses", operation_id="list_bonuses", responses=read(Page[BonusRow], links=BONUS_LINKS),
    summary="Les bonus, une ligne par vœu",
)
async def list_bonuses(
    request: Request,
    campaign: CampaignQuery = None,
    lycee_uai: Annotated[UAI | None, Query()] = None,
    formation_code: Annotated[FormationCode | None, Query()] = None,
    college_uai: Annotated[UAI | None, Query()] = None,
    min_points: Annotated[int | None, Query(ge=0, le=100_000)] = None,
    min_position: MinPositionQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    year = campaign or runtime(request).settings.campaign
    (items, total), _ = await _read(
        request,
        min_position,
        lambda conn: queries.bonus_rows(
            conn, year, lycee_uai=lycee_uai, formation_code=formation_code, college_uai=college_uai,
            min_points=min_points, limit=limit, offset=offset,
        ),
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/reports/summary", operation_id="summary_report", responses=read(Summary),
    summary="Synthèse : avis, entretiens, avis du collège manquants",
)
async def summary(request: Request, campaign: CampaignQuery = None, min_position: MinPositionQuery = None):
    year = campaign or runtime(request).settings.campaign
    report, _ = await _read(request, min_position, lambda conn: queries.summary(conn, year))
    return report


@router.get(
    "/exports/affelnet.csv", operation_id="affelnet_export", response_class=Response, responses=csv(),
    summary="Le fichier Affelnet (bonus par vœu)",
)
async def affelnet(request: Request, campaign: CampaignQuery = None, min_position: MinPositionQuery = None):
    year, export = await handlers.export_affelnet(runtime(request), principal(request), campaign, min_position)
    return await affelnet_file(request, year, export)


async def affelnet_file(request: Request, year: str, export: exports.AffelnetExport) -> Response:
    """The exported file as a download, for the API and the rectorat's page. INE and bonus per vœu leave
    for Affelnet: each student named in the file is logged (as the API's or the page's read)."""
    named = access_log.ines_of_affelnet_file(export.content)
    await access_log.record_request(request, year, named, access_log.AFFELNET_EXPORT)
    return Response(
        export.content.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="passpro-affelnet-{year}.csv"',
            "X-Content-SHA256": export.sha256,
        },
    )


@router.get(
    "/audit/exports", operation_id="list_exports", responses=read(Page[ExportRecord]),
    summary="Les exports Affelnet faits : qui, quand, positions couvertes, SHA-256",
)
async def audit_exports(request: Request, campaign: CampaignQuery = None, limit: Limit = 100, offset: Offset = 0):
    rt, who = runtime(request), principal(request)
    require_role(who, "rectorat")
    items, total = await asyncio.to_thread(exports.list_exports, rt.engine, campaign, limit=limit, offset=offset)
    for item in items:
        item["positions"] = _short(rt, item["positions"])
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/access-log/{ine}", operation_id="student_access_log", responses=read(AccessLog, (403, 404, 422)),
    summary="Qui a consulté le dossier d'un élève : quand, qui, quoi, par quel canal",
)
async def student_access_log(ine: IneInPath, request: Request, campaign: CampaignQuery = None):
    rt, who = runtime(request), principal(request)
    require_role(who, "rectorat")
    year = campaign or rt.settings.campaign
    items = [a.as_dict() for a in await access_log.read(rt.redis, rt.keys, year, ine)]
    if not items and not await rt.redis.exists(rt.keys.student(year, ine)):
        raise NotFound()
    return {"ine": ine, "campaign": year, "items": items, "total": len(items), "limit": len(items), "offset": 0}
