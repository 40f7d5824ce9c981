"""The lycée's pages (« Entretiens », the compte rendu and the proviseur's avis).

A form builds the command the API takes and runs it through the same handler
(`handlers`), so the checks, their order and the refusals are the API's; the
interview page reads the student's file from this service's view and applies
the same visibility rule as the decisions.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import select

from services.evaluation import handlers, queries, slot_pages, todo, views
from shared.domain.errors import NotFound
from shared.contracts.identifiers import FormationCode
from shared.domain.rules import visible_to_lycee
from shared.contracts.letter import default_letter_template
from shared.domain.student_file import Interview, StudentFile, ready_letter, voeu_key
from shared.runtime import access_log
from shared.runtime.http.requests import IneInPath
from shared.runtime.http.app import answer_of, runtime
from shared.runtime.projection.views import campaign_bonus_points
from shared.fr.formats import PARIS, as_datetime, from_paris_input, paris
from shared.web.forms import Submitted, filled, nest, submit
from shared.web.install import install_pages
from shared.web.pages import Web, done, valid_position, web
from shared.web.paging import PAGE_SIZE, page_number, paging

TEMPLATES = Path(__file__).parent / "templates"

router = APIRouter(include_in_schema=False)

DONE = {
    "compte-rendu": "L'entretien est enregistré comme tenu, avec son compte rendu.",
    "annulation": "L'entretien est annulé.",
    "avis": "L'avis du lycée est enregistré.",
    "correction": "Le compte rendu corrigé est enregistré.",
}
STATUS_FILTERS = {"": "Tous", "scheduled": "À venir", "held": "Tenus", "cancelled": "Annulés"}


def install(app: FastAPI) -> None:
    install_pages(app, Web("evaluation", "Espace lycée", handlers.LYCEE_ROLES, TEMPLATES), router)
    app.include_router(slot_pages.router)  # « Créneaux » (SPEC §7)


# --- « Entretiens » -----------------------------------------------------------------------------


@router.get("/")
async def interviews(
    request: Request, formation: str = "", statut: str = "", page: str | None = None,
    fait: str | None = None, position: str | None = None, afaire_formation: str = "", afaire: str | None = None,
) -> Response:
    w = web(request)
    who = w.user(request)
    lycee = runtime(request).reference.lycee(who.uai)
    number = page_number(page)
    # Paged and filtered in SQL: only the page's files are read; the counters are counts of the view's rows.
    rt = runtime(request)
    answer = await handlers.interviews_page(
        rt, who, None, None, valid_position(position), PAGE_SIZE, (number - 1) * PAGE_SIZE, formation, statut
    )
    filters = {"formation": formation, "statut": statut}
    pages = paging(number, answer["total"], "/", filters, PAGE_SIZE)
    if pages.number != number:  # past the last page: its last page
        answer = await handlers.interviews_page(rt, who, None, None, None, PAGE_SIZE, pages.offset, formation, statut)
    counts = await _counts(request, who.uai)
    shown = answer["items"]
    # The API sorts by time, then formation: one group per day in Paris, in that order.
    days = [(day, list(group)) for day, group in groupby(shown, key=lambda i: paris(i["scheduled_at"], "day"))]
    await _log_shown(request, [i["ine"] for i in shown], access_log.INTERVIEW_LIST)
    context = {
        "who": who,
        "days": days,
        "total": answer["total"],
        "paging": pages,
        "counts": counts,
        "formations": [(f.code, f.label) for f in lycee.formations] if lycee else [],
        "filters": filters,
        "status_filters": STATUS_FILTERS,
        "notice": DONE.get(fait or ""),
        "todo": await todo.todo_of(request, who, afaire_formation, afaire),  # the day's work (SPEC §7)
    }
    return w.render(request, "entretiens.html", context)


async def _counts(request: Request, lycee_uai: str) -> dict[str, int]:
    """The counters by status over all the lycée's interviews, whatever the filters (key "" for all)."""
    rt = runtime(request)

    def count() -> dict[str, int]:
        with rt.engine.connect() as conn:
            return queries.lycee_interview_counts(conn, rt.settings.campaign, lycee_uai)

    by_status = await asyncio.to_thread(count)
    return {key: by_status.get(key, 0) if key else sum(by_status.values()) for key in STATUS_FILTERS}


