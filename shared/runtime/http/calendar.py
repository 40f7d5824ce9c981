"""The campaign in force as the pages show it (SPEC §7: the calendar's band on every role's pages): an ASGI
middleware puts the campaign's file (its calendar) in the request's state for every page (not /api/, not
/static/). It is folded from the rectorat stream, the one the commands' decisions read, and read again only
when that stream's length changed (one XLEN per page), so a page never shows a calendar older than the log's."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.domain.student_file import CampaignFile

log = logging.getLogger(__name__)

SKIPPED = ("/api/", "/static/", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json")


class CampaignCalendar:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._length: int | None = None
        self._files: dict[str, CampaignFile] = {}

    async def campaign(self, rt, campaign: str) -> CampaignFile:
        length = await rt.log.rectorat_version()
        if length != self._length or campaign not in self._files:
            self._files = {campaign: await rt.log.read_campaign(campaign)}
            self._length = length
        return self._files[campaign]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(SKIPPED):
            rt = getattr(scope["app"].state, "runtime", None)
            if rt is not None:
                try:
                    scope.setdefault("state", {})["campaign_file"] = await self.campaign(rt, rt.settings.campaign)
                except (RedisError, OSError) as exc:  # the page still answers, without the band
                    log.warning("the campaign's calendar could not be read for a page: %s", type(exc).__name__)
        await self.app(scope, receive, send)
