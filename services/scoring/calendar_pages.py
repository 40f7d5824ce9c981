"""The rectorat's « Calendrier » page (SPEC §7): the campaign's dates and the phase it is in, and the form that
sets them, running the API's handler (`handlers.set_calendar`): same checks, same refusals. Each date is a
Paris time; a date left blank is removed (the form always states the whole calendar)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.scoring import handlers
from shared.domain.calendar import FIELDS, phase_at
from shared.fr.formats import from_paris_input, paris_input
from shared.runtime.commands import Outcome
from shared.runtime.http.app import answer_of, runtime
from shared.web.forms import Submitted, submit
from shared.web.pages import done, valid_position, web

router = APIRouter(include_in_schema=False)

LABELS = {
    "registrations_until": "Fin des inscriptions",
    "interviews_from": "Début des entretiens",
    "interviews_until": "Fin des entretiens",
    "lycee_avis_until": "Fin des avis des lycées",
    "closes_at": "Clôture de la campagne",
}
HINTS = {
    "registrations_until": "Après cette date, aucun collège n'inscrit plus d'élève.",
    "interviews_from": "Aucun entretien fixé, déplacé ou tenu avant cette date.",
    "interviews_until": "Aucun entretien fixé, déplacé ou tenu après cette date.",
    "lycee_avis_until": "Après cette date, les proviseurs ne donnent plus d'avis.",
    "closes_at": "Après la clôture, tout reste consultable, plus rien ne s'écrit.",
}


async def _page(request: Request, *, notice: str | None = None, position: str | None = None,
                result: Submitted | None = None, values: dict | None = None) -> Response:
    w, rt = web(request), runtime(request)
    who = w.user(request)
    await rt.wait_for(valid_position(position))
    campaign = await rt.log.read_campaign(rt.settings.campaign)
    calendar = campaign.calendar.model_copy(update={"closes_at": campaign.closes_at})
    current = {name: paris_input(getattr(calendar, name)) for name in FIELDS}
    context = {
        "who": who, "current": "calendrier", "notice": notice, "opened": campaign.opened,
        "dates": [(name, LABELS[name], HINTS[name], getattr(calendar, name)) for name in FIELDS],
        "phase": phase_at(calendar, rt.clock()), "values": values or current,
        "errors": result.errors if result else {}, "message": result.message if result else None,
        "posted": "calendrier" if result else None,
    }
    return w.render(request, "calendrier.html", context, status=result.status if result else 200)


@router.get("/calendrier")
async def calendar_page(request: Request, fait: str | None = None, position: str | None = None) -> Response:
    notice = "Le calendrier de la campagne est enregistré." if fait == "calendrier" else None
    return await _page(request, notice=notice, position=position)


@router.post("/calendrier")
async def set_calendar(request: Request) -> Response:
    who, form = await web(request).post(request)
    rt = runtime(request)
    body: dict = {name: (from_paris_input(form[name]) if form.get(name, "").strip() else None) for name in FIELDS}
    if form.get("event_id"):
        body["event_id"] = form["event_id"]

    def run() -> Outcome:
        return handlers.set_calendar(rt, who, rt.settings.campaign, handlers.CalendarBody.model_validate(body))

    result = await submit(lambda: answer_of(run()))
    if result.ok:
        return done("/calendrier", "calendrier", result.position)
    return await _page(request, result=result, values=form)
