"""Staff sign in with the académie's OpenID Connect provider (SPEC §8): `/auth/login?next=`, `/auth/callback`.

The protocol is Authlib's (its Starlette client over httpx): discovery, authorization code with PKCE (S256),
state and nonce, the ID token's signature checked against the provider's JWKS (fetched again for an unknown
key) and its `iss`, `aud` (asked for: Authlib checks it only through `azp` otherwise), `exp`, `iat`,
`nonce` and `at_hash`. What is ours is configuration and mapping:

- the flow's state (Authlib's state, nonce, PKCE verifier and redirect URI, and where to go next) waits in a
  short-lived cookie signed with the service's secret, so that the callback is answered only in the browser
  that started the sign-in, and once (the cookie is dropped; the provider refuses a code used twice);
- only asymmetric signatures are accepted for the ID token (never `none`, nor HS256 with the client secret);
- the claims (ID token, and userinfo when the provider has one, for the same `sub`) go through the claims
  mapping (shared/runtime/claims_map.py); a person it gives no role gets a French 403 page and no session;
  one it gives several establishments chooses one on a page (`/auth/choix`) among those, before any session;
- sign-ins started from one browser address are counted as wrong access codes are (shared/runtime/tries.py, in
  the service's `sign_in_starts`): past LOGIN_STARTS without a verified answer, `/auth/login` answers a French
  429 page for the lock's time, before any flow is sealed or the provider asked; a verified answer clears it;
- then the session is today's: a Passpro HS256 token in the service's session cookie (shared/web/session.py).
  The ID token is kept in its own cookie as the hint for the provider's end-session endpoint at sign-out.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from typing import Any

import httpx
import jwt
import authlib.deprecate  # noqa: F401 - first, as it puts its own "always" filter at the front
from authlib.common.errors import AuthlibBaseError

with warnings.catch_warnings():  # Authlib 1.9 warns at import that it prefers httpx2; httpx is what we pin and test
    warnings.simplefilter("ignore")
    from authlib.integrations.starlette_client import OAuth
from fastapi import APIRouter, Request
from fastapi.responses import Response
from joserfc.errors import JoseError

from shared.fr.formats import minutes_to_wait
from shared.fr.labels import ROLE_LABELS
from shared.runtime import tries
from shared.runtime.claims_map import ClaimsMap, Mapped, Unmapped, load_claims_map, map_claims
from shared.runtime.http.app import runtime
from shared.runtime.http.auth import Principal, issue_token
from shared.runtime.settings import ServiceSettings
from shared.web.pages import next_path, secure_page, web
from shared.web.session import set_cookie

log = logging.getLogger(__name__)

SESSION_SECONDS = 8 * 3600  # as the demo users' sessions
FLOW_SECONDS = 600  # time to sign in at the provider
FLOW_AUDIENCE = "passpro-oidc-flow"
CHOICE_AUDIENCE = "passpro-oidc-choice"
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
HTTP_TIMEOUT = 10.0
LOGIN_STARTS = tries.STARTS_PER_ADDRESS  # as EduConnect's starts

FAILED = ("La connexion par votre compte académique n'a pas abouti (réponse du fournisseur d'identité invalide ou "
          "expirée). Recommencez depuis la page de connexion.")
UNREACHABLE = "Le fournisseur d'identité académique ne répond pas ; réessayez dans un instant."
NOT_CONFIGURED = "La connexion par le compte académique n'est pas configurée sur ce service."
NOT_OFFERED = "Cet établissement ne fait pas partie de ceux que votre compte académique désigne."
TOO_MANY_STARTS = ("Trop de connexions par compte académique commencées depuis ce réseau sans aller au bout. "
                   "Attendez {wait} avant de réessayer.")

oidc = APIRouter(include_in_schema=False)


class AcademieSignIn:
    """One service's client of the académie's provider (built on the first request that needs it)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.claims_map: ClaimsMap = load_claims_map(settings.oidc_claims_map)
        self.client = OAuth().register(
            "academie",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            server_metadata_url=f"{self.issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": settings.oidc_scope, "code_challenge_method": "S256", "timeout": HTTP_TIMEOUT},
        )

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once), held to the configured issuer, with only the
        asymmetric ID-token algorithms left for Authlib to accept."""
        metadata = await self.client.load_server_metadata()
        if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
            raise SignInFailed(f"the discovery document names issuer {metadata.get('issuer')!r}")
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        metadata["id_token_signing_alg_values_supported"] = [a for a in offered if a in ID_TOKEN_ALGORITHMS]
        return metadata

    async def claims(self, request: Request) -> tuple[dict[str, Any], str]:
        """The verified claims of the person the provider sends back, and their ID token."""
        metadata = await self.metadata()
        # Authlib checks only `iss` by default, and `aud` only through `azp`: the ID token must name this client.
        required = {
            "iss": {"essential": True, "values": [metadata["issuer"]]},
            "aud": {"essential": True, "values": [self.client.client_id]},
        }
        token = await self.client.authorize_access_token(request, claims_options=required)
        if "id_token" not in token or not token.get("userinfo"):
            raise SignInFailed("the token response has no ID token")
        claims = dict(token["userinfo"])
        if metadata.get("userinfo_endpoint"):
            more = dict(await self.client.userinfo(token=token))
            if more.get("sub") != claims.get("sub"):
                raise SignInFailed("userinfo is about another subject than the ID token")
            claims = {**claims, **more}
        return claims, token["id_token"]

    async def end_session(self, request: Request, id_token: str | None) -> str | None:
        """The provider's end-session URL back to this service's sign-in page, when the provider offers one."""
        try:
            metadata = await self.metadata()
        except (AuthlibBaseError, httpx.HTTPError, SignInFailed, ValueError) as exc:
            log.warning("provider unreachable at sign-out, local sign-out only: %s", exc)
            return None
        if not metadata.get("end_session_endpoint"):
            return None
        back = str(request.url_for("signin_page")) + "?fait=deconnexion"
        params = {"client_id": self.client.client_id, "post_logout_redirect_uri": back}
        if id_token:
            params["id_token_hint"] = id_token
        return str(httpx.URL(metadata["end_session_endpoint"], params=params))


class SignInFailed(Exception):
    """The provider's answer cannot be trusted (no ID token, another subject, another issuer)."""


