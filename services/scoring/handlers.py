"""The rectorat's command, shared by the API (and any other entrypoint): opening a campaign.

The handler takes the command (the request's validated body), who acts and the service's runtime: it
checks the caller's role, then runs the domain's decision on the campaign's history and appends at the
version read (`shared.runtime.commands`). No HTTP request reaches it.
"""

from __future__ import annotations

from pydantic import Field

from services.scoring import domain
from shared.contracts.identifiers import Campaign
from shared.runtime import commands
from shared.runtime.commands import Outcome
from shared.runtime.http.app import Runtime
from shared.runtime.http.auth import Principal
from shared.runtime.http.guard import require_role
from shared.runtime.http.requests import Integer, Time, WriteBody


class CampaignBody(WriteBody):
    campaign: Campaign
    bonus_points: Integer = Field(default=2500, ge=0, le=100_000)
    closes_at: Time | None = None


async def open_campaign(rt: Runtime, who: Principal, body: CampaignBody) -> Outcome:
    require_role(who, "rectorat")
    command = domain.OpenCampaign(body.bonus_points, body.closes_at)
    return await commands.run(
        rt.log,
        service=rt.name,
        key=rt.fingerprint_key,
        actor=who.actor,
        action="open-campaign",
        campaign=body.campaign,
        ine=None,
        event_id=body.event_id,
        request=body.request_fields(),
        decide=lambda _file, campaign, now: domain.decide(campaign, now, command),
    )
