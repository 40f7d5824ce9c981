"""Error pages: a page that meets an unavailable log or database says so to a person, in French, while the
API keeps its own answer (which speaks of `event_id` to the programs that retry)."""

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.testclient import TestClient
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.fr.labels import UNAVAILABLE_PAGE
from shared.runtime.http.guard import UNAVAILABLE_ERRORS
from shared.web.errors import NO_SUCH_PAGE, install_error_pages


class Pages:
    """Stands for a service's `Web`: the page it would show, as text."""

    def error_page(self, request, status, message, title=None):
        return PlainTextResponse(f"{title or ''}|{message}", status_code=status)


def app_with_pages() -> FastAPI:
    app = FastAPI()

    async def api_unavailable(request, exc):
        return JSONResponse({"error": "unavailable"}, status_code=503)

    for kind in UNAVAILABLE_ERRORS:  # as the API's guard installs its 503
        app.add_exception_handler(kind, api_unavailable)

    @app.get("/eleves")
    async def page():
        raise RedisConnectionError("down")

    @app.get("/api/students")
    async def api():
        raise RedisConnectionError("down")

    install_error_pages(app, Pages())
    return app


def test_an_unavailable_log_on_a_page_is_a_french_503_page_without_event_id() -> None:
    with TestClient(app_with_pages(), raise_server_exceptions=False) as client:
        page = client.get("/eleves")
        assert page.status_code == 503
        assert page.text == f"Service momentanément indisponible|{UNAVAILABLE_PAGE}"
        assert "event_id" not in page.text
        api = client.get("/api/students")
        assert api.status_code == 503 and api.json() == {"error": "unavailable"}


def test_an_unknown_address_is_a_page_not_found() -> None:
    with TestClient(app_with_pages()) as client:
        page = client.get("/nulle-part")
        assert page.status_code == 404 and page.text == f"|{NO_SUCH_PAGE}"
