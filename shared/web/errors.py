"""French error pages: a page's refusal, unknown address, wrong method, unavailable log or database, or an
unexpected error is shown as a page of the service; the API keeps its own JSON answers."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.domain.errors import Refusal
from shared.fr.labels import UNAVAILABLE_PAGE
from shared.runtime.http.guard import UNAVAILABLE_ERRORS
from shared.web.forms import FormTooLarge
from shared.web.session import SignInRequired

log = logging.getLogger(__name__)

NO_SUCH_PAGE = "Cette adresse ne correspond à aucune page de Passpro."
TITLES = {403: "Accès refusé", 404: "Page introuvable", 413: "Formulaire trop volumineux", 500: "Erreur interne"}
DEFAULT_TITLE = "Demande refusée"


def _is_page(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/api/") or path in ("/docs", "/openapi.json", "/healthz", "/readyz", "/metrics"))


def install_error_pages(app: FastAPI, pages: Any) -> None:
    """Errors on a page answer `pages.error_page(...)`; on the API, the handler the app already had."""
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
            if isinstance(exc, UNAVAILABLE_ERRORS):
                log.warning("page %s %s: the log or a database is unavailable: %s", request.method,
                            request.url.path, type(exc).__name__)
                return pages.error_page(request, 503, UNAVAILABLE_PAGE, "Service momentanément indisponible")
            log.exception("unexpected error on page %s %s", request.method, request.url.path)
            return pages.error_page(request, 500, "Une erreur interne est survenue ; elle est journalisée. Réessayez.")

        app.add_exception_handler(kind, handle)

    for kind in (Refusal, RequestValidationError, StarletteHTTPException, *UNAVAILABLE_ERRORS, Exception):
        page_or_api(kind)

    @app.exception_handler(SignInRequired)
    async def _sign_in_first(request: Request, _: SignInRequired) -> Response:
        target = request.url.path if request.method == "GET" else "/"
        suffix = "" if target == "/" else f"?suite={quote(target)}"
        return RedirectResponse(f"/connexion{suffix}", status_code=303)

    @app.exception_handler(FormTooLarge)
    async def _too_large(request: Request, _: FormTooLarge) -> Response:
        return pages.error_page(request, 413, "Le formulaire dépasse la taille maximale de 64 Kio.")
