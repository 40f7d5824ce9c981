"""`passpro campaign calendar YEAR …` runs scoring's handler, the one `POST /api/campaigns/{year}/calendar` runs
(one handler per command): the same decision and refusals, nothing stored when refused; a day alone means its
start (interviews_from) or its end in Paris, `aucune` removes a date, a date left out keeps its value."""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
from datetime import datetime

import pytest

from services.scoring import handlers
from shared.contracts.events import event_from_fields
from shared.contracts.identifiers import PARIS


@pytest.fixture
def cli(passpro_cli, monkeypatch):
    """`passpro …` (tests/services/conftest.py passpro_cli); the handler's calls are counted."""
    calls = []
    handler = handlers.set_calendar

    async def counted(rt, who, campaign, body):  # noqa: ANN001, ANN202
        calls.append((rt.name, who.role, campaign))
        return await handler(rt, who, campaign, body)

    monkeypatch.setattr(handlers, "set_calendar", counted)
    passpro_cli.calls = calls
    return passpro_cli


def calendars(passpro) -> list:
    entries = passpro.redis.xrange(passpro.keys.rectorat)
    events = [event_from_fields({k.decode(): v.decode() for k, v in f.items()}) for _, f in entries]
    return [e.payload for e in events if e.event_type == "CampaignCalendarSet"]


def test_the_cli_sets_the_calendar_through_scorings_handler(passpro, cli):
    code, out, err = cli("campaign", "calendar", CAMPAIGN, "--registrations-until", f"{YEAR}-03-15",
                         "--interviews-from", f"{YEAR}-03-22", "--interviews-until", f"{YEAR}-04-30T18:00:00+02:00")
    assert code == 0, err
    assert cli.calls == [("scoring", "rectorat", CAMPAIGN)]
    [payload] = calendars(passpro)
    assert payload.registrations_until == datetime(YEAR, 3, 15, 23, 59, 59, tzinfo=PARIS)
    assert payload.interviews_from == datetime(YEAR, 3, 22, 0, 0, tzinfo=PARIS)
    assert payload.interviews_until == datetime(YEAR, 4, 30, 18, 0, tzinfo=PARIS)
    assert f"15 mars {YEAR}" in out and f"Calendrier de la campagne {YEAR}" in out
    code, _, err = cli("campaign", "calendar", CAMPAIGN, "--lycee-avis-until", f"{YEAR}-05-15", "--registrations-until", "aucune")
    assert code == 0, err
    latest = calendars(passpro)[-1]
    assert latest.registrations_until is None and latest.interviews_from == payload.interviews_from
    assert latest.lycee_avis_until == datetime(YEAR, 5, 15, 23, 59, 59, tzinfo=PARIS)


@pytest.mark.parametrize(
    "args, code, said",
    [
        (("--interviews-from", f"{YEAR}-05-01", "--interviews-until", f"{YEAR}-04-01"), 1, "ne peut pas précéder"),
        (("--interviews-from", "demain"), 2, "n'est ni une date"),
        (("--interviews-from", f"{YEAR}-05-01T10:00:00"), 2, "fuseau"),
        ((), 2, "aucune date"),
    ],
)
def test_a_refused_calendar_says_why_in_french_and_stores_nothing(passpro, cli, args, code, said):
    before = passpro.snapshot()
    answered, _, err = cli("campaign", "calendar", CAMPAIGN, *args)
    assert answered == code and said in err, err
    assert passpro.snapshot() == before


def test_a_campaign_not_opened_has_no_calendar(passpro, cli):
    before = passpro.snapshot()
    code, _, err = cli("campaign", "calendar", str(YEAR + 2), "--interviews-from", f"{YEAR + 2}-03-01")
    assert code == 1 and "n'est pas ouverte" in err
    assert passpro.snapshot() == before
