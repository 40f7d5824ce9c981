"""What the records add to scoring's app, composed by the CLI (services/cli/common.py `scoring_app`): the
audit timeline's API route, the rectorat's student page (its timeline) and the family's copy, and the
checkpointing task. Scoring never imports records; records reads the app's runtime like any route."""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, Template

from services.records import checkpoints, family_copy
from services.records.timeline import InvalidAsOf, student_audit
from shared.domain.errors import InvalidInput, NotFound, Refusal
from shared.runtime import access_log
from shared.runtime.http.app import runtime
from shared.runtime.http.guard import API_DEPENDENCIES, principal, require_role
from shared.runtime.http.openapi import AS_OF_SCHEMA, AuditTimeline, read
from shared.runtime.http.requests import CampaignQuery, IneInPath
from shared.fr.formats import PARIS, as_datetime, from_paris_input
from shared.web.pages import secure_page, web

if TYPE_CHECKING:
    from services.scoring.settings import ScoringSettings
    from shared.runtime.http.app import BackgroundTask

api = APIRouter(prefix="/api", tags=["scoring"], dependencies=API_DEPENDENCIES)
pages = APIRouter(include_in_schema=False)
TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def _with_records(env: Environment) -> Environment:
    """The app's environment (its filters, globals and layout) that finds the records' templates first."""
    return env.overlay(loader=ChoiceLoader([FileSystemLoader(TEMPLATES), env.loader]))


def template(request: Request, name: str) -> Template:
    """A records page's template (services/records/templates), laid out as the app's other pages."""
    return _with_records(web(request).env).get_template(name)


def routers() -> list[APIRouter]:
    return [api, pages]


def background_tasks(settings: ScoringSettings) -> dict[str, BackgroundTask]:
    return checkpoints.background_tasks(settings)


@api.get(
    "/audit/students/{ine}", operation_id="audit_student", responses=read(AuditTimeline, (403, 404, 422)),
    summary="L'historique complet d'un élève et son bonus à une date ou une position",
)
async def audit_student(
    ine: IneInPath,
    request: Request,
    campaign: CampaignQuery = None,
    as_of: Annotated[
        str | None,
        Query(max_length=64, description="Une date RFC 3339 avec fuseau, ou une position du journal (ms-seq)",
              json_schema_extra=AS_OF_SCHEMA),
    ] = None,
):
    rt, who = runtime(request), principal(request)
    require_role(who, "rectorat")
    year = campaign or rt.settings.campaign
    establishments = {e.uai: e.name for e in rt.reference.establishments}
    try:
        keyring = await rt.log.keyring(year, ine)
        report = await student_audit(rt.redis, rt.keys, year, ine, as_of, establishments, keyring)
    except InvalidAsOf as exc:
        raise InvalidInput("invalid_as_of", str(exc), "as_of") from exc
    if report is None:
        raise NotFound()
    await access_log.record_request(request, year, [ine], access_log.AUDIT_TIMELINE)
    return report



@pages.get("/eleves/{ine}")
async def student(ine: IneInPath, request: Request, etat_au: str = "") -> Response:
    w = web(request)
    who = w.user(request)
    as_of, errors = None, {}
    if etat_au.strip():
        moment = from_paris_input(etat_au)
        as_of = moment.isoformat() if isinstance(moment, datetime) else etat_au.strip()
    try:
        audit = await audit_student(ine, request, campaign=None, as_of=as_of)
    except Refusal as exc:
        if exc.status != 422:
            raise
        errors["etat_au"] = exc.message
        audit = await audit_student(ine, request, campaign=None, as_of=None)
        as_of = None
    registered = next((e for e in audit["timeline"] if e["event_type"] == "StudentRegistered"), None)
    context = {
        "who": who,
        "audit": audit,
        "registered": registered["payload"] if registered else None,
        "values": {"etat_au": etat_au},
        "errors": errors,
        "as_of": as_datetime(as_of) if as_of else None,
    }
    return w.render(request, template(request, "eleve.html"), context, status=422 if errors else 200)


@pages.get("/eleves/{ine}/dossier")
async def family_copy_page(ine: IneInPath, request: Request) -> Response:
    """The family's copy, as `passpro student-file` writes it: a self-contained, printable page; its read is logged."""
    w, rt = web(request), runtime(request)
    who = w.user(request)
    year = rt.settings.campaign
    names = {e.uai: e.name for e in rt.reference.establishments}
    keyring = await rt.log.keyring(year, ine)
    report = await student_audit(
        rt.redis, rt.keys, year, ine, None, names, keyring, show_time=family_copy.paris_time
    )
    if report is None:
        raise NotFound()
    await access_log.record_request(request, year, [ine], access_log.FAMILY_COPY)
    accesses = [a.as_dict() for a in await access_log.read(rt.redis, rt.keys, year, ine)]
    content = family_copy.build(
        report, accesses, rt.reference, generated_at=datetime.now(PARIS), generated_by=f"{who.user_id} (rectorat)"
    )
    html = family_copy.render(content, back_link=f"/eleves/{ine}")
    response = HTMLResponse(html)
    secure_page(response)
    # The document carries its print CSS inline (so the file stands alone): allow exactly that style.
    policy = response.headers["Content-Security-Policy"]
    response.headers["Content-Security-Policy"] = policy.replace(
        "style-src 'self'", f"style-src 'self' {family_copy.style_sources(html)}"
    )
    return response
