"""The web pages' shared edge: session cookie, CSRF, sign-in, templates and their French helpers.

A page request is verified by the very function the API uses (`read_token`): the
session cookie carries the signed token itself, so a page and an API call of the
same user are checked the same way, and the session expires with the token.
Writes from forms call the API's own route functions, so they run the same checks
in the same order and answer the same refusals, shown here next to their fields.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote
from zoneinfo import ZoneInfo

import jwt
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.domain.errors import Forbidden, Refusal
from shared.contracts.reference import ReferenceData
from shared.runtime.http.auth import InvalidToken, Principal, issue_token, read_token
from shared.runtime.demo_users import demo_users
from shared.runtime.http.guard import MAX_BODY_BYTES, UNAVAILABLE, UNAVAILABLE_MESSAGE, field_name, french_message
from shared.runtime.http.app import runtime

log = logging.getLogger(__name__)

PARIS = ZoneInfo("Europe/Paris")
HERE = Path(__file__).parent
SHARED_TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
DEMO_TOKEN_SECONDS = 8 * 3600
POSITION = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
NO_SUCH_PAGE = "Cette adresse ne correspond à aucune page de Passpro."

# --- French labels ------------------------------------------------------------------------

ROLE_LABELS = {
    "principal": "Principal(e) du collège",
    "referent": "Référent(e)",
    "lycee_staff": "Équipe du lycée",
    "proviseur": "Proviseur(e)",
    "rectorat": "Rectorat",
}
COLLEGE_AVIS_LABELS = {"reserve": "Réservé", "assez_favorable": "Assez favorable", "favorable": "Favorable"}
LYCEE_AVIS_LABELS = {"reserve": "Réservé", "favorable": "Favorable"}
ASSESSMENT_LABELS = {
    "insuffisante": "Insuffisante",
    "fragile": "Fragile",
    "satisfaisante": "Satisfaisante",
    "tres_satisfaisante": "Très satisfaisante",
}
MODE_LABELS = {"presentiel": "Présentiel", "distanciel": "Distanciel"}
INTERVIEW_STATUS_LABELS = {"scheduled": "Prévu", "held": "Tenu", "cancelled": "Annulé"}
CANCEL_REASONS = {"reporte": "Entretien reporté", "absent": "Élève absent", "desistement": "Désistement de l'élève"}
EVENT_LABELS = {
    "CampaignOpened": "Ouverture de la campagne",
    "StudentRegistered": "Inscription au dispositif",
    "ReferentReassigned": "Changement de référent",
    "InterviewScheduled": "Inscription à un entretien",
    "InterviewCancelled": "Entretien annulé",
    "CollegeAvisGiven": "Avis du collège",
    "StudentWithdrawn": "Retrait du dispositif",
    "StudentReinstated": "Réintégration",
    "InterviewHeld": "Entretien tenu, compte rendu",
    "LyceeAvisGiven": "Avis du lycée",
}
_DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
_MONTHS = [
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
]


def as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def paris(value: datetime | str | None, style: str = "datetime") -> str:
    """A moment as people in Paris read it: « 12 mai 2027 à 14 h 30 » (or its day, or its time)."""
    moment = as_datetime(value)
    if moment is None:
        return ""
    local = moment.astimezone(PARIS)
    day = f"{local.day}{'er' if local.day == 1 else ''} {_MONTHS[local.month - 1]} {local.year}"
    hour = f"{local.hour}\u00a0h\u00a0{local.minute:02d}"
    if style == "day":
        return f"{_DAYS[local.weekday()]} {day}"
    if style == "time":
        return hour
    if style == "date":
        return day
    return f"{day} à {hour}"


def paris_input(value: datetime | str | None) -> str:
    """The value of an `<input type="datetime-local">`, in Paris time."""
    moment = as_datetime(value)
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M") if moment else ""


def from_paris_input(value: str) -> datetime | str:
    """A `datetime-local` value read as Paris time; the text itself when it is no date (the model says why)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    return moment if moment.tzinfo else moment.replace(tzinfo=PARIS)


def plural(count: int, singular: str, many: str | None = None) -> str:
    """« 1 élève », « 3 élèves »: French counts 0 and 1 as singular."""
    return f"{count} {singular if count < 2 else (many or singular + 's')}"


def points(value: int | None) -> str:
    """2500 -> « 2 500 » (a narrow no-break space, as in French typography)."""
    return f"{value or 0:,}".replace(",", "\u202f")


# --- charts (server-side SVG, no script) ---------------------------------------------------


def _lines(label: str, width: int) -> list[str]:
    """A bar's label on one or two lines (split at « — »), each cut to fit: the full text is in the table."""
    return [part if len(part) <= width else part[: width - 1] + "…" for part in label.split(" — ")[:2]]


