"""The pages of the guided motivation letter, the preparation checklist and the convocation (SPEC §6).

For the student, under /eleve (their own file only, from their session): the letter of each vœu with an
interview (saved as often as they like, marked ready, printable on one A4 page), the checklist of each
interview, and its printable convocation. For the collège (référent, principal), under /eleves/{ine}: the
student's letters and checklists (the read is logged), the référent's ticks, the same convocation; and
« Préparation » lists who is not ready for an interview in the next seven days. Every write runs the
handler the API runs (handlers.save_letter, handlers.update_preparation).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import RedirectResponse, Response

from services.registration import handlers, queries, student_pages
from services.registration.letters_api import LETTERS_READ
from services.registration.student_space import lycee_of, room_of, slot_place_of
from shared.contracts.identifiers import UAI, FormationCode
from shared.contracts.letter import default_letter_template
from shared.domain.errors import NotFound
from shared.domain.student_file import Interview, StudentFile
from shared.fr.formats import PARIS
from shared.fr.labels import PREPARATION_LABELS
from shared.runtime import access_log
from shared.runtime.http.app import answer_of, runtime
from shared.runtime.http.auth import Principal
from shared.runtime.http.requests import IneInPath
from shared.web.forms import Submitted, filled, submit
from shared.web.pages import done, valid_position, web

router = APIRouter(include_in_schema=False)

InterviewId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
CONVOCATION_READ = "convocation"
UPCOMING_DAYS = 7
# What to bring to the interview (the seed: « préalablement à l'entretien, l'élève doit… »).
TO_BRING = (
    "ta lettre de motivation, imprimée ;",
    "un stylo et des feuilles pour prendre des notes ;",
    "cette convocation ;",
    "tes questions sur la formation, les poursuites d'études et les métiers.",
)
DONE = {
    "lettre": "Ta lettre est enregistrée. Tu peux la reprendre quand tu veux, jusqu'à l'entretien.",
    "lettre-prete": "Ta lettre est enregistrée et marquée prête : ton référent et le lycée peuvent la lire. "
                    "Pense à l'imprimer pour l'entretien.",
    "preparation": "Ta préparation est enregistrée.",
    "preparation-referent": "La préparation de l'entretien est enregistrée.",
}


def install(app: FastAPI) -> None:
    """The pages, on the registration service (after its pages, whose `Web` they use)."""
    app.include_router(router)
    app.add_exception_handler(StudentSignIn, _to_student_sign_in)


# --- who is there and which file --------------------------------------------------------------------------


class StudentSignIn(Exception):
    """A visitor on a student's page: to the student's sign-in, then back (student_pages' SIGN_IN)."""


def _student(request: Request) -> Principal:
    """The student signed in to the pages; a staff member is refused (403 page), a visitor sent to sign in."""
    who = student_pages.student(request)
    if who is None:
        raise StudentSignIn()
    return who


def _to_student_sign_in(request: Request, _: StudentSignIn) -> RedirectResponse:
    return RedirectResponse(f"{student_pages.SIGN_IN}?suite={quote(request.url.path)}", status_code=303)


def _staff(request: Request) -> Principal:
    return web(request).user(request)  # the collège's roles only


async def _file(request: Request, college_uai: str | None, ine: str | None, position: str | None = None) -> StudentFile:
    """One student's file of the collège (the student's own for a student), once the view has reached `position`."""
    rt = runtime(request)
    await rt.wait_for(valid_position(position))

    def read() -> tuple[StudentFile | None, dict[str, str]]:
        with rt.engine.connect() as conn:
            file = queries.college_student(conn, rt.settings.campaign, college_uai, ine or "")
            return file, queries.slot_places(conn, rt.settings.campaign, file)

    file, places = await asyncio.to_thread(read)
    if file is None or not file.registered:
        raise NotFound()
    request.state.slot_places = places  # for _interview_facts: the place of a slot the interview is booked on
    return file


def _interview(file: StudentFile, interview_id: str) -> Interview:
    interview = file.interviews.get(interview_id)
    if interview is None:
        raise NotFound()
    return interview


def _voeu_interview(file: StudentFile, lycee_uai: str, formation_code: str) -> Interview:
    """The vœu's interview the letter goes with: the held one, else the scheduled one; none is a 404."""
    found = file.held_interview(lycee_uai, formation_code) or file.active_interview(lycee_uai, formation_code)
    if found is None:
        raise NotFound()
    return found


def _interview_facts(request: Request, file: StudentFile, interview: Interview) -> dict[str, Any]:
    reference = runtime(request).reference
    lycee = reference.lycee(interview.lycee_uai)
    formation = next((f for f in lycee.formations if f.code == interview.formation_code), None) if lycee else None
    return {
        "interview": interview,
        "lycee": lycee_of(reference, interview.lycee_uai),
        "formation_label": formation.label if formation else interview.formation_code,
        "room": room_of(file, interview, reference),
        "slot_place": slot_place_of(interview, getattr(request.state, "slot_places", {})),
        "college_name": reference.get(file.college_uai).name if file.college_uai and reference.get(file.college_uai)
        else file.college_uai,
    }


def _letter_context(file: StudentFile, lycee_uai: str, formation_code: str) -> dict[str, Any]:
    letter = file.letter_for(lycee_uai, formation_code)
    return {"letter": letter, "answers": dict(letter.answers) if letter else {}, "template": default_letter_template()}


# --- the student's letter ---------------------------------------------------------------------------------


async def _letter_page(
    request: Request, who: Principal, lycee_uai: str, formation_code: str, *, position: str | None = None,
    notice: str | None = None, result: Submitted | None = None, values: dict | None = None,
) -> Response:
    file = await _file(request, who.uai, who.ine, position)
    interview = _voeu_interview(file, lycee_uai, formation_code)
    context = {
        "who": who, "file": file, **_interview_facts(request, file, interview),
        **_letter_context(file, lycee_uai, formation_code),
        "notice": notice, "current": "lettre", "posted": "lettre" if result else None,
        "values": values or {}, "errors": result.errors if result else {},
        "message": result.message if result else None,
    }
    return web(request).render(request, "eleve/lettre.html", context, status=result.status if result else 200)


@router.get("/eleve/lettres/{lycee_uai}/{formation_code}")
async def letter(
    lycee_uai: UAI, formation_code: FormationCode, request: Request, fait: str | None = None,
    position: str | None = None,
) -> Response:
    who = _student(request)
    return await _letter_page(request, who, lycee_uai, formation_code, position=position, notice=DONE.get(fait or ""))


@router.post("/eleve/lettres/{lycee_uai}/{formation_code}")
async def save_letter(lycee_uai: UAI, formation_code: FormationCode, request: Request) -> Response:
    who = _student(request)
    form = await web(request).form(request)
    template = default_letter_template()
    # A form sends each line break as CR LF (HTML's form encoding) while the textarea's maxlength counts one
    # character: the answer is kept as typed, with LF line breaks, so a full answer is not « trop longue ».
    typed = {q.id: form.get(f"answers.{q.id}", "").replace("\r\n", "\n") for q in template.questions}
    answers = {question: text for question, text in typed.items() if text.strip()}
    body = {**filled(form, "event_id"), "lycee_uai": lycee_uai, "formation_code": formation_code,
            "answers": answers, "ready": form.get("ready") == "on"}
    result = await submit(
        lambda: answer_of(handlers.save_letter(runtime(request), who, handlers.LetterBody.model_validate(body))),
        rule_fields={"letter_after_interview": "ready", "no_interview_for_voeu": "ready", "letter_incomplete": "ready"},
    )
    if result.ok:
        what = "lettre-prete" if body["ready"] else "lettre"
        return done(f"/eleve/lettres/{lycee_uai}/{formation_code}", what, result.position)
    if result.status in (403, 404):
        return web(request).error_page(request, result.status, result.reason)
    return await _letter_page(request, who, lycee_uai, formation_code, result=result, values=form)


@router.get("/eleve/lettres/{lycee_uai}/{formation_code}/imprimer")
async def printable_letter(lycee_uai: UAI, formation_code: FormationCode, request: Request) -> Response:
    who = _student(request)
    file = await _file(request, who.uai, who.ine)
    return _printable_letter(request, who, file, lycee_uai, formation_code, back=f"/eleve/lettres/{lycee_uai}/{formation_code}")


def _printable_letter(
    request: Request, who: Principal, file: StudentFile, lycee_uai: str, formation_code: str, back: str
) -> Response:
    interview = _voeu_interview(file, lycee_uai, formation_code)
    if file.letter_for(lycee_uai, formation_code) is None:
        raise NotFound()
    context = {
        "who": who, "file": file, **_interview_facts(request, file, interview),
        **_letter_context(file, lycee_uai, formation_code), "back": back, "printed_at": datetime.now(PARIS),
    }
    return web(request).render(request, "eleve/lettre_imprimable.html", context)


# --- the checklist -----------------------------------------------------------------------------------------


def _checklist(file: StudentFile, interview: Interview) -> dict[str, Any]:
    preparation = file.preparations.get(interview.interview_id)
    items = [name for name in PREPARATION_LABELS if name != "equipment_ready" or interview.mode == "distanciel"]
    return {
        "preparation": preparation,
        "items": [(name, PREPARATION_LABELS[name], bool(preparation and getattr(preparation, name))) for name in items],
        "prepared": bool(preparation and preparation.ready(interview.mode)),
    }


def _preparation_body(form: dict[str, str]) -> dict[str, Any]:
    return {**filled(form, "event_id"), **{name: form.get(name) == "on" for name in PREPARATION_LABELS}}


async def _preparation_page(
    request: Request, who: Principal, interview_id: str, *, position: str | None = None, notice: str | None = None,
    result: Submitted | None = None,
) -> Response:
    file = await _file(request, who.uai, who.ine, position)
    interview = _interview(file, interview_id)
    context = {
        "who": who, "file": file, **_interview_facts(request, file, interview), **_checklist(file, interview),
        "letter": file.letter_for(*interview.voeu), "notice": notice, "current": "preparation",
        "errors": result.errors if result else {}, "message": result.message if result else None,
        "posted": "preparation" if result else None,
    }
    return web(request).render(request, "eleve/preparation.html", context, status=result.status if result else 200)


@router.get("/eleve/entretiens/{interview_id}/preparation")
async def preparation(interview_id: InterviewId, request: Request, fait: str | None = None,
                      position: str | None = None) -> Response:
    who = _student(request)
    return await _preparation_page(request, who, interview_id, position=position, notice=DONE.get(fait or ""))


@router.post("/eleve/entretiens/{interview_id}/preparation")
async def tick_preparation(interview_id: InterviewId, request: Request) -> Response:
    who = _student(request)
    form = await web(request).form(request)
    result = await submit(  # the body is validated inside: a malformed form is a 422 shown on the page
        lambda: answer_of(handlers.update_preparation(
            runtime(request), who, who.ine, interview_id, handlers.PreparationBody.model_validate(_preparation_body(form))
        )),
        rule_fields={"interview_not_scheduled": "itinerary_ready"},
    )
    if result.ok:
        return done(f"/eleve/entretiens/{interview_id}/preparation", "preparation", result.position)
    if result.status in (403, 404):
        return web(request).error_page(request, result.status, result.reason)
    return await _preparation_page(request, who, interview_id, result=result)


# --- the convocation ---------------------------------------------------------------------------------------


def _convocation(request: Request, who: Principal, file: StudentFile, interview_id: str, back: str) -> Response:
    interview = _interview(file, interview_id)
    if interview.status == "cancelled":
        said = "Cet entretien a été annulé : il n'a plus de convocation."
        return web(request).error_page(request, 404, said)
    # Once held, the convocation's follow-up: the report "to advise the student" and the lycée avis (SPEC §6).
    latest = file.latest_lycee_avis(*interview.voeu) if interview.status == "held" else None
    context = {
        "who": who, "file": file, **_interview_facts(request, file, interview), "to_bring": TO_BRING,
        "back": back, "printed_at": datetime.now(PARIS), "report": interview.report if interview.status == "held" else None,
        "lycee_avis": latest.avis if latest else None,
    }
    return web(request).render(request, "eleve/convocation.html", context)


@router.get("/eleve/entretiens/{interview_id}/convocation")
async def my_convocation(interview_id: InterviewId, request: Request) -> Response:
    who = _student(request)
    file = await _file(request, who.uai, who.ine)
    return _convocation(request, who, file, interview_id, back="/eleve")


# --- the collège's pages ---------------------------------------------------------------------------------------


@router.get("/eleves/{ine}/lettres")
async def student_letters(ine: IneInPath, request: Request, fait: str | None = None,
                          position: str | None = None) -> Response:
    who = _staff(request)
    file = await _file(request, who.uai, ine, position)
    await access_log.record_request(request, runtime(request).settings.campaign, [ine], LETTERS_READ)
    interviews = sorted(
        (i for i in file.interviews.values() if i.status != "cancelled"),
        key=lambda i: (i.scheduled_at.isoformat() if i.scheduled_at else "", i.interview_id),
    )
    rows = [
        {**_interview_facts(request, file, i), **_checklist(file, i), **_letter_context(file, *i.voeu)}
        for i in interviews
    ]
    context = {"who": who, "file": file, "rows": rows, "notice": DONE.get(fait or ""), "current": "eleves"}
    return web(request).render(request, "eleve/lettres_college.html", context)


@router.post("/eleves/{ine}/entretiens/{interview_id}/preparation")
async def referent_ticks(ine: IneInPath, interview_id: InterviewId, request: Request) -> Response:
    who, form = await web(request).post(request)
    result = await submit(
        lambda: answer_of(handlers.update_preparation(
            runtime(request), who, ine, interview_id, handlers.PreparationBody.model_validate(_preparation_body(form))
        ))
    )
    if result.ok:
        return done(f"/eleves/{ine}/lettres", "preparation-referent", result.position)
    return web(request).error_page(request, result.status, result.reason)


@router.get("/eleves/{ine}/lettres/{lycee_uai}/{formation_code}/imprimer")
async def college_printable_letter(ine: IneInPath, lycee_uai: UAI, formation_code: FormationCode,
                                   request: Request) -> Response:
    who = _staff(request)
    file = await _file(request, who.uai, ine)
    await access_log.record_request(request, runtime(request).settings.campaign, [ine], LETTERS_READ)
    return _printable_letter(request, who, file, lycee_uai, formation_code, back=f"/eleves/{ine}/lettres")


@router.get("/eleves/{ine}/entretiens/{interview_id}/convocation")
async def college_convocation(ine: IneInPath, interview_id: InterviewId, request: Request) -> Response:
    who = _staff(request)
    file = await _file(request, who.uai, ine)
    await access_log.record_request(request, runtime(request).settings.campaign, [ine], CONVOCATION_READ)
    return _convocation(request, who, file, interview_id, back=f"/eleves/{ine}")


def not_ready(files: list[StudentFile], now: datetime, days: int = UPCOMING_DAYS) -> list[dict[str, Any]]:
    """The interviews of the next `days` days whose student is not ready (letter not marked ready, or the
    checklist not complete), soonest first."""
    until = now + timedelta(days=days)
    rows = []
    for file in files:
        if file.withdrawn:
            continue
        for interview in file.interviews.values():
            at = interview.scheduled_at
            if interview.status != "scheduled" or at is None or not now <= at <= until:
                continue
            letter = file.letter_for(*interview.voeu)
            preparation = file.preparations.get(interview.interview_id)
            letter_ready = bool(letter and letter.ready)
            prepared = bool(preparation and preparation.ready(interview.mode))
            if not (letter_ready and prepared):
                rows.append({"file": file, "interview": interview, "letter": letter, "letter_ready": letter_ready,
                             "preparation": preparation, "prepared": prepared})
    return sorted(rows, key=lambda r: (r["interview"].scheduled_at, r["file"].ine))


@router.get("/preparation")
async def upcoming(request: Request) -> Response:
    """« Préparation des entretiens »: who is not ready for an interview in the next seven days."""
    who = _staff(request)
    rt = runtime(request)

    def read() -> list[StudentFile]:
        with rt.engine.connect() as conn:
            return queries.college_students(conn, rt.settings.campaign, who.uai)

    rows = not_ready(await asyncio.to_thread(read), datetime.now(UTC))
    await access_log.record_request(request, rt.settings.campaign, [r["file"].ine for r in rows],
                                    access_log.STUDENT_LIST)
    context = {"who": who, "rows": rows, "days": UPCOMING_DAYS, "current": "preparation"}
    return web(request).render(request, "eleve/preparation_college.html", context)

