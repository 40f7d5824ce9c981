"""The scoring service: create_app(settings) builds it; nothing is connected before it starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI

from services.scoring import api, pages
from services.scoring.settings import ScoringSettings
from services.scoring.views import BonusProjection
from shared.runtime.http.app import BackgroundTask, build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: ScoringSettings,
    extra_routers: Sequence[APIRouter] = (),
    background: Mapping[str, BackgroundTask] | None = None,
) -> FastAPI:
    """`extra_routers` and `background` are what the composition root adds (services/cli/common.py
    `scoring_app`: the records' audit timeline, student pages and checkpointing); scoring knows none of them."""
    app = build_app(
        name="scoring",
        title="Passpro — barème (rectorat)",
        settings=settings,
        database_url=settings.resolved_database_url(),
        migrations_dir=MIGRATIONS,
        make_view=BonusProjection,
        routers=[api.router, *extra_routers],
        background=background,
    )
    pages.install(app)
    return app
