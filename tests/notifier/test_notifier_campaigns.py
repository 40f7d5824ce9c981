"""The notifier follows the campaigns the rectorat stream opens (CampaignOpened), without a restart: a new
campaign's groups are made at `0` (an entry written before they existed is read), and its e-mails go; a
campaign stops being followed once its closing plus the retention delay has passed (it may be purged: its
streams must not be made again). PASSPRO_CAMPAIGN, when given, is always followed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from notifier_world import SERVICE_OF, Clock, SmtpServer, wait_async

from services.notifier.domain import followed_campaigns
from services.notifier.process import opened
from services.notifier.settings import NotifierSettings
from shared.contracts.events import CampaignOpened
from tests.shared.event_factories import CAMPAIGN, T0, ine_number, make_event, registered, scheduled

AT = T0 + timedelta(days=10)
NEXT = str(int(CAMPAIGN) + 1)


async def open_campaign(log, campaign: str, version: int, closes_at: datetime | None = None) -> None:
    event = make_event(CampaignOpened(bonus_points=2500, closes_at=closes_at), campaign=campaign)
    appended = await log.append(event, "scoring", version, str(event.event_id))
    assert appended.status == "ok", appended


async def book(log, campaign: str, ine: str) -> None:
    for version, payload in enumerate((registered(), scheduled(at=AT))):
        event = make_event(payload, ine=ine, campaign=campaign)
        appended = await log.append(event, SERVICE_OF[payload.EVENT_TYPE], version, str(event.event_id))
        assert appended.status == "ok", appended


def keys_received(smtp) -> list[str]:
    return sorted(str(m["X-Passpro-Notification"]).strip() for m in smtp.inbox.messages)


async def test_a_campaign_opened_while_it_runs_is_followed_from_its_start(log, academie, redis_url, tmp_path):
    settings = NotifierSettings(redis_url=redis_url, academie=academie, data_dir=tmp_path / "n", block_ms=50,
                                timer_seconds=0.05)
    assert settings.configured_campaign() is None
    await open_campaign(log, CAMPAIGN, 0)
    await book(log, CAMPAIGN, ine_number(50))
    with SmtpServer() as smtp:
        settings = settings.model_copy(update={"smtp_url": smtp.url})
        async with opened(settings, clock=Clock(T0)) as notifier:
            stop = asyncio.Event()
            task = asyncio.create_task(notifier.run(stop))
            try:
                await wait_async(lambda: len(smtp.inbox.messages) >= 1, what="the first campaign's convocation")
                assert notifier.campaigns == [CAMPAIGN]
                for stream in notifier.keys.campaign_streams(NEXT):
                    assert not await notifier.redis.exists(stream)
                # The next campaign's booking is in the log before its opening, so before its groups exist.
                await book(log, NEXT, ine_number(51))
                await open_campaign(log, NEXT, 1)
                await wait_async(lambda: len(smtp.inbox.messages) >= 2, what="the new campaign's convocation")
                assert notifier.campaigns == [CAMPAIGN, NEXT]
                for stream in notifier.keys.campaign_streams(NEXT):
                    [group] = await notifier.redis.xinfo_groups(stream)
                    assert group["name"] in (b"notifier", "notifier")
                registration = notifier.keys.service(NEXT, "registration")
                [group] = await notifier.redis.xinfo_groups(registration)
                assert group["entries-read"] == 2  # both entries, the one written before the group included
            finally:
                stop.set()
                await task
        # One convocation per campaign, each its own student's: [kind, campaign, INE, event id].
        assert [k.split(":")[:3] for k in keys_received(smtp)] == [
            ["convocation", CAMPAIGN, ine_number(50)], ["convocation", NEXT, ine_number(51)]]


def test_which_campaigns_are_followed():
    closes = datetime(2027, 6, 1, 22, 0, tzinfo=UTC)
    events = [make_event(CampaignOpened(closes_at=closes), campaign="2027"),
              make_event(CampaignOpened(), campaign="2028")]
    keep = timedelta(days=61)
    assert followed_campaigns(events, closes, keep) == ["2027", "2028"]
    assert followed_campaigns(events, closes + keep - timedelta(seconds=1), keep) == ["2027", "2028"]
    assert followed_campaigns(events, closes + keep, keep) == ["2028"]  # it may be purged: no more reads
    assert followed_campaigns(events, closes + keep, keep, configured="2027") == ["2027", "2028"]
    assert followed_campaigns([], closes, keep) == []
    assert followed_campaigns([], closes, keep, configured="2026") == ["2026"]