def bar_chart(title: str, bars: Iterable[tuple[str, int]], *, unit: str = "", tone: str = "") -> Markup:
    """A horizontal bar chart as inline SVG, with its data as a table for screen readers and printing."""
    bars = list(bars)
    width, line_h, bar_h, gap = 420, 17, 16, 12
    biggest = max((v for _, v in bars), default=0) or 1
    parts = []
    y = 0
    for label, value in bars:
        for line in _lines(label, 50):
            parts.append(f'<text x="0" y="{y + 13}" class="chart-label">{escape(line)}</text>')
            y += line_h
        bar = int((width - 90) * value / biggest)
        parts.append(
            f'<rect x="0" y="{y + 2}" width="{max(bar, 2)}" height="{bar_h}" rx="3" class="chart-bar {tone}"/>'
            f'<text x="{max(bar, 2) + 6}" y="{y + 15}" class="chart-value">{escape(points(value))}{escape(unit)}</text>'
        )
        y += bar_h + gap
    if not bars:
        parts.append('<text x="0" y="20" class="chart-label">Aucune donnée pour ces filtres.</text>')
        y = 30
    rows = "".join(
        f'<tr><th scope="row">{escape(label)}</th><td>{escape(points(value))}{escape(unit)}</td></tr>'
        for label, value in bars
    )
    return Markup(
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg viewBox="0 0 {width} {y}" class="bars" aria-hidden="true" focusable="false">{"".join(parts)}</svg>'
        f"<details><summary>Données du graphique</summary><table><tbody>{rows}</tbody></table></details></figure>"
    )


def line_chart(title: str, labels: list[str], series: list[tuple[str, list[int], str]]) -> Markup:
    """Cumulative counts over time as inline SVG lines, with the data as a table."""
    width, height, left, bottom = 800, 240, 40, 30
    top = max((max(values, default=0) for _, values, _ in series), default=0) or 1
    n = max(len(labels) - 1, 1)

    def x(i: int) -> float:
        return left + (width - left - 10) * i / n

    def y(v: int) -> float:
        return 10 + (height - bottom - 10) * (1 - v / top)

    parts = [
        f'<line x1="{left}" y1="{y(0)}" x2="{width - 10}" y2="{y(0)}" class="chart-axis"/>',
        f'<text x="0" y="{y(top) + 4}" class="chart-value">{top}</text>',
        f'<text x="0" y="{y(0) + 4}" class="chart-value">0</text>',
    ]
    for i, label in enumerate(labels):
        if len(labels) <= 8 or i % max(len(labels) // 6, 1) == 0 or i == len(labels) - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - 8}" class="chart-value" text-anchor="middle">{escape(label)}</text>'
            )
    for name, values, tone in series:
        coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{coords}" class="chart-line {tone}"/>')
    legend = "".join(f'<li><span class="swatch {tone}"></span>{escape(name)}</li>' for name, _, tone in series)
    head = "".join(f'<th scope="col">{escape(name)}</th>' for name, _, _ in series)
    rows = "".join(
        f'<tr><th scope="row">{escape(label)}</th>'
        + "".join(f"<td>{values[i]}</td>" for _, values, _ in series)
        + "</tr>"
        for i, label in enumerate(labels)
    )
    return Markup(
        f'<figure class="chart wide"><figcaption>{escape(title)}</figcaption><ul class="legend">{legend}</ul>'
        f'<svg viewBox="0 0 {width} {height}" class="lines" aria-hidden="true" focusable="false">{"".join(parts)}</svg>'
        f"<details><summary>Données du graphique</summary>"
        f'<table><thead><tr><th scope="col">Semaine du</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></details></figure>"
    )


# --- demo users ------------------------------------------------------------------------------


# --- forms -----------------------------------------------------------------------------------


class SignInRequired(Exception):
    """The visitor has no valid session: they are sent to the sign-in page."""


class FormTooLarge(Exception):
    """A posted form over the API's body limit (64 KiB)."""


@dataclass
class Submitted:
    """What became of a form: the write's answer, or the refusal to show next to the fields."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field name -> French message
    message: str | None = None  # a refusal that names no field

    @property
    def ok(self) -> bool:
        return self.status in (200, 201)

    @property
    def reason(self) -> str:
        """The refusal in one sentence, for a page that cannot show the form again (403, 404)."""
        return self.message or next(iter(self.errors.values()), "Action refusée.")

    @property
    def position(self) -> str | None:
        return (self.body.get("positions") or {}).get("service")


def nest(form: dict[str, str]) -> dict[str, Any]:
    """Dotted form names (`referent.email`) as the nested body the API takes."""
    body: dict[str, Any] = {}
    for name, value in form.items():
        parts = name.split(".")
        target = body
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return body


def filled(form: dict[str, str], *names: str) -> dict[str, str]:
    """The named fields that hold something (all of them without names): a blank field is a missing one,
    so the API's validation says « Champ obligatoire. » rather than « Texte vide. »."""
    return {k: v for k, v in form.items() if (not names or k in names) and v.strip()}


