"""Settings every service shares (SPEC §5 configuration); each service adds its database URL."""

from __future__ import annotations

import ipaddress
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contracts.identifiers import PARIS, check_campaign
from shared.runtime.claims_map import load_claims_map
from shared.runtime.keys.crypto import MasterKey, development_master_key, parse_master_key
from shared.runtime.keys.store import KeyStore

MIN_SECRET_LENGTH = 32


def campaign_in_force(today: date) -> str:
    """The year of the next rentrée: this year before 1 September, next year from then."""
    return str(today.year if today.month < 9 else today.year + 1)


def trusted_proxy_list(value: str) -> list[str]:
    """PASSPRO_TRUSTED_PROXIES as uvicorn's forwarded_allow_ips: comma-separated addresses or networks, each
    checked here — uvicorn would take a misspelt one as a name no peer ever has, and silently trust no one."""
    found = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        if entry == "*":
            raise ValueError("'*' would believe X-Forwarded-For from anyone: a client could choose its own address "
                             "and escape the sign-in limits counted per address; name the reverse proxies")
        try:
            found.append(str(ipaddress.ip_network(entry) if "/" in entry else ipaddress.ip_address(entry)))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is neither an IP address nor a network (address/prefix): {exc}") from None
    return found


def paris_today() -> date:
    """Today in Paris, where a rentrée begins (SPEC §2): from 22:00 UTC on 31 August it is already 1 September
    there, and scoring refuses to open that campaign; the machine's own zone must not decide."""
    return datetime.now(PARIS).date()


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PASSPRO_", extra="ignore", populate_by_name=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    # SPEC §9: the log through its Sentinels (host:port,...), which then take precedence over redis_url
    # (shared/runtime/redis_connect.py); a write is acknowledged once on redis_min_replicas replicas (unset:
    # 1 with Sentinels or a cluster, else 0), waited for at most redis_replica_timeout_ms, else 503.
    redis_sentinels: str = ""
    redis_sentinel_service: str = "passpro"
    redis_min_replicas: int | None = Field(default=None, ge=0)
    redis_replica_timeout_ms: int = Field(default=2000, ge=1)
    redis_wait_aof: bool = False  # WAITAOF 1 N instead of WAIT N: fsynced on every copy, about 1 s a write
    # SPEC §9: several académies on one Redis Cluster (host:port,... of some of its nodes), which then takes
    # precedence over the Sentinels and redis_url; each académie on the shard its hash tag names.
    redis_cluster_nodes: str = ""
    academie: str = Field(default="paris", pattern=r"^[a-z0-9-]{1,40}$")
    campaign: str = Field(default_factory=lambda: campaign_in_force(paris_today()))
    jwt_secret: str = ""
    jwt_issuer: str = "passpro"
    data_dir: Path = Path(".passpro")
    database_schema: str | None = None  # PostgreSQL schema; defaults to the service's name
    consumer_page_size: int = 1000
    read_wait_seconds: float = 5.0  # how long a read with min_position waits for its view
    demo: bool = False  # `passpro up --demo`: the sign-in pages offer the demo users in one click
    master_key: str = ""  # base64 of 32 bytes; unset: the development key under data_dir (never in serve)
    keystore_database_url: str = ""  # the key store's own database; unset: keys.sqlite3 under data_dir
    # Signing in (SPEC §8): production has no token page nor demo users; staff sign in with the académie's
    # OpenID Connect provider (discovery at <issuer>/.well-known/openid-configuration), whose access tokens
    # (JWT for the audience) the API accepts beside the HS256 service tokens.
    environment: Literal["development", "production"] = "development"
    token_signin: bool | None = None  # the token-pasting page; unset: everywhere but in production
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_audience: str = ""  # the API's resource indicator: provider access tokens must name it in `aud`
    oidc_scope: str = "openid profile"
    oidc_claims_map: str = ""  # a JSON mapping file (shared/runtime/claims_map.py); unset: the ministry-style default
    oidc_jwks_refresh_seconds: float = 30.0  # at most one JWKS refresh per this many seconds for an unknown key
    # The reverse proxies whose X-Forwarded-For and X-Forwarded-Proto `passpro serve` believes (addresses or
    # networks, comma-separated; empty: none): the sign-in limits count the browser's address this gives
    # (shared/runtime/tries.py), and cookies are `Secure` when the proxy says https. Default: loopback only.
    trusted_proxies: str = "127.0.0.1,::1"

    @field_validator("campaign")
    @classmethod
    def _campaign(cls, value: str) -> str:
        return check_campaign(value.strip())

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        return ",".join(trusted_proxy_list(value))

    @property
    def forwarded_allow_ips(self) -> list[str]:
        """For uvicorn: the trusted proxies, an empty list when none (None would make uvicorn read its own
        FORWARDED_ALLOW_IPS)."""
        return trusted_proxy_list(self.trusted_proxies)

    def master(self) -> MasterKey:
        if self.master_key:
            return MasterKey(parse_master_key(self.master_key))
        return MasterKey(development_master_key(self.data_dir))

    def open_keystore(self) -> KeyStore:
        return KeyStore.open(self.keystore_database_url or sqlite_url(self.data_dir, "keys"), self.master())

    def require_secret(self) -> None:
        """Refuse to serve with no secret or a placeholder one (SPEC §5: `passpro serve`)."""
        if len(self.jwt_secret) < MIN_SECRET_LENGTH:
            raise SystemExit(
                f"PASSPRO_JWT_SECRET must be set to a random secret of at least {MIN_SECRET_LENGTH} characters"
            )

    @property
    def token_page(self) -> bool:
        """Whether the token-pasting sign-in page is served: in development and demo mode only, by default."""
        return self.environment != "production" if self.token_signin is None else self.token_signin

    @property
    def oidc_sign_in(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    def require_sign_in_setup(self) -> None:
        """`passpro serve` in production: staff sign in through the académie's provider, never by a pasted token
        nor as a demo user."""
        if self.oidc_sign_in or self.oidc_audience:
            load_claims_map(self.oidc_claims_map)  # a bad mapping file stops the start-up, with the reason
        if self.environment != "production":
            return
        if self.token_page:
            raise SystemExit("PASSPRO_TOKEN_SIGNIN: the token sign-in page is for development only, never in production")
        if self.demo:
            raise SystemExit("PASSPRO_DEMO: the demo users are for development only, never in production")
        if not (self.oidc_sign_in and self.oidc_client_secret):
            raise SystemExit(
                "PASSPRO_OIDC_ISSUER, PASSPRO_OIDC_CLIENT_ID and PASSPRO_OIDC_CLIENT_SECRET must be set in production "
                "(staff sign in with the académie's identity provider)"
            )

    def require_master_key(self) -> None:
        """`passpro serve` never falls back on a development key: production sets its own."""
        if not self.master_key:
            raise SystemExit("PASSPRO_MASTER_KEY must be set (32 random bytes in base64: passpro master-key)")
        parse_master_key(self.master_key)


def sqlite_url(data_dir: Path, service: str) -> str:
    return f"sqlite:///{(data_dir / f'{service}.sqlite3').resolve()}"
