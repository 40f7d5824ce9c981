"""The evaluation service's settings (environment, prefix PASSPRO_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from shared.runtime.settings import ServiceSettings, sqlite_url


class EvaluationSettings(ServiceSettings):
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("PASSPRO_EVALUATION_DATABASE_URL", "PASSPRO_DATABASE_URL")
    )
    # Per service only: the three services may share one PostgreSQL database, never one schema.
    database_schema: str | None = Field(default=None, validation_alias=AliasChoices("PASSPRO_EVALUATION_DATABASE_SCHEMA"))

    def resolved_database_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir, "evaluation")
