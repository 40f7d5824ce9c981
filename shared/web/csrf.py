"""CSRF: a random seed cookie, bound by HMAC to the session it is used with, so a token copied from another
session or another service is refused."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from shared.domain.errors import Forbidden
from shared.runtime.http.app import runtime

EXPIRED = "Ce formulaire a expiré ou ne vient pas de Passpro : rechargez la page et recommencez."


def csrf_token(request: Request, service: str, seed: str, session: str) -> str:
    """The token a form of `service` carries, for this seed and the session cookie's value."""
    secret = runtime(request).settings.jwt_secret.encode()
    return hmac.new(secret, f"csrf|{service}|{seed}|{session}".encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, form: dict[str, str], service: str, seed_cookie: str, session_cookie: str) -> None:
    seed = request.cookies.get(seed_cookie)
    sent = form.get("csrf", "")
    session = request.cookies.get(session_cookie, "")
    if not seed or not sent or not hmac.compare_digest(sent, csrf_token(request, service, seed, session)):
        raise Forbidden("csrf", EXPIRED)
