"""Fixtures of the API tests: the three services over one log, with campaign 2027 open and seeded students."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from api_world import CAMPAIGN, ApiWorld
from services.cli.common import open_campaign


@pytest.fixture
def api_world(redis_url: str, academie: str, tmp_path: Path) -> Iterator[ApiWorld]:
    world = ApiWorld(redis_url=redis_url, academie=academie, data_dir=tmp_path)
    asyncio.run(open_campaign(world.settings("scoring"), CAMPAIGN, 2500, None))
    world.seed()
    yield world
