"""Retention purges a campaign through each service's `purge_campaign`, which knows the tables of its views'
metadata: every table the service's migrations make that holds a campaign's rows (a `campaign` column) or
its streams' positions (a `stream` column) must be one of them, or a purge would leave it behind."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import pytest
from sqlalchemy import inspect

from services.records.retention import campaign_archives, campaign_purges
from shared.runtime.db import make_engine
from shared.runtime.migrations import upgrade

# The records of what was done to campaigns live in scoring's database and outlive the purge.
KEPT = {"scoring": {campaign_archives.name, campaign_purges.name}}


@pytest.mark.parametrize("service", ["registration", "evaluation", "scoring"])
def test_every_migrated_table_with_a_campaigns_rows_is_one_its_purge_campaign_purges(service: str, tmp_path: Path):
    url = f"sqlite:///{tmp_path / f'{service}.sqlite3'}"
    upgrade(import_module(f"services.{service}.app").MIGRATIONS, url, None)
    engine = make_engine(url, None)
    try:
        inspector = inspect(engine)
        holding = {
            name for name in inspector.get_table_names()
            if {"campaign", "stream"} & {c["name"] for c in inspector.get_columns(name)}
        }
    finally:
        engine.dispose()
    purged = {table.name for table in import_module(f"services.{service}.views").metadata.sorted_tables}
    assert holding - purged == KEPT.get(service, set())
    assert holding, "the check must see the service's tables"
