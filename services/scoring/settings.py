"""The scoring service's settings (environment, prefix PASSPRO_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator

from shared.runtime.settings import MIN_SECRET_LENGTH, ServiceSettings, sqlite_url


class ScoringSettings(ServiceSettings):
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("PASSPRO_SCORING_DATABASE_URL", "PASSPRO_DATABASE_URL")
    )
    # Per service only: the three services may share one PostgreSQL database, never one schema.
    database_schema: str | None = Field(default=None, validation_alias=AliasChoices("PASSPRO_SCORING_DATABASE_SCHEMA"))
    # PASSPRO_CHECKPOINT_KEY signs the log's checkpoints (HMAC-SHA256): Redis must never see it.
    checkpoint_key: str = ""
    # How often the running service signs the log's heads; 0 turns it off (`passpro audit checkpoint` still works).
    checkpoint_interval_seconds: float = Field(default=300.0, ge=0)
    # Days a closed campaign is kept before `passpro campaign purge` may delete it: the two months of the
    # recours contentieux (code de justice administrative, art. R. 421-1), counted as 61 days.
    purge_delay_days: int = Field(default=61, ge=0)

    @field_validator("checkpoint_key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        # A short key would make the signatures guessable: refuse it rather than sign weakly.
        if value and len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"PASSPRO_CHECKPOINT_KEY must be a random secret of at least {MIN_SECRET_LENGTH} characters")
        return value

    def resolved_database_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir, "scoring")

    def checkpoint_key_bytes(self) -> bytes | None:
        return self.checkpoint_key.encode() if self.checkpoint_key else None
