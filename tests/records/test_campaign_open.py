"""`passpro campaign open` runs scoring's handler, the one `POST /api/campaigns` runs (one handler per command):
the same decision, the same refusals, nothing stored when refused."""

from __future__ import annotations

from event_factories import CAMPAIGN, YEAR  # the campaign to come and its year (2027 until its rentrée)
import json

import pytest

from services.scoring import handlers
from shared.contracts.streams import StreamKeys


@pytest.fixture
def cli(passpro_cli, monkeypatch):
    """`passpro …` (tests/services/conftest.py passpro_cli); the handler's calls are counted."""
    calls = []
    handler = handlers.open_campaign

    async def counted(rt, who, body):  # noqa: ANN001, ANN202
        calls.append((rt.name, who.role, body.campaign, body.bonus_points))
        return await handler(rt, who, body)

    monkeypatch.setattr(handlers, "open_campaign", counted)
    passpro_cli.calls = calls
    return passpro_cli


def rectorat_entries(passpro) -> list[dict]:
    stream = StreamKeys(passpro.academie).rectorat
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in passpro.redis.xrange(stream)]


def test_campaign_open_appends_through_the_scoring_handler(passpro, cli):
    before = len(rectorat_entries(passpro))
    code, out, err = cli("campaign", "open", str(YEAR + 1), "--bonus", "3000")
    assert code == 0, err
    assert f"Campagne {YEAR + 1} ouverte (bonus 3000 points)" in out
    assert cli.calls == [("scoring", "rectorat", str(YEAR + 1), 3000)]
    entries = rectorat_entries(passpro)
    assert len(entries) == before + 1
    opened = entries[-1]
    assert (opened["event_type"], opened["campaign"]) == ("CampaignOpened", str(YEAR + 1))
    assert json.loads(opened["actor"])["user_id"] == "passpro-cli"
    assert json.loads(opened["payload"])["bonus_points"] == 3000


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ((CAMPAIGN,), f"La campagne {YEAR} est déjà ouverte."),
        ((str(YEAR + 1), "--bonus", "100001"), "le bonus est un entier de 0 à 100 000 points"),
        ((str(YEAR + 1), "--bonus", "-1"), "le bonus est un entier de 0 à 100 000 points"),
    ],
)
def test_a_refused_campaign_open_says_why_and_stores_nothing(passpro, cli, args, said):
    before = passpro.snapshot()
    code, _, err = cli("campaign", "open", *args)
    assert code == 1
    assert said in err, err
    assert passpro.snapshot() == before
