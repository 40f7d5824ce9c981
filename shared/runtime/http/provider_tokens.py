"""The académie provider's access tokens for the API (SPEC §8), beside the HS256 service tokens.

A JWT signed RS256 or ES256 by a key of the provider's JWKS (found by discovery), for Passpro's audience
(`PASSPRO_OIDC_AUDIENCE`), from the provider (`iss`), not expired; the claims mapping gives its role and
establishment, as for the pages. PyJWT verifies (the library the HS256 tokens already use, with its JWK
support); the JWKS is kept in memory and fetched again when a token names a key it does not hold (the
provider rotated its keys), at most once every `refresh_seconds` so that tokens with made-up key ids cannot
make the service hammer the provider; and once it is older than `max_age_seconds` (an hour), so that a key
the provider withdrew stops being trusted, with the tokens it had verified. Verified tokens are otherwise
remembered until their expiry, like the HS256 ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

import httpx
import jwt

from shared.contracts.reference import ReferenceData
from shared.runtime.claims_map import ClaimsMap, Mapped, load_claims_map, map_claims
from shared.runtime.http.auth import InvalidToken, Principal, check_role_matches
from shared.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
CACHE_SIZE = 4096
HTTP_TIMEOUT = 5.0
JWKS_MAX_AGE_SECONDS = 3600.0


class ProviderTokens:
    """One per app: the provider's keys, and the provider tokens already verified."""

    def __init__(
        self, issuer: str, audience: str, claims_map: ClaimsMap, *, refresh_seconds: float = 30.0,
        max_age_seconds: float = JWKS_MAX_AGE_SECONDS, transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.claims_map = claims_map
        self.refresh_seconds = refresh_seconds
        self.max_age_seconds = max_age_seconds
        self.transport = transport
        self.fetches = 0  # JWKS downloads so far (the tests count them)
        self._jwks_uri: str | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ProviderTokens | None:
        if not (settings.oidc_issuer and settings.oidc_audience):
            return None
        return cls(
            settings.oidc_issuer, settings.oidc_audience, load_claims_map(settings.oidc_claims_map),
            refresh_seconds=settings.oidc_jwks_refresh_seconds,
        )

    @staticmethod
    def applies(token: str) -> bool:
        """Whether the token is one of the provider's (signed RS256 or ES256), not a service token."""
        try:
            return jwt.get_unverified_header(token).get("alg") in ALGORITHMS
        except jwt.PyJWTError:
            return False

    async def read(self, token: str, reference: ReferenceData, now: float | None = None) -> Principal:
        now = time.time() if now is None else now
        if self._fetched_at is not None and now - self._fetched_at >= self.max_age_seconds:
            await self._refresh(now)
        found = self._verified.get(token)
        if found is not None and now < found[0]:
            self._verified.move_to_end(token)
            who = found[1]
        else:
            exp, who = await self._verify(token, reference, now)
            self._verified[token] = (exp, who)
            while len(self._verified) > CACHE_SIZE:
                self._verified.popitem(last=False)
        check_role_matches(who.role, who.uai, reference)  # the reference data of now, hit or not
        return who

    async def _verify(self, token: str, reference: ReferenceData, now: float) -> tuple[float, Principal]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        key = await self._key(header.get("kid"), now)
        if header.get("alg") not in ALGORITHMS or key.algorithm_name != header.get("alg"):
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not the key's")
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[header["alg"]], audience=self.audience, issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp <= now:
            raise InvalidToken("the provider token has expired")
        mapped = map_claims(self.claims_map, claims, reference)
        if not isinstance(mapped, Mapped):
            raise InvalidToken(f"the provider token's claims give no role: {mapped.reason}")
        return float(exp), Principal(user_id=mapped.user_id, role=mapped.role, uai=mapped.uai)  # type: ignore[arg-type]

    async def _key(self, kid: object, now: float) -> jwt.PyJWK:
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the provider token names no key (kid)")
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys:
                if self._fetched_at is not None and now - self._fetched_at < self.refresh_seconds:
                    raise InvalidToken(f"unknown key {kid!r} (the provider's keys were fetched moments ago)")
                await self._fetch(now)
        if kid not in self._keys:
            raise InvalidToken(f"unknown key {kid!r}: not in the provider's JWKS")
        return self._keys[kid]

    async def _refresh(self, now: float) -> None:
        """The keys again, because they are old; on failure the ones held are kept (and tried again later)."""
        async with self._lock:
            if self._fetched_at is not None and now - self._fetched_at >= self.max_age_seconds:
                try:
                    await self._fetch(now)
                except InvalidToken:
                    pass

    async def _fetch(self, now: float) -> None:
        self._fetched_at = now
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, transport=self.transport) as client:
                if self._jwks_uri is None:
                    answer = await client.get(f"{self.issuer}/.well-known/openid-configuration")
                    answer.raise_for_status()
                    self._jwks_uri = answer.json()["jwks_uri"]
                answer = await client.get(self._jwks_uri)
                answer.raise_for_status()
                keys = answer.json()["keys"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("the provider's JWKS could not be fetched: %s", exc)
            raise InvalidToken(f"the provider's keys are out of reach: {exc}") from exc
        self.fetches += 1
        usable: dict[str, jwt.PyJWK] = {}
        for data in keys if isinstance(keys, list) else []:
            if not isinstance(data, dict) or data.get("use", "sig") != "sig" or not data.get("kid"):
                continue
            try:
                key = jwt.PyJWK(data, algorithm=data.get("alg") or ("RS256" if data.get("kty") == "RSA" else "ES256"))
            except jwt.PyJWTError:
                continue
            if key.algorithm_name in ALGORITHMS:
                usable[data["kid"]] = key
        if set(self._keys) - set(usable):  # a key withdrawn: what it signed is no longer trusted
            self._verified.clear()
        self._keys = usable
