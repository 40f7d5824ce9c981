"""The student's pages (SPEC §6), served by registration under /eleve: signing in with INE + access code (or in
one click in the demo), their space (where they stand, what is next, their interviews, référent, collège avis,
bonus) and each interview's page (where the lycée is and how to get there, when, how, and once held the report,
the lycée avis and the bonus). Phone first; plain French for a fifteen-year-old.

The session is the registration service's (the cookie the collège's pages and the formations' pages read):
a student's token opens only these pages, the formations' and the student's own letter pages; the collège's
pages answer them 403, as the API does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Match, Mount

from services.registration import handlers, queries
from services.registration.student_api import TooManyTries, WrongCode, my_file, open_student_session, student_path
from services.registration.student_space import student_space
from shared.contracts.identifiers import check_ine, normalise
from shared.domain.errors import Forbidden, NotFound, Refusal
from shared.runtime.demo_users import demo_students
from shared.runtime.http.app import runtime
from shared.runtime.http.auth import Principal, issue_token
from shared.runtime.http.requests import IneInPath
from shared.web.pages import valid_position, web

log = logging.getLogger(__name__)

pages = APIRouter(include_in_schema=False)

SIGN_IN = "/eleve/connexion"
DEMO_SECONDS = 8 * 3600
TEMPLATE_PREFIX = "eleve/"


def install(app: FastAPI) -> None:
    app.include_router(pages)


def student(request: Request) -> Principal | None:
    """The signed-in student; None without a session; 403 for anyone else signed in."""
    who = web(request).visitor(request)
    if who is None:
        return None
    if who.role != "eleve":
        raise Forbidden("role_forbidden", "Ces pages sont celles des élèves : connectez-vous avec un code d'accès d'élève.")
    return who


def _to_sign_in(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{SIGN_IN}?suite={request.url.path}", status_code=303)


# --- signing in ----------------------------------------------------------------------------------------------


def _sign_in_page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    rt = runtime(request)
    w = web(request)
    who = w.visitor(request)
    context = {
        "who": who if who and who.role == "eleve" else None,
        "demo": demo_students(rt.reference) if rt.settings.demo else [],
        "suite": student_path(request.query_params.get("suite")),
        "educonnect": getattr(getattr(request.app.state, "educonnect", None), "configured", False),
        "current": "connexion",
        "fait": request.query_params.get("fait"),
        **context,
    }
    return w.render(request, TEMPLATE_PREFIX + "connexion.html", context, status=status)


@pages.get(SIGN_IN)
async def sign_in_page(request: Request) -> Response:
    return _sign_in_page(request)


@pages.post(SIGN_IN)
async def sign_in_with_code(request: Request) -> Response:
    w, rt = web(request), runtime(request)
    form = await w.form(request)
    suite = student_path(form.get("suite"))
    values = {"ine": form.get("ine", "")}
    errors: dict[str, str] = {}
    ine = normalise(form.get("ine", ""))
    if not ine:
        errors["ine"] = "Écris ton INE : il est sur ton carnet de correspondance ou ton bulletin."
    else:
        try:
            check_ine(str(ine))
        except ValueError:
            errors["ine"] = "Cet INE n'a pas la bonne forme : 11 caractères, par exemple 123456789AB."
    code = form.get("code", "")
    if not code.strip():
        errors["code"] = "Écris le code d'accès que ton référent t'a donné."
    elif len(code) > 40:
        errors["code"] = "Ce code est trop long : il a 12 caractères, par exemple ABCD-EFGH-JKMN."
    if errors:
        return _sign_in_page(request, 422, values=values, errors=errors, suite=suite)
    try:
        token, who, _ = await open_student_session(rt, str(ine), code)
    except TooManyTries as exc:
        response = _sign_in_page(request, 429, values=values, message=exc.message, suite=suite)
        response.headers.update(exc.headers)
        return response
    except WrongCode as exc:
        return _sign_in_page(request, 401, values=values, message=exc.message, suite=suite)
    return w.sign_in(request, token, who, suite)


@pages.post("/eleve/deconnexion")
async def sign_out(request: Request) -> Response:
    w = web(request)
    await w.form(request)
    response = RedirectResponse(SIGN_IN + "?fait=deconnexion", status_code=303)
    response.delete_cookie(w.session_cookie, path="/")
    return response


@pages.post(SIGN_IN + "/demo")
async def sign_in_as_demo_student(request: Request) -> Response:
    w, rt = web(request), runtime(request)
    if not rt.settings.demo:
        return w.error_page(request, 404, "La connexion en un clic n'existe qu'en démonstration (passpro up --demo).")
    form = await w.form(request)
    chosen = next((s for s in demo_students(rt.reference) if s["user_id"] == form.get("user_id")), None)
    if chosen is None:
        return _sign_in_page(request, 422, message="Élève de démonstration inconnu.")
    token = issue_token(
        rt.settings.jwt_secret, user_id=chosen["user_id"], role="eleve", uai=chosen["uai"], ine=chosen["ine"],
        reference=rt.reference, ttl_seconds=DEMO_SECONDS, issuer=rt.settings.jwt_issuer,
    )
    who = Principal(chosen["user_id"], "eleve", chosen["uai"], chosen["ine"])
    return w.sign_in(request, token, who, student_path(form.get("suite")))


# Pages of the student's letter, checklist and convocation (services/registration/letters.py), linked from an
# interview's page when the app serves them.
INTERVIEW_LINKS = (
    ("/eleve/lettres/{lycee_uai}/{formation_code}", "Remplir ma lettre de motivation"),
    ("/eleve/entretiens/{interview_id}/preparation", "Cocher ma préparation"),
    ("/eleve/entretiens/{interview_id}/convocation", "Ma convocation à imprimer"),
)


def _served(request: Request, path: str) -> bool:
    """Does a page of the app answer GET `path` (asked of the routes' own matching, as guard.allowed_methods)?"""
    scope = {**request.scope, "method": "GET", "path": path, "path_params": {}}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes
               if not isinstance(route, Mount))