def academie(request: Request) -> AcademieSignIn | None:
    """The service's client of the académie's provider; None when no provider is configured."""
    state = request.app.state
    if not hasattr(state, "academie_sign_in"):
        settings = runtime(request).settings
        try:
            state.academie_sign_in = AcademieSignIn(settings) if settings.oidc_sign_in else None
        except SystemExit as exc:  # a bad claims mapping file (passpro serve refuses it before starting)
            raise RuntimeError(str(exc)) from None
    return state.academie_sign_in


def flow_cookie(request: Request) -> str:
    return f"{web(request).session_cookie}_oidc"


def choice_cookie(request: Request) -> str:
    return f"{web(request).session_cookie}_choix"


def id_token_cookie(request: Request) -> str:
    return f"{web(request).session_cookie}_idp"


def local_path(value: str | None) -> str:
    """Where to go after signing in: a path of this service, never another site (no scheme, no `//`, no
    backslash, no control character or space that a browser would drop)."""
    if value and any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return "/"
    return next_path(value)


def _page(request: Request, status: int, message: str) -> Response:
    response = web(request).error_page(request, status, message)
    response.delete_cookie(flow_cookie(request), path="/")
    return response


@oidc.get("/auth/login", name="academie_login")
async def academie_login(request: Request) -> Response:
    sign_in = academie(request)
    if sign_in is None:
        return web(request).error_page(request, 404, NOT_CONFIGURED)
    if (left := await asyncio.to_thread(_count_start, request)) is not None:  # before any flow or provider call
        log.info("academic sign-in start refused: too many from one address")
        # Nothing sealed nor dropped: a flow another tab of this browser started may still come back.
        response = web(request).error_page(request, 429, TOO_MANY_STARTS.format(wait=minutes_to_wait(left)))
        response.headers["Retry-After"] = str(left)
        return response
    flow: dict[str, Any] = {}
    request.scope["session"] = flow  # where Authlib keeps the state, nonce and PKCE verifier
    try:
        await sign_in.metadata()
        response = await sign_in.client.authorize_redirect(request, str(request.url_for("academie_callback")))
    except (AuthlibBaseError, httpx.HTTPError, SignInFailed, ValueError) as exc:
        log.warning("the provider's discovery failed: %s", exc)
        return _page(request, 503, UNREACHABLE)
    secret = runtime(request).settings.jwt_secret
    sealed = jwt.encode(
        {"aud": FLOW_AUDIENCE, "exp": int(time.time()) + FLOW_SECONDS, "flow": flow,
         "next": local_path(request.query_params.get("next"))},
        secret, algorithm="HS256",
    )
    set_cookie(response, request, flow_cookie(request), sealed, max_age=FLOW_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _count_start(request: Request) -> int | None:
    """One more start from the browser's address; the seconds left of its lock when it is locked."""
    rt = runtime(request)
    with rt.engine.begin() as conn:
        return tries.count_try(conn, tries.sign_in_starts, rt.address_key(request), rt.clock(), LOGIN_STARTS)


def _forget_starts(request: Request) -> None:
    with runtime(request).engine.begin() as conn:
        tries.forget_tries(conn, tries.sign_in_starts, runtime(request).address_key(request))


def _read_flow(request: Request) -> dict[str, Any]:
    sealed = request.cookies.get(flow_cookie(request))
    if not sealed:
        return {}
    try:
        found = jwt.decode(sealed, runtime(request).settings.jwt_secret, algorithms=["HS256"], audience=FLOW_AUDIENCE)
    except jwt.PyJWTError:
        return {}
    return found if isinstance(found.get("flow"), dict) else {}


@oidc.get("/auth/callback", name="academie_callback")
async def academie_callback(request: Request) -> Response:
    w, rt, sign_in = web(request), runtime(request), academie(request)
    if sign_in is None:
        return w.error_page(request, 404, NOT_CONFIGURED)
    found = _read_flow(request)
    request.scope["session"] = found.get("flow", {})
    try:
        claims, id_token = await sign_in.claims(request)
    except httpx.HTTPError as exc:
        log.warning("the provider is out of reach at the callback: %s", exc)
        return _page(request, 503, UNREACHABLE)
    except (AuthlibBaseError, JoseError, SignInFailed, ValueError, KeyError, TypeError) as exc:
        log.info("academic sign-in refused: %s: %s", type(exc).__name__, exc)
        return _page(request, 401, FAILED)
    await asyncio.to_thread(_forget_starts, request)  # the provider vouched for someone at this address
    mapped = map_claims(sign_in.claims_map, claims, rt.reference)
    if isinstance(mapped, Unmapped) and (choices := [c for c in mapped.choices if c.role in w.roles]):
        return _choice_page(request, choices, local_path(found.get("next")), id_token)
    if not isinstance(mapped, Mapped):
        log.info("academic sign-in of %r gives no role: %s", claims.get("sub"), mapped.reason)
        return _page(request, 403, mapped.message)
    if mapped.role not in w.roles:
        return _page(
            request, 403,
            f"Votre compte académique est celui d'un utilisateur « {ROLE_LABELS[mapped.role]} », qui n'a pas accès à "
            f"l'{w.space.lower()}.",
        )
    return _open_session(request, mapped, local_path(found.get("next")), id_token)


def _open_session(request: Request, mapped: Mapped, then: str, id_token: str) -> Response:
    """Today's session for the person the provider vouched for (a Passpro token in the session cookie)."""
    w, rt = web(request), runtime(request)
    token = issue_token(
        rt.settings.jwt_secret, user_id=mapped.user_id, role=mapped.role, uai=mapped.uai, reference=rt.reference,
        ttl_seconds=SESSION_SECONDS, issuer=rt.settings.jwt_issuer,
    )
    who = Principal(mapped.user_id, mapped.role, mapped.uai)  # type: ignore[arg-type]  (a role the mapping checked)
    response = w.sign_in(request, token, who, then)
    response.delete_cookie(flow_cookie(request), path="/")
    response.delete_cookie(choice_cookie(request), path="/")
    set_cookie(response, request, id_token_cookie(request), id_token, max_age=SESSION_SECONDS)
    secure_page(response)
    return response


def _choice_page(request: Request, choices: list[Mapped], then: str, id_token: str) -> Response:
    """A person the provider gives several establishments (an interim head, say) chooses the one they act for
    now; what they may choose waits, signed, in a 10-minute cookie: no session before the choice."""
    w, rt = web(request), runtime(request)
    options = [
        {"uai": c.uai, "name": rt.reference.get(c.uai).name, "role": ROLE_LABELS[c.role]} for c in choices if c.uai
    ]
    response = w.render(request, "choix-etablissement.html", {"who": None, "options": options})
    sealed = jwt.encode(
        {"aud": CHOICE_AUDIENCE, "exp": int(time.time()) + FLOW_SECONDS, "next": then, "id_token": id_token,
         "choices": [[c.user_id, c.role, c.uai] for c in choices]},
        rt.settings.jwt_secret, algorithm="HS256",
    )
    response.delete_cookie(flow_cookie(request), path="/")
    set_cookie(response, request, choice_cookie(request), sealed, max_age=FLOW_SECONDS)
    return response


@oidc.post("/auth/choix", name="academie_choice")
async def academie_choice(request: Request) -> Response:
    """The establishment chosen on the choice page: a session for it, if it was one of those offered."""
    w, rt, sign_in = web(request), runtime(request), academie(request)
    if sign_in is None:
        return w.error_page(request, 404, NOT_CONFIGURED)
    form = await w.form(request)
    try:
        offered = jwt.decode(
            request.cookies.get(choice_cookie(request), ""), rt.settings.jwt_secret, algorithms=["HS256"],
            audience=CHOICE_AUDIENCE,
        )
    except jwt.PyJWTError:
        return _page(request, 401, FAILED)
    chosen = next((c for c in offered.get("choices", []) if c[2] == form.get("uai")), None)
    if chosen is None or chosen[1] not in w.roles:
        return _page(request, 403, NOT_OFFERED)
    return _open_session(request, Mapped(*chosen), local_path(offered.get("next")), str(offered.get("id_token", "")))


async def academie_sign_out(request: Request) -> Response | None:
    """At sign-out of a session opened by the provider: the page that sends the browser on to the provider's
    end-session endpoint (RP-initiated logout), when it offers one; None otherwise (local sign-out only).
    A page, not a redirect: the pages' Content-Security-Policy (form-action 'self') would block a form's
    redirect to another site."""
    sign_in = academie(request)
    id_token = request.cookies.get(id_token_cookie(request))
    if sign_in is None or not id_token:
        return None
    url = await sign_in.end_session(request, id_token)
    if url is None:
        return None
    response = web(request).render(request, "fin-de-session.html", {"who": None, "end_session": url})
    response.delete_cookie(id_token_cookie(request), path="/")
    return response
