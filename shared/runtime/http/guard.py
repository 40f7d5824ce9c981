"""The HTTP edge every service shares: token and size checks, and refusals as French JSON bodies.

Checks run in SPEC §5's order: token (401), size (413), then the route's own
shape, reference, role, visibility and rule checks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPBearer
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.domain.errors import Forbidden, Refusal
from shared.contracts.reference import ReferenceData
from shared.runtime.http.auth import InvalidToken, Principal, VerifiedTokens, read_token
from shared.runtime.http.openapi import UNAVAILABLE_MESSAGE
from shared.runtime.http.provider_tokens import ProviderTokens
from shared.runtime.http.requests import RFC3339_MESSAGE

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

# API paths that need no token: a student exchanges INE + access code for one there (SPEC §6).
PUBLIC_API_PATHS = frozenset({"/api/eleve/session"})
# The only API paths a student's token reaches (SPEC §6): their own file, their sign-in, the formations, the
# letter's template and the reference data (SPEC §2: any signed-in user). Everything else is staff's, refused
# with 403 before the route reads anything (a student has no staff endpoint at all, whatever the body).
STUDENT_API_PATHS = ("/api/me", "/api/eleve", "/api/formations", "/api/letter-template", "/api/establishments")


def student_may_reach(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in STUDENT_API_PATHS)


def refusal_response(status: int, code: str, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **details}, status_code=status)


class ApiGuard:
    """ASGI middleware for /api/: verifies the token, then bounds the body size."""

    def __init__(
        self, app: ASGIApp, secret: Callable[[], str], reference: Callable[[], ReferenceData], issuer: str,
        verified: VerifiedTokens, provider_tokens: ProviderTokens | None = None,
    ) -> None:
        self.app = app
        self.secret = secret
        self.reference = reference
        self.issuer = issuer
        self.verified = verified
        self.provider_tokens = provider_tokens  # the académie provider's access tokens, when configured (SPEC §8)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["path"] not in PUBLIC_API_PATHS:
            try:
                who = await self._caller(headers.get("authorization", ""))
            except InvalidToken as exc:
                log.info("refused token: %s", exc)
                response = refusal_response(
                    401, "unauthenticated", "Jeton d'authentification absent, invalide ou expiré."
                )
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = who
            if who.role == "eleve" and not student_may_reach(scope["path"]):
                response = refusal_response(403, "role_forbidden", "Votre rôle ne permet pas cette action.")
                await response(scope, receive, send)
                return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await self._too_large(scope, receive, send)
            return
        # Read the whole (bounded) body before the route sees it, so chunked bodies are bounded too.
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > MAX_BODY_BYTES:
                await self._too_large(scope, receive, send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _caller(self, authorization: str) -> Principal:
        """A provider access token (RS256/ES256) when the provider is configured, else a service token."""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if self.provider_tokens is not None and scheme.lower() == "bearer" and self.provider_tokens.applies(token):
            return await self.provider_tokens.read(token, self.reference())
        return self._principal(authorization)

    def _principal(self, authorization: str) -> Principal:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("no bearer token")
        return read_token(token.strip(), self.secret(), self.reference(), self.issuer, verified=self.verified)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
        response = refusal_response(413, "payload_too_large", "La requête dépasse la taille maximale de 64 Kio.")
        await response(scope, receive, send)


def allowed_methods(scope: Scope) -> list[str]:
    """The methods the app offers at the request's path, over all its routes (a path's GET and POST are two
    routes, and Starlette's 405 names only the first one's), with HEAD beside GET and OPTIONS everywhere.
    Each method is asked of the routes' own matching (included routers hide their routes' methods);
    mounts (static files) answer for themselves."""
    routes = [route for route in scope["app"].router.routes if not isinstance(route, Mount)]
    methods = {
        method for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)
    }
    if not methods:
        return []
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods | {"OPTIONS"})


class HttpMethods:
    """ASGI middleware: HEAD and OPTIONS as HTTP says (RFC 9110 §9.3.2, §9.3.7), and `Allow` on every 405
    (§15.5.6), for the API and the pages alike. FastAPI's routes answer 405 to both methods otherwise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "OPTIONS" and (allowed := allowed_methods(scope)):
            await Response(status_code=204, headers={"Allow": ", ".join(allowed)})(scope, receive, send)
            return
        if method == "HEAD":  # the GET, with its status and headers (Content-Length included), without its body
            scope = {**scope, "method": "GET"}

        async def reply(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = allowed_methods(scope)
                if allowed:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    message = {**message, "headers": [*headers, (b"allow", ", ".join(allowed).encode())]}
            elif message["type"] == "http.response.body" and method == "HEAD":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, reply)


