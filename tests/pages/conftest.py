"""Fixtures of the page tests: a fresh académie with campaign 2027 open, and the services in process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync

from pages_world import World


@pytest.fixture
def world(redis_url: str, academie: str, tmp_path: Path) -> Iterator[World]:
    with contextlib.closing(redis_sync.Redis.from_url(redis_url)) as client:
        w = World(redis_url=redis_url, academie=academie, data_dir=tmp_path, redis=client)
        w.open_campaign()
        yield w
