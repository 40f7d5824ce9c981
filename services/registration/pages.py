"""The collège's pages (« Mes élèves » and its forms).

Every form builds the command the API takes and runs it through the same handler
(`handlers`), so a page and a JSON client meet the same checks, in the same order,
with the same refusals; reads are waited on until they show the user's write.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from services.registration import handlers, queries, slot_pages, todo
from shared.domain.errors import NotFound
from shared.runtime import access_log
from shared.runtime.http.requests import IneInPath
from shared.runtime.http.app import answer_of, runtime
from shared.fr.formats import from_paris_input
from shared.web.forms import Submitted, filled, nest, submit
from shared.web.install import install_pages
from shared.web.pages import Web, done, valid_position, web
from shared.web.paging import PAGE_SIZE, page_number, paging

TEMPLATES = Path(__file__).parent / "templates"

router = APIRouter(include_in_schema=False)

DONE = {
    "inscription": "L'élève est inscrit au dispositif Passpro.",
    "referent": "Le référent de l'élève est changé.",
    "entretien": "L'élève est inscrit à l'entretien. Rappelez-lui de préparer son itinéraire et sa lettre de motivation.",
    "annulation": "L'entretien est annulé.",
    "avis": "L'avis du collège est enregistré : le lycée le verra lors de l'entretien.",
    "retrait": "L'élève est retiré du dispositif.",
    "reintegration": "L'élève est réintégré au dispositif.",
    **slot_pages.DONE,
}

# Rules whose refusal concerns one field of the form (the API names the rule, not the field).
RULE_FIELDS = {
    "already_registered": "student_ine",
    "remote_equipment_missing": "remote_equipment_ready",
    "interview_already_scheduled": "voeu",
    "interview_already_held": "voeu",
    "college_avis_after_interview": "avis",
}
VOEU = {"lycee_uai": "voeu", "formation_code": "voeu"}


def install(app: FastAPI) -> None:
    install_pages(app, Web("registration", "Espace collège", handlers.COLLEGE_ROLES, TEMPLATES), router)
    app.include_router(slot_pages.router)  # booking a slot, moving an interview (SPEC §7)
    app.state.student_answer = _answer  # how slot_pages answers a form of the student's page, without importing this


def _voeu_choices(request: Request) -> list[tuple[str, list[tuple[str, str]]]]:
    reference = runtime(request).reference
    return [
        (lycee.name, [(f"{lycee.uai}:{f.code}", f"{f.label} ({f.code})") for f in lycee.formations])
        for lycee in sorted((e for e in reference.establishments if e.type == "lycee"), key=lambda e: e.name)
    ]


async def _read(request: Request, position: str | None, read):
    """`read(conn, campaign)` on this service's view, once the view has reached `position`."""
    rt = runtime(request)
    await rt.wait_for(valid_position(position))

    def run():
        with rt.engine.connect() as conn:
            return read(conn, rt.settings.campaign)

    return await asyncio.to_thread(run)


async def _student(request: Request, college_uai: str, ine: str, position: str | None) -> dict | None:
    """One of the collège's students with their progress (only their file is read), unlogged."""
    file, points = await _read(
        request, position,
        lambda conn, year: (queries.college_student(conn, year, college_uai, ine), queries.bonus_points(conn, year)),
    )
    return handlers.progress(file, points) if file else None


async def _log_shown(request: Request, students: list[dict], what: str) -> None:
    await access_log.record_request(request, runtime(request).settings.campaign, [s["ine"] for s in students], what)


def _referent_id_defaults_to_email(body: dict) -> None:
    """A principal rarely knows a colleague's user id: their academic e-mail identifies them by default."""
    referent = body.get("referent")
    if referent and not referent.get("user_id") and referent.get("email"):
        referent["user_id"] = referent["email"]


# --- the families' information notice (RGPD, articles 13 and 14), open to anyone -----------------


@router.get("/information-familles")
async def information_notice(request: Request) -> Response:
    w = web(request)
    return w.render(request, "information.html", {"who": w.visitor(request), "current": "information"})


# --- « Mes élèves » ---------------------------------------------------------------------------


@router.get("/")
async def my_students(
    request: Request, page: str | None = None, fait: str | None = None, position: str | None = None,
    eleves: str = "", afaire: str | None = None,
) -> Response:
    w = web(request)
    visitor = w.visitor(request)
    if visitor is not None and visitor.role == "eleve":  # a student's home is their own space (SPEC §6)
        return RedirectResponse("/eleve", status_code=303)
    who = w.user(request)
    # Paged in SQL: only the page's files are read; the counters are counts of the view's narrow rows.
    number = page_number(page)
    rt = runtime(request)
    offset = (number - 1) * PAGE_SIZE
    answer = await handlers.students_page(rt, who, None, None, valid_position(position), PAGE_SIZE, offset)
    pages = paging(number, answer["total"], "/", {}, PAGE_SIZE)
    if pages.number != number:  # past the last page: its last page
        answer = await handlers.students_page(rt, who, None, None, None, PAGE_SIZE, pages.offset)
    counts = await _read(request, None, lambda conn, year: queries.college_counts(conn, year, who.uai))
    students = answer["items"]
    context = {
        "who": who, "students": students, "total": answer["total"], "paging": pages, "counts": counts,
        "notice": DONE.get(fait or ""),
        "todo": await todo.todo_of(request, who, eleves, afaire),  # the day's work (SPEC §7)
    }
    await _log_shown(request, students, access_log.STUDENT_LIST)
    return w.render(request, "eleves.html", context)


