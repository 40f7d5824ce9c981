"""What purging a campaign deletes from registration's views (records' retention calls it; nothing else does)."""

from __future__ import annotations

from sqlalchemy import Connection

from services.registration.views import metadata
from shared.runtime.projection.views import delete_campaign_rows


def purge_campaign(conn: Connection, campaign: str, streams_prefix: str) -> dict[str, int]:
    """The campaign's rows in every table of the view, and the positions of its streams; rows per table."""
    return delete_campaign_rows(conn, metadata, campaign, streams_prefix)