async def submit(
    call: Callable[[], Awaitable[Response]],
    aliases: dict[str, str] | None = None,
    rule_fields: dict[str, str] | None = None,
) -> Submitted:
    """Run an API write (validation included) and turn its answer or refusal into a `Submitted`.

    `aliases` maps the API's field names to the form's (a select that fills two fields);
    `rule_fields` names the field a rule's refusal is about, to show it there.
    """
    aliases, rule_fields = aliases or {}, rule_fields or {}
    try:
        response = await call()
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            name = field_name(tuple(error["loc"]))
            blank = error["type"] in ("missing", "string_too_short")
            errors.setdefault(aliases.get(name, name), "Champ obligatoire." if blank else french_message(error))
        return Submitted(422, errors=errors)
    except Refusal as exc:
        body = exc.body()
        errors = {aliases.get(f["field"], f["field"]): f["message"] for f in body.get("fields", [])}
        if "field" in body:
            errors[aliases.get(str(body["field"]), str(body["field"]))] = exc.message
        elif exc.code in rule_fields and not errors:
            errors[rule_fields[exc.code]] = exc.message
        return Submitted(exc.status, errors=errors, message=None if errors else exc.message)
    return Submitted(response.status_code, body=json.loads(response.body))


# --- the per-service web edge --------------------------------------------------------------


@dataclass
class Web:
    """One service's pages: its space, the roles it serves, its templates and its cookies."""

    service: str  # "registration"
    space: str  # "Espace collège"
    roles: tuple[str, ...]
    templates_dir: Path
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(self.templates_dir), FileSystemLoader(SHARED_TEMPLATES)]),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(paris=paris, paris_input=paris_input, points=points, plural=plural)
        self.env.globals.update(
            ROLE_LABELS=ROLE_LABELS,
            COLLEGE_AVIS_LABELS=COLLEGE_AVIS_LABELS,
            LYCEE_AVIS_LABELS=LYCEE_AVIS_LABELS,
            ASSESSMENT_LABELS=ASSESSMENT_LABELS,
            MODE_LABELS=MODE_LABELS,
            INTERVIEW_STATUS_LABELS=INTERVIEW_STATUS_LABELS,
            CANCEL_REASONS=CANCEL_REASONS,
            EVENT_LABELS=EVENT_LABELS,
            # Changes with the files, so browsers fetch a new stylesheet at once.
            STATIC_VERSION=hashlib.sha256(b"".join(p.read_bytes() for p in sorted(STATIC.iterdir()))).hexdigest()[:12],
            new_event_id=lambda: str(uuid.uuid4()),
        )

    # --- cookies ---------------------------------------------------------------------

    @property
    def session_cookie(self) -> str:
        return f"passpro_{self.service}"

    @property
    def csrf_cookie(self) -> str:
        return f"passpro_{self.service}_csrf"

    def _cookie(self, response: Response, request: Request, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
            secure=request.url.scheme == "https",
        )

    # --- who is there ----------------------------------------------------------------

    def visitor(self, request: Request) -> Principal | None:
        """The signed-in user, verified as the API verifies a bearer token; None without a valid session."""
        token = request.cookies.get(self.session_cookie)
        if not token:
            return None
        rt = runtime(request)
        try:
            who = read_token(token, rt.settings.jwt_secret, rt.reference, rt.settings.jwt_issuer)
        except InvalidToken:
            return None
        # Where the API's ApiGuard puts the caller, so the API's route functions serve the pages too.
        request.scope.setdefault("state", {})["principal"] = who
        return who

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

    # --- CSRF: a random seed cookie, bound by HMAC to the session it is used with ----

    def _csrf_for(self, request: Request, seed: str) -> str:
        secret = runtime(request).settings.jwt_secret.encode()
        session = request.cookies.get(self.session_cookie, "")
        return hmac.new(secret, f"csrf|{self.service}|{seed}|{session}".encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request, form: dict[str, str]) -> None:
        seed = request.cookies.get(self.csrf_cookie)
        sent = form.get("csrf", "")
        if not seed or not sent or not hmac.compare_digest(sent, self._csrf_for(request, seed)):
            raise Forbidden(
                "csrf", "Ce formulaire a expiré ou ne vient pas de Passpro : rechargez la page et recommencez."
            )

    async def post(self, request: Request) -> tuple[Principal, dict[str, str]]:
        """The signed-in user of this space and the form they posted (CSRF checked)."""
        who = self.user(request)
        return who, await self.form(request)

    async def form(self, request: Request) -> dict[str, str]:
        """The posted form, bounded like an API body, after its CSRF check."""
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            raise FormTooLarge()
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise FormTooLarge()
            chunks.append(chunk)
        form = dict(parse_qsl(b"".join(chunks).decode("utf-8", errors="replace"), keep_blank_values=True))
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
            "csrf": self._csrf_for(request, seed),
            "who": who,
            "establishment": rt.reference.get(who.uai) if who and who.uai else None,
            "reference": rt.reference,
            "name_of": lambda uai: (rt.reference.get(uai).name if uai and rt.reference.get(uai) else uai),
            "formation_of": lambda uai, code: formation_label(rt.reference, uai, code),
            "values": {},
            "errors": {},
            **(context or {}),
        }
        html = self.env.get_template(template).render(page)
        response = HTMLResponse(html, status_code=status)
        if new_seed:
            self._cookie(response, request, self.csrf_cookie, seed, max_age=7 * 86400)
        secure_page(response)
        return response

    def error_page(self, request: Request, status: int, message: str, title: str | None = None) -> HTMLResponse:
        titles = {
            403: "Accès refusé", 404: "Page introuvable", 413: "Formulaire trop volumineux", 500: "Erreur interne",
        }
        return self.render(
            request,
            "erreur.html",
            {
                "who": self.visitor(request),
                "status": status,
                "title": title or titles.get(status, "Demande refusée"),
                "message": message,
            },
            status=status,
        )

    def sign_in(self, request: Request, token: str, who: Principal, then: str) -> RedirectResponse:
        rt = runtime(request)
        # Already verified by read_token; read again only for its expiry, which the cookie's lifetime follows.
        claims = jwt.decode(
            token, rt.settings.jwt_secret, algorithms=["HS256"], options={"verify_exp": False, "verify_iss": False}
        )
        response = RedirectResponse(then, status_code=303)
        self._cookie(response, request, self.session_cookie, token, max_age=max(int(claims["exp"] - time.time()), 1))
        log.info("page session opened for %s (%s %s) on %s", who.user_id, who.role, who.uai, self.service)
        return response


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