@router.get("/eleves/nouveau")
async def new_student(request: Request) -> Response:
    w = web(request)
    return w.render(request, "nouveau.html", {"who": w.user(request)})


@router.post("/eleves")
async def register(request: Request) -> Response:
    w = web(request)
    who, form = await w.post(request)
    body = nest(filled(form, "event_id", "student_ine", "last_name", "first_name", "class_name",
                       "referent.name", "referent.email", "referent.user_id"))
    body["college_uai"] = who.uai
    _referent_id_defaults_to_email(body)
    result = await submit(
        lambda: answer_of(handlers.register(runtime(request), who, handlers.RegisterBody.model_validate(body))),
        rule_fields=RULE_FIELDS,
    )
    if result.ok:
        return done(f"/eleves/{result.body['event']['student_ine']}", "inscription", result.position)
    return w.render(
        request, "nouveau.html",
        {"who": who, "values": form, "errors": result.errors, "message": result.message, "posted": "inscription"},
        status=result.status,
    )


# --- one student -------------------------------------------------------------------------------


async def _student_page(
    request: Request, ine: str, *, position: str | None = None, notice: str | None = None,
    posted: str | None = None, result: Submitted | None = None, values: dict | None = None,
) -> Response:
    w = web(request)
    who = w.user(request)
    student = await _student(request, who.uai, ine, position)
    if student is None:
        raise NotFound()  # another collège's student reads as unknown, as in the API
    await _log_shown(request, [student], access_log.STUDENT_PAGE)
    context = {
        "who": who,
        "student": student,
        "notice": notice,
        "voeux": _voeu_choices(request),
        "slots": await slot_pages.open_slots(request),
        "posted": posted,
        "values": values or {},
        "errors": result.errors if result else {},
        "message": result.message if result else None,
    }
    return w.render(request, "eleve.html", context, status=result.status if result else 200)


@router.get("/eleves/{ine}")
async def student(ine: IneInPath, request: Request, fait: str | None = None, position: str | None = None) -> Response:
    return await _student_page(request, ine, position=position, notice=DONE.get(fait or ""))


async def _answer(
    request: Request, ine: str, posted: str, result: Submitted, form: dict, what: str | None = None
) -> Response:
    """Back to the student's page with a confirmation, or the page again with the refusal by its fields."""
    if result.ok:
        return done(f"/eleves/{ine}", what or posted, result.position)
    if result.status in (403, 404):
        return web(request).error_page(request, result.status, result.reason)
    return await _student_page(request, ine, posted=posted, result=result, values=form)


@router.post("/eleves/{ine}/referent")
async def reassign_referent(ine: IneInPath, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = nest(filled(form, "event_id", "referent.name", "referent.email", "referent.user_id"))
    _referent_id_defaults_to_email(body)
    result = await submit(
        lambda: answer_of(
            handlers.reassign_referent(runtime(request), who, ine, handlers.ReferentBody.model_validate(body))
        )
    )
    return await _answer(request, ine, "referent", result, form)


@router.post("/eleves/{ine}/entretiens")
async def schedule_interview(ine: IneInPath, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = filled(form, "event_id", "scheduled_at", "mode", "room")
    lycee, _, formation = form.get("voeu", "").partition(":")
    body |= filled({"lycee_uai": lycee, "formation_code": formation})
    if "scheduled_at" in body:
        body["scheduled_at"] = from_paris_input(body["scheduled_at"])
    body["remote_equipment_ready"] = form.get("remote_equipment_ready") == "on"
    result = await submit(
        lambda: answer_of(
            handlers.schedule_interview(runtime(request), who, ine, handlers.ScheduleBody.model_validate(body))
        ),
        aliases=VOEU, rule_fields=RULE_FIELDS,
    )
    return await _answer(request, ine, "entretien", result, form)


@router.post("/eleves/{ine}/entretiens/annulation")
async def cancel_interview(ine: IneInPath, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = filled(form, "event_id", "lycee_uai", "formation_code", "reason")
    result = await submit(
        lambda: answer_of(
            handlers.cancel_interview(runtime(request), who, ine, handlers.CancelBody.model_validate(body))
        ),
        rule_fields={"no_active_interview": "reason"},
    )
    posted = f"annulation-{form.get('lycee_uai', '')}-{form.get('formation_code', '')}"
    return await _answer(request, ine, posted, result, form, what="annulation")


@router.post("/eleves/{ine}/avis")
async def give_college_avis(ine: IneInPath, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = filled(form, "event_id", "avis", "comment") | {"college_uai": who.uai}
    result = await submit(
        lambda: answer_of(
            handlers.give_college_avis(runtime(request), who, ine, handlers.CollegeAvisBody.model_validate(body))
        ),
        rule_fields=RULE_FIELDS,
    )
    return await _answer(request, ine, "avis", result, form)


@router.post("/eleves/{ine}/retrait")
async def withdraw(ine: IneInPath, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = filled(form, "event_id", "reason")
    result = await submit(
        lambda: answer_of(handlers.withdraw(runtime(request), who, ine, handlers.ReasonBody.model_validate(body)))
    )
    return await _answer(request, ine, "retrait", result, form)


@router.post("/eleves/{ine}/reintegration")
async def reinstate(ine: IneInPath, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = filled(form, "event_id", "reason")
    result = await submit(
        lambda: answer_of(handlers.reinstate(runtime(request), who, ine, handlers.ReasonBody.model_validate(body)))
    )
    return await _answer(request, ine, "reintegration", result, form)
