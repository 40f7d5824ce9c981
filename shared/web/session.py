"""The sign-in session: a cookie that carries the signed token itself, verified as the API verifies a bearer
token (`read_token`), so a page and an API call of the same user are checked the same way, and the session
expires with the token."""

from __future__ import annotations

import time

import jwt
from fastapi import Request
from fastapi.responses import Response

from shared.runtime.http.app import runtime
from shared.runtime.http.auth import InvalidToken, Principal, read_token


class SignInRequired(Exception):
    """The visitor has no valid session: they are sent to the sign-in page."""


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https",
    )


def session_user(request: Request, cookie: str) -> Principal | None:
    """The user of the session cookie `cookie`; None without a valid one."""
    token = request.cookies.get(cookie)
    if not token:
        return None
    rt = runtime(request)
    try:
        who = read_token(
            token, rt.settings.jwt_secret, rt.reference, rt.settings.jwt_issuer, verified=rt.verified_tokens
        )
    except InvalidToken:
        return None
    # Where the API's ApiGuard puts the caller, so the API's route functions serve the pages too.
    request.scope.setdefault("state", {})["principal"] = who
    return who


def open_session(response: Response, request: Request, cookie: str, token: str) -> None:
    """Set the session cookie to a token already verified by `read_token`; it lives as long as the token."""
    rt = runtime(request)
    # Read again only for its expiry, which the cookie's lifetime follows.
    claims = jwt.decode(
        token, rt.settings.jwt_secret, algorithms=["HS256"], options={"verify_exp": False, "verify_iss": False}
    )
    set_cookie(response, request, cookie, token, max_age=max(int(claims["exp"] - time.time()), 1))
