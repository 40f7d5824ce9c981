"""The sign-in routes every service's pages share: a token pasted in, a demo user in one click (demo only),
sign-out, and the accessibility statement."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shared.fr.labels import ROLE_LABELS
from shared.runtime.demo_users import demo_users
from shared.runtime.http.app import runtime
from shared.runtime.http.auth import InvalidToken, Principal, issue_token, read_token
from shared.web.oidc import academie, academie_sign_out
from shared.web.pages import Web, next_path, web

log = logging.getLogger(__name__)

DEMO_TOKEN_SECONDS = 8 * 3600

signin = APIRouter(include_in_schema=False)


def _demo_choices(request: Request) -> list[dict[str, str]]:
    w, rt = web(request), runtime(request)
    if not rt.settings.demo:
        return []
    choices = []
    for user_id, role, uai in demo_users(rt.reference):
        if role in w.roles:
            place = rt.reference.get(uai).name if uai else "Rectorat de Paris"
            choices.append({"user_id": user_id, "role": ROLE_LABELS[role], "place": place})
    return choices


def _signin_page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    return web(request).render(
        request,
        "connexion.html",
        {
            "who": web(request).visitor(request),
            "demo": _demo_choices(request),
            "token_page": runtime(request).settings.token_page,
            "academie": academie(request) is not None,
            "suite": next_path(request.query_params.get("suite")),
            **context,
        },
        status=status,
    )


@signin.get("/connexion")
async def signin_page(request: Request) -> Response:
    return _signin_page(request, fait=request.query_params.get("fait"))


def _wrong_space(w: Web, who: Principal) -> str | None:
    if who.role in w.roles:
        return None
    return f"Ce jeton est celui d'un utilisateur « {ROLE_LABELS[who.role]} », qui n'a pas accès à l'{w.space.lower()}."


@signin.post("/connexion")
async def signin_with_token(request: Request) -> Response:
    w, rt = web(request), runtime(request)
    if not rt.settings.token_page:  # production: staff sign in with the académie's provider only (SPEC §8)
        return w.error_page(request, 404, "La connexion par jeton n'existe qu'en développement et en démonstration.")
    form = await w.form(request)
    token = "".join(form.get("jeton", "").split())
    suite = next_path(form.get("suite"))
    try:
        who = read_token(
            token, rt.settings.jwt_secret, rt.reference, rt.settings.jwt_issuer, verified=rt.verified_tokens
        )
    except InvalidToken as exc:
        log.info("page sign-in refused: %s", exc)
        message = "Jeton absent, invalide ou expiré : collez le jeton complet reçu du rectorat."
        errors = {"jeton": message if token else "Champ obligatoire."}
        return _signin_page(request, 401, errors=errors, values={"jeton": form.get("jeton", "")}, suite=suite)
    if problem := _wrong_space(w, who):
        errors = {"jeton": problem}
        return _signin_page(request, 403, errors=errors, values={"jeton": form.get("jeton", "")}, suite=suite)
    return w.sign_in(request, token, who, suite)


@signin.post("/connexion/demo")
async def signin_as_demo_user(request: Request) -> Response:
    w, rt = web(request), runtime(request)
    if not rt.settings.demo:
        return w.error_page(request, 404, "La connexion en un clic n'existe qu'en démonstration (passpro up --demo).")
    form = await w.form(request)
    users = [(u, r, e) for u, r, e in demo_users(rt.reference) if r in w.roles]
    chosen = next((user for user in users if user[0] == form.get("user_id")), None)
    if chosen is None:
        return _signin_page(request, 422, message="Utilisateur de démonstration inconnu.")
    user_id, role, uai = chosen
    token = issue_token(
        rt.settings.jwt_secret, user_id=user_id, role=role, uai=uai, reference=rt.reference,
        ttl_seconds=DEMO_TOKEN_SECONDS, issuer=rt.settings.jwt_issuer,
    )
    return w.sign_in(request, token, Principal(user_id, role, uai), next_path(form.get("suite")))


@signin.get("/accessibilite")
async def accessibility_statement(request: Request) -> Response:
    """The accessibility statement (RGAA), open to anyone, on every service: each page's footer links it."""
    w = web(request)
    return w.render(request, "accessibilite.html", {"who": w.visitor(request), "current": "accessibilite"})


@signin.post("/deconnexion")
async def sign_out(request: Request) -> Response:
    w = web(request)
    await w.form(request)
    response = await academie_sign_out(request) or RedirectResponse("/connexion?fait=deconnexion", status_code=303)
    response.delete_cookie(w.session_cookie, path="/")
    return response