async def _log_shown(request: Request, ines: list[str], what: str) -> None:
    await access_log.record_request(request, runtime(request).settings.campaign, ines, what)


# --- one interview -------------------------------------------------------------------------------


async def _file(request: Request, ine: str, position: str | None) -> tuple[StudentFile | None, int]:
    """The student's file in this service's view, and the campaign's bonus, once the view has reached `position`."""
    rt = runtime(request)
    await rt.wait_for(valid_position(position))
    year = rt.settings.campaign

    def read() -> tuple[str | None, int]:
        with rt.engine.connect() as conn:
            found = conn.execute(
                select(views.student_files.c.file).where(
                    views.student_files.c.campaign == year, views.student_files.c.ine == ine
                )
            ).scalar()
            return found, campaign_bonus_points(conn, views.campaigns).get(year, 0)

    found, bonus = await asyncio.to_thread(read)
    return (StudentFile.model_validate_json(found) if found else None), bonus


def _interview(file: StudentFile, lycee_uai: str, formation_code: str) -> Interview | None:
    """The vœu's interview that matters now: the one held, else the one scheduled, else the last cancelled."""
    candidates = file.interviews_for(lycee_uai, formation_code)
    rank = {"held": 2, "scheduled": 1, "cancelled": 0}
    return max(candidates, key=lambda i: (rank[i.status], i.status_version), default=None)


async def _interview_context(request: Request, ine: str, formation_code: str, position: str | None = None) -> dict:
    w = web(request)
    who = w.user(request)
    file, bonus = await _file(request, ine, position)
    if file is None:
        raise NotFound()
    visible_to_lycee(file, who.uai)  # the decisions' own rule: another lycée's student reads as unknown
    interview = _interview(file, who.uai, formation_code)
    if interview is None:
        raise NotFound()
    history = file.lycee_avis.get(voeu_key(who.uai, formation_code), ())
    return {
        "who": who, "file": file, "interview": interview, "history": list(reversed(history)),
        "formation_code": formation_code, "bonus": bonus,
        "letter": ready_letter(file, who.uai, formation_code), "letter_template": default_letter_template(),
    }


def _held_default(interview: Interview) -> datetime:
    """The report form's « held at »: the scheduled time (SPEC §7), never « now » — an interview scheduled for
    tomorrow is not recorded as held today without the lycée changing the time; now when there is none."""
    scheduled = as_datetime(interview.scheduled_at)
    return scheduled or datetime.now(UTC).replace(second=0, microsecond=0)


async def _interview_page(
    request: Request, ine: str, formation_code: str, *, position: str | None = None, notice: str | None = None,
    posted: str | None = None, result: Submitted | None = None, values: dict | None = None,
) -> Response:
    context = await _interview_context(request, ine, formation_code, position)
    await _log_shown(request, [ine], access_log.INTERVIEW_PAGE)
    context |= {
        "notice": notice,
        "held_default": _held_default(context["interview"]),
        "posted": posted,
        "values": values or {},
        "errors": result.errors if result else {},
        "message": result.message if result else None,
        "confirm_early": bool(result and result.errors.get("confirm_early")),
    }
    return web(request).render(request, "entretien.html", context, status=result.status if result else 200)


@router.get("/eleves/{ine}/{formation_code}")
async def interview(
    ine: IneInPath, formation_code: FormationCode, request: Request,
    fait: str | None = None, position: str | None = None,
) -> Response:
    return await _interview_page(request, ine, formation_code, position=position, notice=DONE.get(fait or ""))


@router.get("/eleves/{ine}/{formation_code}/compte-rendu")
async def printable_report(ine: IneInPath, formation_code: FormationCode, request: Request) -> Response:
    context = await _interview_context(request, ine, formation_code)
    if context["interview"].status != "held":
        not_yet = "Cet entretien n'a pas encore eu lieu : il n'a pas de compte rendu."
        return web(request).error_page(request, 404, not_yet)
    await _log_shown(request, [ine], access_log.PRINTED_REPORT)
    context["printed_at"] = datetime.now(PARIS)
    return web(request).render(request, "compte_rendu.html", context)


