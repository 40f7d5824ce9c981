"""The lycée's « Créneaux » page (SPEC §7): its slots with their free places, publishing one slot or a series
(days of the week between two dates, from one hour to another, a length and a number of places), and closing
one. Each form runs the API's handler (`slots.open_slot`, `slots.close_slot`): same checks, same refusals."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, time, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.evaluation import slots
from shared.fr.formats import PARIS, from_paris_input
from shared.runtime.http.app import runtime
from shared.web.forms import Submitted, filled, submit
from shared.web.pages import done, valid_position, web
from shared.web.paging import page_number, paging

router = APIRouter(include_in_schema=False)

PAGE = 50
MAX_SERIES = 200  # slots one series may publish
WEEKDAYS = [("0", "lundi"), ("1", "mardi"), ("2", "mercredi"), ("3", "jeudi"), ("4", "vendredi"), ("5", "samedi")]
DONE = {
    "creneau": "Le créneau est publié : les collèges peuvent y inscrire leurs élèves.",
    "serie": "La série de créneaux est publiée.",
    "fermeture": "Le créneau est fermé : il ne reçoit plus d'inscription.",
}


class SeriesError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def series_starts(
    first_day: date, last_day: date, weekdays: set[int], start: time, end: time, minutes: int
) -> list[datetime]:
    """Every slot's start of a series, in Paris time: on each chosen weekday from `first_day` to `last_day`,
    from `start` on, one every `minutes`, each ending by `end`."""
    if last_day < first_day:
        raise SeriesError("last_day", "La date de fin précède la date de début.")
    if not weekdays:
        raise SeriesError("weekdays", "Choisissez au moins un jour de la semaine.")
    if not 10 <= minutes <= 120:
        raise SeriesError("duration_minutes", "La durée d'un créneau va de 10 à 120 minutes.")
    starts = []
    day = first_day
    while day <= last_day:
        if day.weekday() in weekdays:
            moment = datetime.combine(day, start, PARIS)
            while moment + timedelta(minutes=minutes) <= datetime.combine(day, end, PARIS):
                starts.append(moment)
                if len(starts) > MAX_SERIES:
                    raise SeriesError("last_day", f"Une série publie au plus {MAX_SERIES} créneaux.")
                moment += timedelta(minutes=minutes)
        day += timedelta(days=1)
    if not starts:
        raise SeriesError("end", "Aucun créneau ne tient dans ces jours et ces heures.")
    return starts


async def _page(
    request: Request, *, page: str | None = None, notice: str | None = None, position: str | None = None,
    posted: str | None = None, result: Submitted | None = None, values: dict | None = None,
) -> Response:
    w, rt = web(request), runtime(request)
    who = w.user(request)
    await rt.wait_for(valid_position(position))
    lycee = rt.reference.lycee(who.uai)
    table, bookings = rt.view.slot_tables
    number = page_number(page)

    def read(offset: int) -> tuple[list[dict], int]:
        with rt.engine.connect() as conn:
            return slots.slot_page(conn, table, bookings, rt.settings.campaign, who.uai, limit=PAGE, offset=offset)

    items, total = await asyncio.to_thread(read, (number - 1) * PAGE)
    pages = paging(number, total, "/creneaux", {}, PAGE)
    if pages.number != number:
        items, total = await asyncio.to_thread(read, pages.offset)
    context = {
        "who": who, "slots": items, "total": total, "paging": pages, "notice": notice,
        "formations": [(f.code, f.label) for f in lycee.formations] if lycee else [],
        "weekdays": WEEKDAYS, "posted": posted, "values": values or {},
        "errors": result.errors if result else {}, "message": result.message if result else None,
    }
    return w.render(request, "creneaux.html", context, status=result.status if result else 200)


@router.get("/creneaux")
async def slots_page(request: Request, page: str | None = None, fait: str | None = None,
                     position: str | None = None) -> Response:
    return await _page(request, page=page, notice=DONE.get(fait or ""), position=position)


def _slot_body(who_uai: str, form: dict, starts_at: datetime | str | None, event_id: str | None) -> dict:
    body = filled(form, "formation_code", "duration_minutes", "capacity", "mode", "place")
    for number in ("duration_minutes", "capacity"):
        if body.get(number, "").strip().isdigit():
            body[number] = int(body[number])
    body |= {"lycee_uai": who_uai}
    if starts_at:
        body["starts_at"] = starts_at
    if event_id:
        body["event_id"] = event_id
    return body


@router.post("/creneaux")
async def publish_slot(request: Request) -> Response:
    who, form = await web(request).post(request)
    starts_at = from_paris_input(form["starts_at"]) if form.get("starts_at", "").strip() else None
    body = _slot_body(who.uai, form, starts_at, form.get("event_id"))
    rt = runtime(request)
    result = await submit(
        lambda: slots.answer_of(slots.open_slot(rt, who, slots.SlotBody.model_validate(body)))
    )
    if result.ok:
        return done("/creneaux", "creneau", result.position)
    return await _page(request, posted="creneau", result=result, values=form)


@router.post("/creneaux/serie")
async def publish_series(request: Request) -> Response:
    who, form = await web(request).post(request)
    rt = runtime(request)
    try:
        first = date.fromisoformat(form.get("first_day", ""))
        last = date.fromisoformat(form.get("last_day", ""))
    except ValueError:
        return await _page(request, posted="serie", values=form, result=Submitted(
            422, errors={"first_day": "Dates attendues (du … au …)."}))
    try:
        start, end = time.fromisoformat(form.get("start", "")), time.fromisoformat(form.get("end", ""))
    except ValueError:
        return await _page(request, posted="serie", values=form, result=Submitted(
            422, errors={"start": "Heures attendues (de … à …)."}))
    try:
        minutes = int(form.get("duration_minutes", "0"))
        starts = series_starts(first, last, {int(d) for d, _ in WEEKDAYS if form.get(f"weekday_{d}")}, start, end, minutes)
    except ValueError as exc:
        field = exc.field if isinstance(exc, SeriesError) else "duration_minutes"
        message = str(exc) if isinstance(exc, SeriesError) else "Un nombre de minutes est attendu."
        return await _page(request, posted="serie", values=form, result=Submitted(422, errors={field: message}))
    # One event per slot; each id made from the form's, so the same form sent twice publishes nothing twice.
    series_id = uuid.UUID(form["event_id"]) if _is_uuid(form.get("event_id")) else uuid.uuid4()
    position = None
    for n, moment in enumerate(starts):
        body = _slot_body(who.uai, form, moment, str(uuid.uuid5(series_id, str(n))))
        result = await submit(lambda: slots.answer_of(slots.open_slot(rt, who, slots.SlotBody.model_validate(body))))
        if not result.ok:
            return await _page(request, posted="serie", result=result, values=form)
        position = result.position
    return done("/creneaux", "serie", position)


def _is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(value or "")
        return True
    except ValueError:
        return False


@router.post("/creneaux/{slot_id}/fermeture")
async def close_slot(slot_id: str, request: Request) -> Response:
    who, form = await web(request).post(request)
    rt = runtime(request)
    body = filled(form, "event_id")
    result = await submit(lambda: slots.answer_of(slots.close_slot(rt, who, slot_id, slots.CloseSlotBody.model_validate(body))))
    if result.ok:
        return done("/creneaux", "fermeture", result.position)
    if result.status in (403, 404):
        return web(request).error_page(request, result.status, result.reason)
    return await _page(request, posted="fermeture", result=result, values=form)
