"""Tokens (SPEC §5): HS256 JWTs with `sub`, `role`, `uai`, `exp`, `iss`, and who they let act."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from shared.contracts.events import Actor, Role
from shared.contracts.reference import ReferenceData

ROLE_ESTABLISHMENT = {
    "principal": "college",
    "referent": "college",
    "lycee_staff": "lycee",
    "proviseur": "lycee",
    "rectorat": None,
}


class InvalidToken(Exception):
    """Missing, malformed, expired or badly signed token, or a role that does not fit its establishment."""


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: Role
    uai: str | None

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, role=self.role, uai=self.uai)


def check_role_matches(role: str, uai: str | None, reference: ReferenceData) -> None:
    if not isinstance(role, str) or role not in ROLE_ESTABLISHMENT:
        raise InvalidToken(f"unknown role {role!r}")
    expected = ROLE_ESTABLISHMENT[role]
    if expected is None:
        if uai is not None:
            raise InvalidToken("a rectorat token names no establishment")
        return
    establishment = reference.get(uai) if isinstance(uai, str) else None
    if establishment is None or establishment.type != expected:
        raise InvalidToken(f"a {role} token must name a {expected} of the reference data")


def issue_token(
    secret: str, *, user_id: str, role: str, uai: str | None, reference: ReferenceData,
    ttl_seconds: int = 8 * 3600, issuer: str = "passpro", now: float | None = None,
) -> str:
    check_role_matches(role, uai, reference)
    issued = int(now if now is not None else time.time())
    claims = {"sub": user_id, "role": role, "uai": uai, "iat": issued, "exp": issued + ttl_seconds, "iss": issuer}
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(token: str, secret: str, reference: ReferenceData, issuer: str = "passpro") -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], issuer=issuer, options={"require": ["sub", "role", "exp", "iss"]}
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    sub, role, uai = claims.get("sub"), claims.get("role"), claims.get("uai")
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise InvalidToken("invalid sub")
    check_role_matches(role, uai, reference)
    return Principal(user_id=sub, role=role, uai=uai)