async def _answer(
    request: Request, ine: str, formation_code: str, posted: str, result: Submitted, form: dict
) -> Response:
    """Back to the interview's page with a confirmation, or the page again with the refusal by its fields."""
    if result.ok:
        return done(f"/eleves/{ine}/{formation_code}", posted, result.position)
    if result.status in (403, 404):
        return web(request).error_page(request, result.status, result.reason)
    return await _interview_page(request, ine, formation_code, posted=posted, result=result, values=form)


@router.post("/eleves/{ine}/{formation_code}/compte-rendu")
async def record_held(ine: IneInPath, formation_code: FormationCode, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = nest(filled(
        form, "event_id", "held_at", "mode", "report.motivation", "report.chances_of_success", "report.advice"
    ))
    body |= {"lycee_uai": who.uai, "formation_code": formation_code}
    if "held_at" in body:
        body["held_at"] = from_paris_input(body["held_at"])
        early = await _before_scheduled(request, ine, formation_code, body["held_at"])
        if early and form.get("confirm_early") != "on":  # SPEC §7: a time before the scheduled one is confirmed
            asked = Submitted(422, errors={"confirm_early": early})
            return await _answer(request, ine, formation_code, "compte-rendu", asked, form)
    result = await submit(
        lambda: answer_of(handlers.record_held(runtime(request), who, ine, handlers.HeldBody.model_validate(body))),
        rule_fields={"no_active_interview": "held_at"},
    )
    return await _answer(request, ine, formation_code, "compte-rendu", result, form)


async def _before_scheduled(request: Request, ine: str, formation_code: str, held_at: datetime | str) -> str | None:
    """Why a « held at » before the interview's scheduled time needs a confirmation, or None."""
    if not isinstance(held_at, datetime):
        return None  # not a time: the API's validation says why
    file, _ = await _file(request, ine, None)
    interview = _interview(file, web(request).user(request).uai, formation_code) if file else None
    scheduled = as_datetime(interview.scheduled_at) if interview else None
    if scheduled and held_at < scheduled:
        return "L'heure saisie précède l'heure prévue : cochez la confirmation pour l'enregistrer."
    return None


@router.post("/eleves/{ine}/{formation_code}/correction")
async def correct_report(ine: IneInPath, formation_code: FormationCode, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = nest(filled(form, "event_id", "report.motivation", "report.chances_of_success", "report.advice"))
    body |= {"lycee_uai": who.uai, "formation_code": formation_code}
    result = await submit(
        lambda: answer_of(handlers.correct_report(runtime(request), who, ine, handlers.ReportBody.model_validate(body))),
        rule_fields={"no_held_interview": "report.advice", "lycee_avis_given": "report.advice"},
    )
    return await _answer(request, ine, formation_code, "correction", result, form)


@router.post("/eleves/{ine}/{formation_code}/annulation")
async def cancel_interview(ine: IneInPath, formation_code: FormationCode, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = filled(form, "event_id", "reason") | {"lycee_uai": who.uai, "formation_code": formation_code}
    result = await submit(
        lambda: answer_of(handlers.cancel_interview(runtime(request), who, ine, handlers.CancelBody.model_validate(body))),
        rule_fields={"no_active_interview": "reason"},
    )
    return await _answer(request, ine, formation_code, "annulation", result, form)


@router.post("/eleves/{ine}/{formation_code}/avis")
async def give_lycee_avis(ine: IneInPath, formation_code: FormationCode, request: Request) -> Response:
    who, form = await web(request).post(request)
    body = filled(form, "event_id", "avis") | {"lycee_uai": who.uai, "formation_code": formation_code}
    result = await submit(
        lambda: answer_of(handlers.give_lycee_avis(runtime(request), who, ine, handlers.LyceeAvisBody.model_validate(body))),
        rule_fields={"no_held_interview": "avis"},
    )
    return await _answer(request, ine, formation_code, "avis", result, form)
