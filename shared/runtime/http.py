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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.contracts.errors import Forbidden, Refusal
from shared.contracts.reference import ReferenceData
from shared.runtime.auth import InvalidToken, Principal, read_token

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
PUBLIC_API_PATHS = ("/api/docs",)


def refusal_response(status: int, code: str, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **details}, status_code=status)


class ApiGuard:
    """ASGI middleware for /api/: verifies the token, then bounds the body size."""

    def __init__(self, app: ASGIApp, secret: Callable[[], str], reference: Callable[[], ReferenceData], issuer: str) -> None:
        self.app = app
        self.secret = secret
        self.reference = reference
        self.issuer = issuer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            scope.setdefault("state", {})["principal"] = self._principal(headers.get("authorization", ""))
        except InvalidToken as exc:
            log.info("refused token: %s", exc)
            response = refusal_response(401, "unauthenticated", "Jeton d'authentification absent, invalide ou expiré.")
            response.headers["WWW-Authenticate"] = "Bearer"
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

    def _principal(self, authorization: str) -> Principal:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("no bearer token")
        return read_token(token.strip(), self.secret(), self.reference(), self.issuer)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
        response = refusal_response(413, "payload_too_large", "La requête dépasse la taille maximale de 64 Kio.")
        await response(scope, receive, send)


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
    "int_parsing": "Nombre entier attendu.",
    "model_attributes_type": "Objet JSON attendu.",
    "dict_type": "Objet JSON attendu.",
    "string_type": "Chaîne de caractères attendue.",
}


def french_message(error: dict) -> str:
    if error["type"] == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    return _FRENCH.get(error["type"], "Valeur invalide.")


# The log or a database out of reach (or overloaded past its timeouts): nothing was stored, or a retry
# with the same event_id answers as the first; the caller is told to retry rather than shown a bug.
UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, OperationalError, InterfaceError, ConnectionError, TimeoutError)
UNAVAILABLE_MESSAGE = "Service momentanément indisponible ; rien n'a été enregistré. Réessayez dans un instant."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refusal)
    async def _refusal(_: Request, exc: Refusal) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"field": field_name(tuple(e["loc"])), "message": french_message(e)} for e in exc.errors()]
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
        return refusal_response(exc.status_code, code, message)

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: the log or a database is unavailable: %s", request.method, request.url.path,
                    type(exc).__name__)
        response = refusal_response(503, "unavailable", UNAVAILABLE_MESSAGE)
        response.headers["Retry-After"] = "2"
        return response

    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return refusal_response(500, "internal_error", "Erreur interne ; l'incident a été journalisé.")


def page(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    return {"items": items[offset : offset + limit], "total": len(items), "limit": limit, "offset": offset}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every refusal's body (SPEC §3.1, §5)."""

    error: str
    message: str
    fields: list[FieldError] | None = None


def _example(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"application/json": {"example": {"error": code, "message": message, **extra}}}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Jeton absent, mal formé, expiré ou mal signé",
          "content": _example("unauthenticated", "Jeton d'authentification absent, invalide ou expiré.")},
    403: {"model": ErrorBody, "description": "Rôle non autorisé, ou un autre établissement que le sien",
          "content": _example("role_forbidden", "Votre rôle ne permet pas cette action.")},
    404: {"model": ErrorBody, "description": "Élève inconnu, ou que l'appelant ne peut pas voir",
          "content": _example("student_not_found", "Élève introuvable.")},
    409: {"model": ErrorBody, "description": "Une règle du dispositif refuse la demande (`error` la nomme)",
          "content": _example("college_avis_after_interview",
                              "L'avis du collège doit être saisi avant les entretiens : un entretien a déjà eu lieu.")},
    413: {"model": ErrorBody, "description": "Corps de requête de plus de 64 Kio",
          "content": _example("payload_too_large", "La requête dépasse la taille maximale de 64 Kio.")},
    422: {"model": ErrorBody, "description": "Données invalides, établissement ou formation inconnus",
          "content": _example("invalid_input", "Certaines données sont invalides.",
                              fields=[{"field": "lycee_uai", "message": "UAI invalide : la lettre de contrôle ne correspond pas aux chiffres"}])},
    503: {"model": ErrorBody, "description": "Journal ou base de données momentanément injoignable : rien n'est enregistré, "
                                             "réessayer (avec le même event_id pour une écriture) après `Retry-After`",
          "content": _example("unavailable", UNAVAILABLE_MESSAGE)},
}

# Documents the bearer token in OpenAPI (so /docs can "Authorize"); ApiGuard does the checking.
BEARER = HTTPBearer(auto_error=False, description="Jeton JWT signé (HS256) : `passpro token` ou la page de connexion")
API_DEPENDENCIES = [Depends(BEARER)]