def interview_links(request: Request, interview: dict) -> list[dict[str, str]]:
    values = {"interview_id": interview["interview_id"], "lycee_uai": interview["lycee"]["uai"],
              "formation_code": interview["formation"]["code"]}
    links = [{"href": path.format(**values), "label": label} for path, label in INTERVIEW_LINKS]
    return [link for link in links if _served(request, link["href"])]


# --- the space ------------------------------------------------------------------------------------------------


async def _space(request: Request, who: Principal) -> dict:
    rt = runtime(request)
    await rt.wait_for(valid_position(request.query_params.get("position")))
    file, points, places = await my_file(rt, who, None)
    return student_space(file, rt.reference, points, places)


@pages.get("/eleve")
async def space_page(request: Request) -> Response:
    who = student(request)
    if who is None:
        return _to_sign_in(request)
    try:
        me = await _space(request, who)
    except NotFound:
        return web(request).error_page(
            request, 404, "Ton dossier Passpro n'est pas (ou plus) là. Parles-en à ton référent.", "Dossier introuvable"
        )
    return web(request).render(request, TEMPLATE_PREFIX + "espace.html", {"who": who, "me": me, "current": "espace"})


@pages.get("/eleve/entretiens/{interview_id}")
async def interview_page(request: Request, interview_id: str) -> Response:
    who = student(request)
    if who is None:
        return _to_sign_in(request)
    me = await _space(request, who)
    interview = next((i for i in me["interviews"] if i["interview_id"] == interview_id), None)
    if interview is None:
        return web(request).error_page(request, 404, "Cet entretien n'est pas dans ton dossier.", "Entretien introuvable")
    context = {"who": who, "me": me, "interview": interview, "current": "espace",
               "student_links": lambda i: interview_links(request, i)}
    return web(request).render(request, TEMPLATE_PREFIX + "entretien.html", context)


# --- the collège gives the code ---------------------------------------------------------------------------------


@pages.post("/eleves/{ine}/code-acces")
async def issue_access_code(ine: IneInPath, request: Request) -> Response:
    """The principal or référent gives the student a new access code (the API's handler): shown once, on a page
    never cached, to hand over or print; the old code stops working."""
    w, rt = web(request), runtime(request)
    who, _ = await w.post(request)
    try:
        outcome, code = await handlers.issue_access_code(rt, who, ine)
    except Refusal as exc:
        return w.error_page(request, exc.status, exc.message)
    await rt.wait_for(outcome.positions.service)

    def read():
        with rt.engine.connect() as conn:
            return queries.college_student(conn, outcome.event.campaign, who.uai or "", ine)

    file = await asyncio.to_thread(read)
    name = f"{file.first_name} {file.last_name}" if file else ine
    context = {
        "who": who, "ine": ine, "name": name, "code": code, "expires_at": outcome.event.payload.expires_at,
        "sign_in_url": str(request.base_url).rstrip("/") + SIGN_IN, "current": "eleves",
    }
    return w.render(request, "code_acces.html", context)
