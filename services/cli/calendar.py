"""`passpro campaign calendar YEAR --registrations-until … --interviews-from …`: the campaign's dates (SPEC §7),
CampaignCalendarSet through scoring's handler, the one `POST /api/campaigns/{year}/calendar` runs.

A date is RFC 3339 with its offset (2027-03-15T18:00:00+01:00) or a day (2027-03-15): a day means its start
in Paris for `--interviews-from`, its end (23:59:59) for the other dates. `aucune` removes a date; a date left
out keeps its value. Exit codes: 0 done, 1 refused by a rule (nothing stored), 2 bad argument or log unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime, time

from services.cli.common import rectorat_command, service_settings
from shared.contracts.identifiers import PARIS

OPTIONS = {
    "registrations_until": "--registrations-until",
    "interviews_from": "--interviews-from",
    "interviews_until": "--interviews-until",
    "lycee_avis_until": "--lycee-avis-until",
    "closes_at": "--closes-at",
}
NONE = {"aucune", "none", "-"}


def parse_date(field: str, text: str) -> datetime | None:
    """A CLI date: None to remove it; a ValueError in French when it is neither a moment with offset nor a day."""
    text = text.strip()
    if text.lower() in NONE:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) == 10:
        moment = time(0, 0) if field == "interviews_from" else time(23, 59, 59)
        return datetime.combine(day, moment, tzinfo=PARIS)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{OPTIONS[field]} : « {text} » n'est ni une date (2027-03-15) ni un moment (2027-03-15T18:00:00+01:00).") from None
    if value.tzinfo is None:
        raise ValueError(f"{OPTIONS[field]} doit préciser un fuseau (ex. 2027-03-15T18:00:00+01:00) ou n'être qu'une date.")
    return value


async def set_calendar(settings, year: str, dates: dict[str, datetime | None]):
    """CampaignCalendarSet, by the CLI as the rectorat, through scoring's handler: the same role check,
    decision and append as the API's."""
    from services.scoring.handlers import CalendarBody, set_calendar as set_calendar_handler

    body = CalendarBody(**dates)
    async with rectorat_command(settings) as (rt, rectorat):
        return await set_calendar_handler(rt, rectorat, year, body)


def campaign_calendar(args: argparse.Namespace) -> int:
    from shared.contracts.identifiers import check_campaign
    from shared.domain.errors import Refusal
    from shared.fr.formats import paris

    try:
        year = check_campaign(args.year.strip())
        dates = {field: parse_date(field, getattr(args, field)) for field in OPTIONS if getattr(args, field) is not None}
    except ValueError as exc:
        print(f"passpro campaign calendar: {exc}", file=sys.stderr)
        return 2
    if not dates:
        print("passpro campaign calendar: aucune date donnée (" + ", ".join(OPTIONS.values()) + ").", file=sys.stderr)
        return 2
    try:
        outcome = asyncio.run(set_calendar(service_settings("scoring"), year, dates))
    except Refusal as exc:
        print(f"passpro campaign calendar: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"passpro campaign calendar: journal inaccessible : {exc}", file=sys.stderr)
        return 2
    payload = outcome.event.payload
    print(f"Calendrier de la campagne {year} fixé, position {outcome.positions.service} :")
    for field, option in OPTIONS.items():
        value = getattr(payload, field)
        print(f"  {option[2:]:<22} {paris(value) if value else '—'}")
    return 0


def register_into(campaign: argparse._SubParsersAction) -> None:
    p = campaign.add_parser("calendar", help="CampaignCalendarSet: the campaign's dates (a day, a moment, or aucune)")
    p.add_argument("year")
    for field, option in OPTIONS.items():
        p.add_argument(option, dest=field)
    p.set_defaults(func=campaign_calendar)
