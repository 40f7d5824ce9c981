"""A service's web edge (`Web`): who is signed in, its forms (CSRF checked), its pages rendered through the
one Jinja environment, and the helpers its routes share (redirect after a write, safe `suite` path).

Writes from forms call the API's own route functions, so they run the same checks in the same order and
answer the same refusals, shown next to their fields (forms.submit).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment

from shared.contracts.reference import ReferenceData
from shared.domain.errors import Forbidden
from shared.fr.labels import ROLE_LABELS
from shared.runtime.http.app import runtime
from shared.runtime.http.auth import Principal
from shared.web.calendar_band import calendar_band
from shared.web.csrf import check_csrf, csrf_token
from shared.web.errors import DEFAULT_TITLE, TITLES
from shared.web.forms import read_form
from shared.web.session import SignInRequired, open_session, session_user, set_cookie
from shared.web.templating import environment

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
POSITION = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


@dataclass
class Web:
    """One service's pages: its space, the roles it serves, its templates and its cookies."""

    service: str  # "registration"
    space: str  # "Espace collège"
    roles: tuple[str, ...]
    templates_dir: Path
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.env = environment(self.templates_dir)
        self.env.globals.update(
            # Changes with the files, so browsers fetch a new stylesheet at once.
            STATIC_VERSION=hashlib.sha256(b"".join(p.read_bytes() for p in sorted(STATIC.iterdir()))).hexdigest()[:12],
            new_event_id=lambda: str(uuid.uuid4()),
        )

    @property
    def session_cookie(self) -> str:
        return f"passpro_{self.service}"

    @property
    def csrf_cookie(self) -> str:
        return f"passpro_{self.service}_csrf"

    # --- who is there ----------------------------------------------------------------

    def visitor(self, request: Request) -> Principal | None:
        """The signed-in user, verified as the API verifies a bearer token; None without a valid session."""
        return session_user(request, self.session_cookie)

    def user(self, request: Request) -> Principal:
        """The signed-in user of a page of this space, or a redirect to the sign-in page / a 403 page."""
        who = self.visitor(request)
        if who is None:
            raise SignInRequired()
        if who.role not in self.roles:
            raise Forbidden(
                "role_forbidden", f"Votre rôle ({ROLE_LABELS[who.role]}) n'a pas accès à l'{self.space.lower()}."
            )
        return who

    def sign_in(self, request: Request, token: str, who: Principal, then: str) -> RedirectResponse:
        response = RedirectResponse(then, status_code=303)
        open_session(response, request, self.session_cookie, token)
        log.info("page session opened for %s (%s %s) on %s", who.user_id, who.role, who.uai, self.service)
        return response

    # --- forms -----------------------------------------------------------------------

    def check_csrf(self, request: Request, form: dict[str, str]) -> None:
        check_csrf(request, form, self.service, self.csrf_cookie, self.session_cookie)

    async def post(self, request: Request) -> tuple[Principal, dict[str, str]]:
        """The signed-in user of this space and the form they posted (CSRF checked)."""
        who = self.user(request)
        return who, await self.form(request)

    async def form(self, request: Request) -> dict[str, str]:
        """The posted form, bounded like an API body, after its CSRF check."""
        form = await read_form(request)
        self.check_csrf(request, form)
        return form

    # --- answers ---------------------------------------------------------------------

    def render(
        self, request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
    ) -> HTMLResponse:
        seed = request.cookies.get(self.csrf_cookie)
        new_seed = seed is None
        if new_seed:
            seed = secrets.token_urlsafe(32)  # set below, with this response
        who = context.get("who") if context else None
        rt = runtime(request)
        page = {
            "request": request,
            "space": self.space,
            "service": self.service,
            "campaign": rt.settings.campaign,
            "csrf": csrf_token(request, self.service, seed, request.cookies.get(self.session_cookie, "")),
            "who": who,
            "establishment": rt.reference.get(who.uai) if who and who.uai else None,
            "reference": rt.reference,
            "name_of": lambda uai: (rt.reference.get(uai).name if uai and rt.reference.get(uai) else uai),
            "formation_of": lambda uai, code: formation_label(rt.reference, uai, code),
            "values": {},
            "errors": {},
            "calendar_band": calendar_band(request, rt.clock()) if who else None,
            **(context or {}),
        }
        html = self.env.get_template(template).render(page)
        response = HTMLResponse(html, status_code=status)
        if new_seed:
            set_cookie(response, request, self.csrf_cookie, seed, max_age=7 * 86400)
        secure_page(response)
        return response

    def error_page(self, request: Request, status: int, message: str, title: str | None = None) -> HTMLResponse:
        context = {"who": self.visitor(request), "status": status, "message": message,
                   "title": title or TITLES.get(status, DEFAULT_TITLE)}
        return self.render(request, "erreur.html", context, status=status)


def formation_label(reference: ReferenceData, uai: str | None, code: str) -> str:
    lycee = reference.lycee(uai) if uai else None
    found = next((f for f in lycee.formations if f.code == code), None) if lycee else None
    return found.label if found else code


def secure_page(response: Response) -> None:
    """Pages hold minors' personal data: never cached, never framed, scripts and styles from here only."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"


def web(request: Request) -> Web:
    return request.app.state.web


def next_path(value: str | None) -> str:
    """Where to go after signing in: a path of this service only (never another site)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/connexion")) or "\\" in value:
        return "/"
    return value


def done(path: str, what: str, position: str | None, **params: str) -> RedirectResponse:
    """After a write: back to a page that shows the change (it waits for `position`) and confirms it."""
    query = {"fait": what, **params}
    if position:
        query["position"] = position
    return RedirectResponse(path + "?" + "&".join(f"{k}={quote(v)}" for k, v in query.items()), status_code=303)


def valid_position(value: str | None) -> str | None:
    return value if value and POSITION.match(value) else None