# --- sign-in pages -----------------------------------------------------------------------------


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
    form = await w.form(request)
    token = "".join(form.get("jeton", "").split())
    suite = next_path(form.get("suite"))
    try:
        who = read_token(token, rt.settings.jwt_secret, rt.reference, rt.settings.jwt_issuer)
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
    response = RedirectResponse("/connexion?fait=deconnexion", status_code=303)
    response.delete_cookie(w.session_cookie, path="/")
    return response


# --- wiring ------------------------------------------------------------------------------------


def _is_page(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/api/") or path in ("/docs", "/openapi.json", "/healthz", "/readyz", "/metrics"))


def install_pages(app: FastAPI, pages: Web, router: APIRouter) -> None:
    """Add a service's pages to its app: sign-in, its own pages, static files and French error pages."""
    app.state.web = pages
    app.include_router(signin)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    api_handlers = dict(app.exception_handlers)

    def page_or_api(kind: type) -> None:
        api_handler = api_handlers.get(kind)

        async def handle(request: Request, exc: Exception) -> Response:
            if not _is_page(request):
                if api_handler is None:
                    raise exc
                return await api_handler(request, exc)
            if isinstance(exc, Refusal):
                return pages.error_page(request, exc.status, exc.message)
            if isinstance(exc, RequestValidationError):
                return pages.error_page(request, 404, NO_SUCH_PAGE)
            if isinstance(exc, StarletteHTTPException):
                if exc.status_code == 405:
                    return pages.error_page(request, 405, "Cette page ne s'ouvre pas ainsi.", "Méthode non autorisée")
                return pages.error_page(request, exc.status_code, NO_SUCH_PAGE)
            if isinstance(exc, UNAVAILABLE):
                log.warning("page %s %s: the log or a database is unavailable: %s", request.method,
                            request.url.path, type(exc).__name__)
                return pages.error_page(request, 503, UNAVAILABLE_MESSAGE, "Service momentanément indisponible")
            log.exception("unexpected error on page %s %s", request.method, request.url.path)
            return pages.error_page(request, 500, "Une erreur interne est survenue ; elle est journalisée. Réessayez.")

        app.add_exception_handler(kind, handle)

    for kind in (Refusal, RequestValidationError, StarletteHTTPException, *UNAVAILABLE, Exception):
        page_or_api(kind)

    @app.exception_handler(SignInRequired)
    async def _sign_in_first(request: Request, _: SignInRequired) -> Response:
        target = request.url.path if request.method == "GET" else "/"
        suffix = "" if target == "/" else f"?suite={quote(target)}"
        return RedirectResponse(f"/connexion{suffix}", status_code=303)

    @app.exception_handler(FormTooLarge)
    async def _too_large(request: Request, _: FormTooLarge) -> Response:
        return pages.error_page(request, 413, "Le formulaire dépasse la taille maximale de 64 Kio.")
