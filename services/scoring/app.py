"""The scoring service: create_app(settings) builds it; nothing is connected before it starts."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.scoring import api, checkpoints, pages
from services.scoring.settings import ScoringSettings
from services.scoring.views import BonusProjection
from shared.runtime.http.app import build_app

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ScoringSettings) -> FastAPI:
    app = build_app(
        name="scoring",
        title="Passpro — barème (rectorat)",
        settings=settings,
        database_url=settings.resolved_database_url(),
        migrations_dir=MIGRATIONS,
        make_view=BonusProjection,
        routers=[api.router],
        # Signs the log's heads every few minutes while the service runs (nothing without PASSPRO_CHECKPOINT_KEY).
        background=checkpoints.background_tasks(settings),
    )
    pages.install(app)
    return app
