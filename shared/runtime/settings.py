"""Settings every service shares (SPEC §5 configuration); each service adds its database URL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contracts.identifiers import check_campaign
from shared.runtime.keys.crypto import MasterKey, development_master_key, parse_master_key
from shared.runtime.keys.store import KeyStore

MIN_SECRET_LENGTH = 32


def campaign_in_force(today: date) -> str:
    """The year of the next rentrée: this year before 1 September, next year from then."""
    return str(today.year if today.month < 9 else today.year + 1)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PASSPRO_", extra="ignore", populate_by_name=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    academie: str = Field(default="paris", pattern=r"^[a-z0-9-]{1,40}$")
    campaign: str = Field(default_factory=lambda: campaign_in_force(date.today()))
    jwt_secret: str = ""
    jwt_issuer: str = "passpro"
    data_dir: Path = Path(".passpro")
    database_schema: str | None = None  # PostgreSQL schema; defaults to the service's name
    consumer_page_size: int = 1000
    read_wait_seconds: float = 5.0  # how long a read with min_position waits for its view
    demo: bool = False  # `passpro up --demo`: the sign-in pages offer the demo users in one click
    master_key: str = ""  # base64 of 32 bytes; unset: the development key under data_dir (never in serve)
    keystore_database_url: str = ""  # the key store's own database; unset: keys.sqlite3 under data_dir

    @field_validator("campaign")
    @classmethod
    def _campaign(cls, value: str) -> str:
        return check_campaign(value.strip())

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

    def require_master_key(self) -> None:
        """`passpro serve` never falls back on a development key: production sets its own."""
        if not self.master_key:
            raise SystemExit("PASSPRO_MASTER_KEY must be set (32 random bytes in base64: passpro master-key)")
        parse_master_key(self.master_key)


def sqlite_url(data_dir: Path, service: str) -> str:
    return f"sqlite:///{(data_dir / f'{service}.sqlite3').resolve()}"
