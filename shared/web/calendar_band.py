"""The calendar's band (SPEC §7) every role's pages show under the header: the campaign's phase and its next
date, from the campaign file the CampaignCalendar middleware read for the page and the service's clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request

from shared.domain.calendar import phase_at


def calendar_band(request: Request, now: datetime) -> dict[str, Any] | None:
    """The band's phase and next date, or None when the campaign has no calendar (nor closing) yet."""
    campaign = request.scope.get("state", {}).get("campaign_file")
    if campaign is None or not campaign.opened:
        return None
    calendar = campaign.calendar.model_copy(update={"closes_at": campaign.closes_at})
    if not calendar.is_set:
        return None
    phase = phase_at(calendar, now)
    return {"phase": phase.name, "next_label": phase.next_label, "next_date": phase.next_date}
