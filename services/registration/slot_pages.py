"""The collège's booking on a lycée's slot and the move of an interview (SPEC §7), from the student's page.

The open slots with a free place come from registration's own view (tables `slots` and `slot_bookings`,
shared/runtime/projection/slots.py), paged in SQL; each form runs the API's handler (schedule_interview with a
slot_id, reschedule_interview), so a full or closed slot, an overlap or a mismatch is refused as the API does.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.registration import handlers
from shared.fr.formats import from_paris_input, paris
from shared.fr.labels import MODE_PROSE
from shared.runtime.http.app import answer_of, runtime
from shared.runtime.http.requests import IneInPath
from shared.runtime.projection.slots import slot_page
from shared.web.forms import filled, submit
from shared.web.pages import formation_label, web

router = APIRouter(include_in_schema=False)

SHOWN = 300  # open slots offered in the form, the soonest first
RULE_FIELDS = {
    "slot_full": "slot_id", "slot_closed": "slot_id", "slot_mismatch": "slot_id",
    "interview_overlap": "slot_id", "already_in_slot": "slot_id", "interview_already_scheduled": "slot_id",
    "interview_already_held": "slot_id", "remote_equipment_missing": "remote_equipment_ready",
    "no_active_interview": "slot_id",
}
DONE = {
    "creneau": "L'élève est inscrit sur le créneau du lycée. Rappelez-lui de préparer son itinéraire et sa lettre.",
    "deplacement": "L'entretien est déplacé ; la place de l'ancien créneau est libérée.",
}


async def open_slots(request: Request) -> list[tuple[str, list[tuple[str, str]]]]:
    """The coming slots with a free place, grouped by lycée and formation, for a form's select."""
    rt = runtime(request)
    table, bookings = rt.view.slot_tables

    def read() -> list[dict]:
        with rt.engine.connect() as conn:
            items, _ = slot_page(conn, table, bookings, rt.settings.campaign, start=datetime.now(UTC),
                                 open_only=True, limit=SHOWN)
            return items

    groups: dict[str, list[tuple[str, str]]] = {}
    for s in await asyncio.to_thread(read):
        lycee = rt.reference.lycee(s["lycee_uai"])
        group = f"{lycee.name if lycee else s['lycee_uai']} — {formation_label(rt.reference, s['lycee_uai'], s['formation_code'])}"
        places = f"{s['free']} place libre" if s["free"] == 1 else f"{s['free']} places libres"
        label = f"{paris(s['starts_at'])}, {s['duration_minutes']} min, {MODE_PROSE.get(s['mode'], s['mode'])} ({s['place']}) — {places}"
        groups.setdefault(group, []).append((s["slot_id"], label))
    return list(groups.items())


def _answer(request: Request, ine: str, posted: str, result, form: dict):  # noqa: ANN001
    """The student's page's answer to a form (pages.install hands it over: the pages import this module)."""
    return request.app.state.student_answer(request, ine, posted, result, form)


@router.post("/eleves/{ine}/entretiens/creneau")
async def book_slot(ine: IneInPath, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = filled(form, "event_id", "slot_id")
    body["remote_equipment_ready"] = form.get("remote_equipment_ready") == "on"
    result = await submit(
        lambda: answer_of(handlers.schedule_interview(runtime(request), who, ine, handlers.ScheduleBody.model_validate(body))),
        rule_fields=RULE_FIELDS,
    )
    return await _answer(request, ine, "creneau", result, form)


@router.post("/eleves/{ine}/entretiens/deplacement")
async def move_interview(ine: IneInPath, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = filled(form, "event_id", "lycee_uai", "formation_code", "slot_id", "scheduled_at", "mode")
    if "scheduled_at" in body:
        body["scheduled_at"] = from_paris_input(body["scheduled_at"])
    result = await submit(
        lambda: answer_of(handlers.reschedule_interview(runtime(request), who, ine, handlers.RescheduleBody.model_validate(body))),
        rule_fields=RULE_FIELDS,
    )
    posted = f"deplacement-{form.get('lycee_uai', '')}-{form.get('formation_code', '')}"
    return await _answer(request, ine, posted if not result.ok else "deplacement", result, form)
