"""The notifier's settings (environment, prefix PASSPRO_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from shared.runtime.settings import ServiceSettings, sqlite_url


NOTIFIER_PORT = 8104  # `passpro serve notifier`'s default port (its outbox and status pages)


class NotifierSettings(ServiceSettings):
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("PASSPRO_NOTIFIER_DATABASE_URL")
    )
    database_schema: str | None = Field(default=None, validation_alias=AliasChoices("PASSPRO_NOTIFIER_DATABASE_SCHEMA"))
    # smtp://host:25, smtp+starttls://host:587, smtps://host:465, with user:password@ when needed; unset: the
    # e-mails are kept in the local outbox (the /outbox page), never sent.
    smtp_url: str = ""
    mail_from: str = "Passpro <ne-pas-repondre@passpro.local>"
    smtp_timeout_seconds: float = 10.0
    smtp_ca_file: str = ""  # a private CA's certificates (PEM) for smtps:// and STARTTLS; unset: the system's
    # The heads of establishment's mailboxes: the académies' convention ce.<UAI>@ac-<académie>.fr.
    establishment_mail: str = "ce.{uai}@ac-{academie}.fr"
    registration_url: str = "http://127.0.0.1:8101"  # where the convocation pages are (links in the e-mails)
    consumer_group: str = "notifier"
    consumer_name: str = "notifier-1"
    claim_idle_seconds: float = 60.0  # a pending entry idle this long (its consumer died) is claimed
    timer_seconds: float = 15.0  # how often due reminders and retries are looked at
    retry_base_seconds: float = 5.0  # SMTP failures: 5 s, 10 s, 20 s... up to retry_max_seconds
    retry_max_seconds: float = 900.0
    block_ms: int = 1000
    # A campaign is followed from its CampaignOpened until its closing plus this delay (the retention's
    # PASSPRO_PURGE_DELAY_DAYS: past it the campaign may be purged, and its streams must not be made again).
    purge_delay_days: int = Field(default=61, ge=0)
    campaigns_check_seconds: float = 3600.0  # the followed campaigns looked at again even with no new entry

    def configured_campaign(self) -> str | None:
        """PASSPRO_CAMPAIGN when it was given (always followed), else None: the rectorat stream says."""
        return self.campaign if "campaign" in self.model_fields_set else None

    def require_smtp_in_production(self) -> None:
        """Production sends: the outbox (a development page, no sign-in) is never where e-mails wait there."""
        if self.environment == "production" and not self.smtp_url:
            raise SystemExit("PASSPRO_SMTP_URL must be set in production (the local outbox is for development)")

    def resolved_database_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir, "notifier")

    def mailbox(self, uai: str) -> str:
        return self.establishment_mail.format(uai=uai.lower(), academie=self.academie)
