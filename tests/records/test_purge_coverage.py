"""Retention purges a campaign through each service's `purge_campaign`, which knows the tables of its views'
metadata: every table the service's migrations make that holds a campaign's rows (a `campaign` column) or
its streams' positions (a `stream` column) must be one of them, or a purge would leave it behind. The notifier
(SPEC §7) too: its tables' rows name their campaign in a notification key (a `key` column)."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import pytest
from sqlalchemy import inspect

from services.records.retention import PURGES, campaign_archives, campaign_purges
from shared.runtime.db import make_engine
from shared.runtime.migrations import upgrade

# The records of what was done to campaigns live in scoring's database and outlive the purge.
KEPT = {"scoring": {campaign_archives.name, campaign_purges.name}}


# Where each one's purged metadata is (the services: their views; the notifier: its ledger).
METADATA = {"notifier": "services.notifier.ledger"}


@pytest.mark.parametrize("service", ["registration", "evaluation", "scoring", "notifier"])
def test_every_migrated_table_with_a_campaigns_rows_is_one_its_purge_campaign_purges(service: str, tmp_path: Path):
    url = f"sqlite:///{tmp_path / f'{service}.sqlite3'}"
    upgrade(import_module(f"services.{service}.app").MIGRATIONS, url, None)
    engine = make_engine(url, None)
    try:
        inspector = inspect(engine)
        holding = {
            name for name in inspector.get_table_names()
            if {"campaign", "stream", "key"} & {c["name"] for c in inspector.get_columns(name)}
        }
    finally:
        engine.dispose()
    module = import_module(METADATA.get(service, f"services.{service}.views"))
    purged = {table.name for table in module.metadata.sorted_tables}
    assert service in PURGES  # retention calls this service's purge_campaign
    assert holding - purged == KEPT.get(service, set())
    assert holding, "the check must see the service's tables"
