"""Tokens (SPEC §5): HS256 JWTs with `sub`, `role`, `uai`, `exp`, `iss` (and `ine` for a student, SPEC §6), and
who they let act.

Verified tokens are remembered (a bounded LRU keyed by the token, the secret
and the issuer) until their `exp`: the same users send the same token for
hours, and verifying a signature (PyJWT prepares the key and decodes anew at
each call) was an eighth of a write's CPU. Only successes are remembered, so a
bad token is checked every time; the role's establishment is checked against
the reference data on every call, hit or not.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from shared.contracts.events import Actor, Role
from shared.contracts.identifiers import check_ine as check_ine_format, normalise
from shared.contracts.reference import ReferenceData

ROLE_ESTABLISHMENT = {
    "principal": "college",
    "referent": "college",
    "lycee_staff": "lycee",
    "proviseur": "lycee",
    "rectorat": None,
    "eleve": "college",
}


class InvalidToken(Exception):
    """Missing, malformed, expired or badly signed token, or a role that does not fit its establishment."""


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: Role
    uai: str | None
    ine: str | None = None  # a student's own INE (role eleve only)

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, role=self.role, uai=self.uai)


def check_ine(role: str, ine: object) -> str | None:
    """A student's token names their INE (well formed); no other role's token names one. The INE, normalised."""
    if role != "eleve":
        if ine is not None:
            raise InvalidToken("only an eleve token names an INE")
        return None
    value = normalise(ine)
    try:
        if not isinstance(value, str):
            raise ValueError("absent")
        return check_ine_format(value)
    except ValueError as exc:
        raise InvalidToken(f"an eleve token must name a valid INE: {exc}") from None


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
    ttl_seconds: int = 8 * 3600, issuer: str = "passpro", now: float | None = None, ine: str | None = None,
) -> str:
    check_role_matches(role, uai, reference)
    ine = check_ine(role, ine)
    issued = int(now if now is not None else time.time())
    claims = {"sub": user_id, "role": role, "uai": uai, "iat": issued, "exp": issued + ttl_seconds, "iss": issuer}
    if ine is not None:
        claims["ine"] = ine
    return jwt.encode(claims, secret, algorithm="HS256")


VERIFIED_CACHE_SIZE = 4096


class VerifiedTokens:
    """(token, secret, issuer) -> (exp, sub, role, uai, ine) of tokens whose signature and claims were verified.
    One per app (build_app makes it, the API's guard and the pages' sign-in read through it): no module state."""

    def __init__(self, size: int = VERIFIED_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str, str], tuple[object, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str], now: float) -> tuple[object, ...] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if now >= found[0]:  # PyJWT refuses a token once exp <= now: so do we
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return found[1:]

    def put(self, key: tuple[str, str, str], exp: float, claims: tuple[object, ...]) -> None:
        with self._lock:
            self._entries[key] = (exp, *claims)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _verified_claims(
    token: str, secret: str, issuer: str, now: float, verified: VerifiedTokens | None
) -> tuple[object, ...]:
    key = (token, secret, issuer)
    cached = verified.get(key, now) if verified is not None else None
    if cached is not None:
        return cached
    try:
        # exp is checked below against `now`, the clock the cache uses (PyJWT's own reads the wall clock).
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], issuer=issuer,
            options={"require": ["sub", "role", "exp", "iss"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    try:
        exp = int(claims["exp"])
    except (ValueError, TypeError, OverflowError):
        raise InvalidToken("Expiration Time claim (exp) must be an integer.") from None
    if exp <= now:  # as PyJWT: refused once exp <= now
        raise InvalidToken("Signature has expired")
    found = (claims.get("sub"), claims.get("role"), claims.get("uai"), claims.get("ine"))
    if verified is not None:
        verified.put(key, exp, found)
    return found


def read_token(
    token: str, secret: str, reference: ReferenceData, issuer: str = "passpro", now: float | None = None,
    verified: VerifiedTokens | None = None,
) -> Principal:
    """`now` (seconds since the epoch) is the clock the token's expiry is held to; the wall clock by default.
    `verified`: the app's cache of verified signatures (without one, every read verifies the signature)."""
    sub, role, uai, ine = _verified_claims(token, secret, issuer, time.time() if now is None else now, verified)
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise InvalidToken("invalid sub")
    check_role_matches(role, uai, reference)  # type: ignore[arg-type]
    ine = check_ine(role, ine)  # type: ignore[arg-type]
    return Principal(user_id=sub, role=role, uai=uai, ine=ine)  # type: ignore[arg-type]  (checked just above)