def principal(request: Request) -> Principal:
    """The caller, as verified by ApiGuard."""
    return request.scope["state"]["principal"]


def require_role(who: Principal, *roles: str) -> None:
    if who.role not in roles:
        raise Forbidden("role_forbidden", "Votre rôle ne permet pas cette action.")


def require_own_establishment(who: Principal, uai: str, field: str) -> None:
    if who.uai != uai:
        raise Forbidden(
            "other_establishment", "Vous ne pouvez agir que pour votre propre établissement.", field=field
        )


def field_name(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


_FRENCH = {
    "missing": "Champ obligatoire.",
    "json_invalid": "Le corps de la requête n'est pas un JSON valide.",
    "extra_forbidden": "Champ inconnu.",
    "string_too_long": "Texte trop long.",
    "string_too_short": "Texte vide.",
    "literal_error": "Valeur non autorisée.",
    "uuid_parsing": "Identifiant (UUID) invalide.",
    "datetime_from_date_parsing": "Date et heure invalides.",
    "timezone_aware": "La date doit préciser son fuseau horaire.",
    "bool_parsing": "Booléen attendu.",
    "bool_type": "Booléen attendu : true ou false.",
    "int_parsing": "Nombre entier attendu.",
    "int_type": "Nombre entier attendu.",
    "greater_than_equal": "Nombre hors des limites permises.",
    "less_than_equal": "Nombre hors des limites permises.",
    "uuid_type": "Identifiant (UUID) attendu, sous forme de texte.",
    "datetime_parsing": "Date et heure invalides.",
    "rfc3339": RFC3339_MESSAGE,
    "model_attributes_type": "Objet JSON attendu.",
    "dict_type": "Objet JSON attendu.",
    "string_type": "Chaîne de caractères attendue.",
}


def french_message(error: dict) -> str:
    if error["type"] == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    return _FRENCH.get(error["type"], "Valeur invalide.")


# The log or a database out of reach (or overloaded past its timeouts). A write may have been stored just
# before the connection broke (its answer lost): the caller is told so, and that a retry with the same
# event_id is safe (it answers as the first, or stores the write once), never that nothing was stored
# (UNAVAILABLE_MESSAGE, beside the OpenAPI document that shows it).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    RedisError, OperationalError, InterfaceError, ConnectionError, TimeoutError,
)
RETRY_AFTER_SECONDS = "2"


class ViewBehind(Refusal):
    """503: a read with `min_position` whose view has not reached it within the bounded wait (SPEC §5.1):
    refused rather than answered with data older than the caller's own write."""

    status = 503
    headers = {"Retry-After": RETRY_AFTER_SECONDS}

    def __init__(self) -> None:
        super().__init__(
            "view_behind",
            "Les données ne sont pas encore à jour de la position demandée (min_position) ; réessayez dans un instant.",
        )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refusal)
    async def _refusal(_: Request, exc: Refusal) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # A body that is no JSON at all is the body's fault; its loc is a character offset, not a field.
        fields = [
            {"field": "body" if e["type"] == "json_invalid" else field_name(tuple(e["loc"])), "message": french_message(e)}
            for e in exc.errors()
        ]
        return refusal_response(422, "invalid_input", "Certaines données sont invalides.", fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's answer to a body it cannot decode (e.g. not UTF-8): bad input
            return refusal_response(
                422, "invalid_input", "Certaines données sont invalides.",
                fields=[{"field": "body", "message": _FRENCH["json_invalid"]}],
            )
        messages = {404: ("not_found", "Ressource introuvable."), 405: ("method_not_allowed", "Méthode non autorisée.")}
        code, message = messages.get(exc.status_code, ("http_error", str(exc.detail)))
        response = refusal_response(exc.status_code, code, message)
        response.headers.update(exc.headers or {})  # a 405's Allow (HttpMethods completes it)
        return response

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: the log or a database is unavailable: %s", request.method, request.url.path,
                    type(exc).__name__)
        response = refusal_response(503, "unavailable", UNAVAILABLE_MESSAGE)
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    for kind in UNAVAILABLE_ERRORS:
        app.add_exception_handler(kind, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return refusal_response(500, "internal_error", "Erreur interne ; l'incident a été journalisé.")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


# Documents the bearer token in OpenAPI (so /docs can "Authorize"); ApiGuard does the checking.
BEARER = HTTPBearer(auto_error=False, description="Jeton JWT signé (HS256) : `passpro token` ou la page de connexion")
API_DEPENDENCIES = [Depends(BEARER)]
