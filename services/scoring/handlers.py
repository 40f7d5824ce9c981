"""The rectorat's commands, shared by the API and the pages: opening a campaign, exporting the Affelnet file.

A handler takes the command, who acts and the service's runtime: it checks the caller's role, then
runs the domain's decision on the campaign's history and appends at the version read
(`shared.runtime.commands`), or records the export made. No HTTP request reaches it.
"""

from __future__ import annotations

import asyncio

from pydantic import Field

from services.scoring import affelnet as exports, domain
from shared.contracts.identifiers import Campaign
from shared.domain.calendar import FIELDS as CALENDAR_FIELDS
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
    return await rt.command(
        who, "open-campaign", None, body.campaign, body, lambda _file, campaign, now: domain.decide(campaign, now, command)
    )


class CalendarBody(WriteBody):
    """The campaign's dates (SPEC §7), each optional: one left out keeps its value, one sent as null is removed."""

    registrations_until: Time | None = None
    interviews_from: Time | None = None
    interviews_until: Time | None = None
    lycee_avis_until: Time | None = None
    closes_at: Time | None = None

    def request_fields(self) -> dict:
        """A date left out and a date sent as null ask different things: only the dates sent identify it."""
        return self.model_dump(mode="json", exclude={"event_id"}, exclude_unset=True)


async def set_calendar(rt: Runtime, who: Principal, campaign: str, body: CalendarBody) -> Outcome:
    """CampaignCalendarSet on the rectorat stream, decided on the campaign as read at the rectorat stream's
    version the append is conditioned on (the API's, the page's and the CLI's one handler)."""
    require_role(who, "rectorat")
    command = domain.SetCalendar({name: getattr(body, name) for name in body.model_fields_set if name in CALENDAR_FIELDS})
    return await rt.command(
        who, "set-calendar", None, campaign, body, lambda _file, file, now: domain.decide_calendar(file, now, command)
    )


async def export_affelnet(
    rt: Runtime, who: Principal, campaign: str | None, min_position: str | None = None
) -> tuple[str, exports.AffelnetExport]:
    """The campaign and its Affelnet file, recorded as an export made by `who` (when, positions, SHA-256),
    once the view has reached `min_position`."""
    require_role(who, "rectorat")
    await rt.wait_for(min_position)
    year = campaign or rt.settings.campaign
    return year, await asyncio.to_thread(exports.export_affelnet, rt.engine, year, who.user_id)
