"""The registration service's settings (environment, prefix PASSPRO_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from shared.runtime.settings import ServiceSettings, sqlite_url


class RegistrationSettings(ServiceSettings):
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("PASSPRO_REGISTRATION_DATABASE_URL", "PASSPRO_DATABASE_URL")
    )
    # Per service only: the three services may share one PostgreSQL database, never one schema.
    database_schema: str | None = Field(default=None, validation_alias=AliasChoices("PASSPRO_REGISTRATION_DATABASE_SCHEMA"))

    # EduConnect, the students' SAML 2.0 identity provider (SPEC §8; services/registration/educonnect.py):
    # unset metadata, no EduConnect. The IdP's metadata is a file or an https URL.
    saml_idp_metadata: str | None = None
    saml_sp_entity_id: str | None = None  # default: <base URL>/saml/metadata
    saml_sp_base_url: str | None = None  # this service's public address: the ACS is <base URL>/saml/acs
    saml_sp_key: Path | None = None  # the SP's private key (PEM): signs AuthnRequests, decrypts assertions
    saml_sp_cert: Path | None = None  # its certificate (PEM), published in /saml/metadata
    saml_attribute_map: Path | None = None  # JSON; default: EduConnect's attributes (docs/educonnect.md)

    def resolved_database_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir, "registration")
