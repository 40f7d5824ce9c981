"""CSRF tokens bound to their service, seed and session; a session cookie that is absent or forged is no one."""

from types import SimpleNamespace

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from shared.domain.errors import Forbidden
from shared.web.csrf import EXPIRED, check_csrf, csrf_token
from shared.web.session import session_user


def app_with(seen: list) -> FastAPI:
    app = FastAPI()
    # What the routes read of a service's Runtime: its secret and issuer (no token below is valid anyway).
    app.state.runtime = SimpleNamespace(
        settings=SimpleNamespace(jwt_secret="secret", jwt_issuer="passpro"), reference=None, verified_tokens=None,
    )

    @app.get("/csrf")
    async def tokens(request: Request):
        base = csrf_token(request, "registration", "seed", "session")
        seen.append({
            "same": base == csrf_token(request, "registration", "seed", "session"),
            "other_service": base != csrf_token(request, "evaluation", "seed", "session"),
            "other_seed": base != csrf_token(request, "registration", "seed2", "session"),
            "other_session": base != csrf_token(request, "registration", "seed", "another"),
        })
        return JSONResponse({})

    @app.post("/check")
    async def check(request: Request):
        form = dict(request.query_params)
        try:
            check_csrf(request, form, "registration", "c_seed", "c_session")
        except Forbidden as exc:
            return JSONResponse({"refused": exc.message}, status_code=403)
        return JSONResponse({"ok": True})

    @app.get("/who")
    async def who(request: Request):
        return JSONResponse({"who": repr(session_user(request, "c_session"))})

    return app


def test_a_csrf_token_belongs_to_one_service_seed_and_session() -> None:
    seen: list = []
    with TestClient(app_with(seen)) as client:
        client.get("/csrf")
    assert seen == [{"same": True, "other_service": True, "other_seed": True, "other_session": True}]


@pytest.mark.parametrize("cookies", [{}, {"c_seed": "seed"}])
def test_a_form_without_its_seed_or_token_is_refused(cookies: dict) -> None:
    with TestClient(app_with([]), cookies=cookies) as client:
        answer = client.post("/check", params={"csrf": "x" * 64})
        assert answer.status_code == 403 and answer.json() == {"refused": EXPIRED}


def test_the_right_token_passes_and_a_token_of_another_session_does_not() -> None:
    seen: list = []
    app = app_with(seen)

    @app.get("/token")
    async def token(request: Request):
        return JSONResponse({"t": csrf_token(request, "registration", "seed", request.cookies.get("c_session", ""))})

    with TestClient(app, cookies={"c_seed": "seed", "c_session": "s1"}) as client:
        good = client.get("/token").json()["t"]
        assert client.post("/check", params={"csrf": good}).json() == {"ok": True}
        client.cookies.set("c_session", "s2")
        assert client.post("/check", params={"csrf": good}).status_code == 403


def test_no_cookie_or_a_forged_one_is_no_session() -> None:
    with TestClient(app_with([])) as client:
        assert client.get("/who").json() == {"who": "None"}
        client.cookies.set("c_session", "not.a.token")
        assert client.get("/who").json() == {"who": "None"}
